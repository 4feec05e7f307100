// The lobby board: rooms in their status colours with "free in ~N min", the
// queue by ticket number with estimated waits, "A-042 → Room 7" call-outs
// with an optional chime. Its view from the hub holds no customer names,
// and nothing here would show one.
(function () {
  "use strict";
  const { h, $, fill } = Spa;

  // A paired monitor opens /monitor#token=…: keep the token, drop it from the URL.
  const hash = new URLSearchParams(location.hash.replace(/^#/, ""));
  if (hash.get("token")) {
    Spa.store.setMonitor(hash.get("token"));
    history.replaceState(null, "", location.pathname + location.search);
  }
  const token = Spa.store.monitor();
  if (!token) {
    $("#unpaired").hidden = false;
    Spa.setStatus("refused", "Not paired");
    return;
  }

  const rooms = new Map(); // id → room (+ freeAt: local ms when it is expected free)
  const visits = new Map(); // id → {id, number, state, room_id}
  let queue = []; // [{visit_id, number, position, eta_min}]
  let queueAt = Date.now();
  let available = null;
  let conn = null;

  const STATUS = Object.assign({}, Spa.ROOM_STATUS, { held: "Reserved", occupied: "In session" });

  function keepRoom(r) {
    const now = Date.now();
    r.freeAt = typeof r.free_in_min === "number" ? now + r.free_in_min * 60000 : null;
    rooms.set(r.id, r);
  }

  function freeText(r) {
    const look = Spa.roomLook(r);
    if (look === "available") return "Free now";
    if (look === "out_of_service") return "Closed";
    if (look === "overtime") return "Finishing soon";
    if (r.freeAt == null) return look === "cleaning" ? "Being prepared" : "";
    const min = Math.max(0, Math.ceil((r.freeAt - Date.now()) / 60000));
    return min <= 1 ? "Free in ~1 min" : "Free in ~" + min + " min";
  }

  function renderRooms() {
    const list = Array.from(rooms.values()).sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }) || a.id - b.id);
    const el = $("#rooms");
    const n = list.length;
    const cols = n <= 1 ? 1 : n <= 4 ? 2 : n <= 9 ? 3 : n <= 16 ? 4 : 5;
    const rows = Math.max(1, Math.ceil(n / cols));
    el.style.setProperty("--cols", String(cols));
    el.style.setProperty("--scale", rows <= 2 ? "1" : rows === 3 ? "0.85" : rows === 4 ? "0.72" : "0.6");
    if (!n) {
      fill(el, h("div", { class: "none", text: "No rooms yet" }));
      return;
    }
    fill(el, list.map((r) => {
      const look = Spa.roomLook(r);
      return h("div", { class: "tile " + look, dataset: { room: String(r.id), status: look } },
        h("div", { class: "tn", text: r.name }),
        h("div", { class: "ts", text: STATUS[look] || look }),
        h("div", { class: "tf", text: freeText(r) }));
    }));
  }

  function roomName(id) {
    const r = rooms.get(id);
    return r ? r.name : "Room " + id;
  }

  function renderCalls() {
    const called = Array.from(visits.values())
      .filter((v) => v.state === "called" && v.room_id != null)
      .sort((a, b) => (b.calledAt || 0) - (a.calledAt || 0))
      .slice(0, 4);
    const el = $("#calls");
    if (!called.length) {
      fill(el, h("li", { class: "none", text: "—" }));
      return;
    }
    fill(el, called.map((v) => h("li", { class: v.calledAt && Date.now() - v.calledAt < 10000 ? "fresh" : "" },
      h("span", { class: "n", text: v.number }), h("span", { class: "arrow", text: "→" }), h("span", { text: roomName(v.room_id) }))));
  }

  function renderQueue() {
    const waiting = queue.filter((q) => !q.state || q.state === "waiting").sort((a, b) => a.position - b.position);
    const el = $("#queue");
    $("#qcount").textContent = waiting.length ? "(" + waiting.length + ")" : "";
    if (!waiting.length) {
      fill(el, h("li", { class: "none", text: "No one waiting" }));
      return;
    }
    const elapsed = Math.floor((Date.now() - queueAt) / 60000);
    const max = 9;
    fill(el,
      waiting.slice(0, max).map((q) => {
        let eta = "";
        if (typeof q.eta_min === "number") {
          const m = Math.max(0, q.eta_min - elapsed);
          eta = m === 0 ? "next" : "~" + m + " min";
        }
        return h("li", {}, h("span", { class: "n", text: q.number }), h("span", { class: "eta", text: eta }));
      }),
      waiting.length > max ? h("li", { class: "more", text: "+ " + (waiting.length - max) + " more" }) : null);
  }

  function renderHead() {
    const now = conn ? conn.now() : Date.now();
    $("#clock").textContent = Spa.clock(now);
    $("#available").textContent = available == null ? "" : available === 1 ? "1 therapist free" : available + " therapists free";
  }

  // Today's bookings as the hub gives a monitor (time, number, room; never
  // a name): those starting within the next hour.
  const booked = new Map();
  function renderUpcoming() {
    const now = conn ? conn.now() : Date.now();
    const soon = Array.from(booked.values())
      .filter((b) => b.state === "booked" || b.state === "checked_in")
      .filter((b) => b.start >= now - 15 * 60000 && b.start <= now + 60 * 60000)
      .sort((a, b) => a.start - b.start);
    $("#upcoming-panel").hidden = !soon.length;
    fill($("#upcoming"), soon.slice(0, 6).map((b) => h("li", {}, h("span", { class: "n", text: b.time + " " + b.number }), h("span", { class: "eta", text: b.room || "" }))));
  }

  function render() {
    renderRooms();
    renderCalls();
    renderQueue();
    renderUpcoming();
    renderHead();
  }

  // ---- call-outs and the chime -----------------------------------------------------------
  const callouts = [];
  let showing = false;
  function callout(v) {
    callouts.push({ number: v.number, room: roomName(v.room_id) });
    if (!showing) nextCallout();
  }
  function nextCallout() {
    const c = callouts.shift();
    const el = $("#callout");
    if (!c) {
      showing = false;
      el.hidden = true;
      return;
    }
    showing = true;
    $("#co-num").textContent = c.number;
    $("#co-room").textContent = c.room;
    el.hidden = false;
    // Restart the entry animation.
    const line = el.querySelector(".co-line");
    line.style.animation = "none";
    void line.offsetWidth;
    line.style.animation = "";
    chime();
    setTimeout(nextCallout, 8000);
  }

  let audio = null;
  let chimeOn = localStorage.getItem("spa.chime") === "on";
  function paintChime() {
    const b = $("#chime");
    b.setAttribute("aria-pressed", chimeOn ? "true" : "false");
    b.textContent = chimeOn ? "Chime on" : "Chime off";
  }
  function chime() {
    if (!chimeOn) return;
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      if (audio.state === "suspended") audio.resume();
      const t0 = audio.currentTime + 0.02;
      [[880, 0], [660, 0.35]].forEach(([freq, at]) => {
        const osc = audio.createOscillator();
        const gain = audio.createGain();
        osc.type = "sine";
        osc.frequency.value = freq;
        gain.gain.setValueAtTime(0.0001, t0 + at);
        gain.gain.exponentialRampToValueAtTime(0.35, t0 + at + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, t0 + at + 0.9);
        osc.connect(gain).connect(audio.destination);
        osc.start(t0 + at);
        osc.stop(t0 + at + 1);
      });
    } catch (e) {
      /* no audio on this screen */
    }
  }
  $("#chime").addEventListener("click", () => {
    chimeOn = !chimeOn;
    localStorage.setItem("spa.chime", chimeOn ? "on" : "off");
    paintChime();
    if (chimeOn) chime(); // a tap is the gesture browsers need to allow sound
  });
  paintChime();
  // Controls only while someone is at the screen (see monitor.css).
  let idle = null;
  const touched = () => {
    document.body.classList.add("touched");
    clearTimeout(idle);
    idle = setTimeout(() => document.body.classList.remove("touched"), 8000);
  };
  for (const ev of ["pointermove", "pointerdown", "touchstart", "keydown"]) document.addEventListener(ev, touched, { passive: true });

  // ---- the hub -----------------------------------------------------------------------------
  conn = Spa.connect(token, {
    onRefused: (msg) => {
      if (msg === "unauthorized") {
        Spa.store.clearMonitor();
        $("#unpaired-text").textContent = "The hub no longer accepts this screen's pairing (it was revoked). On the admin page, under Monitors, pair it again and open the new link here.";
        $("#unpaired").hidden = false;
      }
    },
    onSnapshot: (snap) => {
      rooms.clear();
      (snap.rooms || []).forEach(keepRoom);
      const before = new Map(visits);
      visits.clear();
      for (const v of snap.visits || []) {
        const old = before.get(v.id);
        v.calledAt = old && old.state === "called" ? old.calledAt : v.state === "called" ? Date.now() - 60000 : null;
        visits.set(v.id, v);
      }
      queue = snap.queue || [];
      queueAt = Date.now();
      if (typeof snap.therapists_available === "number") available = snap.therapists_available;
      booked.clear();
      for (const b of (snap.book && snap.book.bookings) || []) booked.set(b.id, b);
      render();
    },
    on: {
      "booking.updated": (p) => {
        booked.set(p.booking.id, p.booking);
        renderUpcoming();
      },
      "room.updated": (p) => {
        if (p.room.removed) rooms.delete(p.room.id);
        else keepRoom(p.room);
        renderRooms();
        renderCalls();
      },
      "visit.updated": (p) => {
        const v = p.visit;
        const old = visits.get(v.id);
        if (v.state === "waiting" || v.state === "called" || v.state === "in_service") {
          v.calledAt = v.state === "called" ? (old && old.state === "called" ? old.calledAt : Date.now()) : null;
          visits.set(v.id, v);
        } else {
          visits.delete(v.id);
        }
        if (v.state === "called" && v.room_id != null && !(old && old.state === "called" && old.room_id === v.room_id)) callout(v);
        renderCalls();
      },
      "queue.updated": (p) => {
        queue = p.queue || [];
        queueAt = Date.now();
        renderQueue();
      },
      "therapist.updated": (p) => {
        if (typeof p.therapists_available === "number") available = p.therapists_available;
        renderHead();
      },
    },
  });
  setInterval(render, 15000);
  // "Free in" and waits are counted down here; a fresh snapshot now and
  // then corrects them (a session that ran over, a therapist gone on a break).
  setInterval(() => conn.ready && conn.sync(), 10 * 60000);
  setInterval(renderHead, 1000);
})();
