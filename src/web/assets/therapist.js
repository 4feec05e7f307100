// The therapist's tablet: my status, my customer (with notes), start /
// extend / finish / undo with a countdown from planned_end and the hub's
// clock, the rotation and my place in it, the queue and the rooms.
(function () {
  "use strict";
  const { h, $, fill } = Spa;

  let me = null; // my staff id
  const therapists = new Map();
  const visits = new Map();
  const services = new Map();
  const rooms = new Map();
  let rotation = [];
  let queue = [];
  let conn = null;

  const PRESENCE = { off: "Off duty", available: "Available", break: "On a break", called: "Customer called", in_session: "In session" };

  const svcNames = (ids) => (ids || []).map((id) => (services.get(id) || { name: "service " + id }).name).join(", ");
  const roomName = (id) => (rooms.get(id) || { name: id == null ? "–" : "Room " + id }).name;
  const staffName = (id) => (therapists.get(id) || { name: "#" + id }).name;

  function mine() {
    const list = Array.from(visits.values()).filter((v) => v.therapist_id === me && (v.state === "called" || v.state === "in_service"));
    list.sort((a, b) => (a.state === "in_service" ? -1 : 1) - (b.state === "in_service" ? -1 : 1) || a.id - b.id);
    return list[0] || null;
  }

  function renderStatus() {
    const t = therapists.get(me);
    const presence = t ? t.status : "off";
    $("#my-status").textContent = PRESENCE[presence] || Spa.words(presence);
    $("#my-turns").textContent = t ? "Turns today: " + (Math.round((t.turns_today || 0) * 10) / 10) : "";
    const acts = [];
    const who = { therapist_id: me };
    if (presence === "off") acts.push(Spa.button("Clock in", "clock_in", () => ["therapist.clock_in", who], { class: "primary" }));
    if (presence === "available") {
      acts.push(Spa.button("Take a break", "break", () => ["therapist.break", who]));
      acts.push(Spa.button("Clock out", "clock_out", () => ["therapist.clock_out", who]));
    }
    if (presence === "break") {
      acts.push(Spa.button("Back from break", "resume", () => ["therapist.resume", who], { class: "primary" }));
      acts.push(Spa.button("Clock out", "clock_out", () => ["therapist.clock_out", who]));
    }
    fill($("#status-actions"), acts);
  }

  let countdownEl = null;
  let plannedEnd = null;
  function tick() {
    if (!countdownEl || plannedEnd == null) return;
    const left = plannedEnd - conn.now();
    countdownEl.textContent = Spa.mmss(left);
    countdownEl.classList.toggle("over", left < 0);
    const label = $("#countdown-label");
    if (label) label.textContent = left < 0 ? "over the planned end" : "left";
  }

  function renderSession() {
    const v = mine();
    const el = $("#session");
    countdownEl = null;
    plannedEnd = null;
    const t = therapists.get(me);
    if (!v) {
      const canCall = t && t.status === "available";
      fill(el,
        h("p", { class: "muted", text: canCall ? "No customer right now." : t && t.status === "off" ? "Clock in to take customers." : "No customer right now." }),
        canCall ? h("div", { class: "big-actions" }, Spa.button("Call next customer", "call-next", () => ["visit.call", { therapist_id: me }], { class: "primary" })) : null);
      return;
    }
    const head = h("div", { class: "session-head" },
      h("span", { class: "ticket", text: v.number }),
      h("span", { class: "status-big", text: v.customer_name || "" }),
      h("span", { class: "pill " + v.state, text: v.state === "called" ? "called" : "in session" }));
    const facts = h("dl", { class: "kv" },
      h("dt", { text: "Services" }), h("dd", { text: svcNames(v.service_ids) || "–" }),
      h("dt", { text: "Room" }), h("dd", { text: roomName(v.room_id) }),
      v.phone ? [h("dt", { text: "Phone" }), h("dd", { text: v.phone })] : null,
      v.state === "in_service" ? [h("dt", { text: "Started" }), h("dd", { text: Spa.clock(v.started_at) }), h("dt", { text: "Planned end" }), h("dd", { text: Spa.clock(v.planned_end) + (v.extended_min ? " (+" + v.extended_min + " min)" : "") })] : null);
    // The visit's own notes, and the customer record's (allergies, preferences).
    const rec = v.customer && v.customer.notes ? v.customer.notes : null;
    const noteText = [rec, v.notes].filter(Boolean).join("\n");
    const notes = noteText ? h("div", {}, h("div", { class: "muted small", text: "Notes and allergies" }), h("div", { class: "notes", id: "notes", text: noteText })) : null;
    let main = null;
    const acts = [];
    if (v.state === "called") {
      main = h("p", { class: "status-big", text: "Meet your customer and go to " + roomName(v.room_id) + "." });
      acts.push(Spa.button("Start session", "start-" + v.id, () => ["visit.start", { visit_id: v.id }], { class: "primary" }));
      acts.push(Spa.button("Undo call", "undo-" + v.id, () => ["visit.undo", { visit_id: v.id }]));
    } else {
      countdownEl = h("div", { class: "countdown", id: "countdown" });
      plannedEnd = v.planned_end;
      main = h("div", {}, countdownEl, h("div", { class: "muted", id: "countdown-label", text: "left" }));
      acts.push(Spa.button("+10 min", "extend-" + v.id, () => ["visit.extend", { visit_id: v.id, minutes: 10 }]));
      acts.push(Spa.button("Finish", "finish-" + v.id, () => ["visit.finish", { visit_id: v.id }], { class: "primary" }));
      acts.push(Spa.button("Undo start", "undo-" + v.id, () => ["visit.undo", { visit_id: v.id }]));
    }
    fill(el, head, notes, main, h("div", { class: "big-actions" }, acts), facts);
    tick();
  }

  function renderRequested() {
    const t = therapists.get(me);
    const mineWaiting = queue.filter((q) => q.requested_therapist_id === me);
    const el = $("#requested");
    if (!mineWaiting.length) {
      fill(el, h("li", { class: "empty", text: "Nobody has asked for you." }));
      return;
    }
    fill(el, mineWaiting.map((q) => {
      const v = visits.get(q.visit_id) || {};
      return h("li", { class: "between" },
        h("span", {}, h("span", { class: "ticket", text: q.number }), " ", v.customer_name || "", h("span", { class: "muted small", text: " · " + svcNames(q.service_ids) })),
        t && t.status === "available" ? Spa.button("Call", "call-" + q.visit_id, () => ["visit.call", { visit_id: q.visit_id, therapist_id: me }], { class: "primary small" }) : null);
    }));
  }

  function renderQueue() {
    const el = $("#queue");
    if (!queue.length) {
      fill(el, h("li", { class: "empty", text: "Nobody is waiting." }));
      return;
    }
    fill(el, queue.map((q) => h("li", { class: "between" },
      h("span", {}, h("span", { class: "ticket", text: q.number }), h("span", { class: "muted small", text: " · " + svcNames(q.service_ids) + (q.requested_therapist_id ? " · asked for " + staffName(q.requested_therapist_id) : "") })),
      h("span", { class: "muted small", text: typeof q.eta_min === "number" ? (q.eta_min ? "~" + q.eta_min + " min" : "now") : "" }))));
  }

  // The hub's rotation lists the available therapists first, in the order
  // they take walk-ins, then those busy or on a break.
  const isFree = (id) => (therapists.get(id) || {}).status === "available";
  function renderRotation() {
    const el = $("#rotation");
    const free = rotation.filter(isFree);
    const busy = rotation.filter((id) => !isFree(id));
    const place = free.indexOf(me);
    const t = therapists.get(me);
    $("#my-place").textContent = place >= 0 ? "· you are #" + (place + 1) + " of " + free.length
      : t && t.status !== "off" ? "· you are not in the rotation (" + (PRESENCE[t.status] || Spa.words(t.status)).toLowerCase() + ")" : "· you are not in the rotation";
    if (!rotation.length) {
      fill(el, h("li", { class: "empty", text: "Nobody is clocked in." }));
      return;
    }
    fill(el,
      free.map((id) => h("li", { class: id === me ? "me" : "" }, staffName(id), id === me ? " (you)" : "")),
      busy.map((id) => {
        const s = (therapists.get(id) || {}).status;
        return h("li", { class: "busy" + (id === me ? " me" : "") }, staffName(id), id === me ? " (you)" : "", " ", h("span", { class: "pill " + s, text: Spa.words(s) }));
      }));
  }

  function renderRooms() {
    const list = Array.from(rooms.values()).sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }));
    fill($("#rooms"), list.length ? list.map((r) => {
      const look = Spa.roomLook(r);
      let free = "";
      if (look === "cleaning" || look === "occupied" || look === "held") free = typeof r.free_in_min === "number" ? " · free ~" + r.free_in_min + " min" : "";
      const acts = [];
      if (r.status === "cleaning") acts.push(Spa.button("Ready", "room-ready-" + r.id, () => ["room.set_status", { room_id: r.id, status: "available" }]));
      if (r.status === "available") acts.push(Spa.button("Needs cleaning", "room-clean-" + r.id, () => ["room.set_status", { room_id: r.id, status: "cleaning" }]));
      return h("div", { class: "room " + look },
        h("div", { class: "rn", text: r.name }),
        h("div", { class: "rs", text: (Spa.ROOM_STATUS[look] || look) + free }),
        acts.length ? h("div", { class: "actions" }, acts) : null);
    }) : h("p", { class: "empty", text: "No rooms." }));
  }

  function render() {
    renderStatus();
    renderSession();
    renderRequested();
    renderQueue();
    renderRotation();
    renderRooms();
  }

  function alert(p) {
    const box = h("div", { class: "msg error", text: p.message || "Alert" });
    $("#alerts").append(box);
    setTimeout(() => box.remove(), 60000);
  }

  // My day: my shift, my bookings (with notes: they are mine), sessions
  // done and my tips today.
  let book = { bookings: [], shifts: [] };
  function renderDay() {
    if (me == null) return;
    const shift = (book.shifts || []).find((s) => s.therapist_id === me);
    $("#my-shift").textContent = shift ? shift.start + "–" + shift.end : "no shift today";
    const mine = (book.bookings || []).filter((b) => b.therapist_id === me && b.state !== "cancelled");
    fill($("#my-bookings"), mine.length ? mine.map((b) => h("li", {},
      h("b", { text: b.time + " " + b.number }), " ", b.customer_name || "",
      b.notes ? h("div", { class: "small warn", text: b.notes }) : null,
      h("span", { class: "muted small", text: " · " + Spa.words(b.state) }))) : h("li", { class: "muted", text: "No bookings today." }));
    const done = Array.from(visits.values()).filter((v) => v.therapist_id === me && (v.state === "awaiting_payment" || v.state === "closed"));
    const tips = done.reduce((s, v) => s + ((v.receipt && v.receipt.my_tip_cents) || 0), 0);
    const t = therapists.get(me);
    const turns = t ? Math.round((t.turns_today || 0) * 10) / 10 : 0;
    $("#my-day-facts").textContent = done.length + " session(s) done · " + turns + " turn(s) · my tips " + Spa.money(tips);
    // My sessions today: customer, services, times (and my tip once paid).
    const sessions = Array.from(visits.values()).filter((v) => v.therapist_id === me && v.started_at != null)
      .sort((a, b) => a.started_at - b.started_at);
    const box = $("#my-sessions");
    if (box) {
      fill(box, sessions.length ? sessions.map((v) => h("li", {},
        h("b", { text: Spa.clock(v.started_at) + "–" + Spa.clock(v.finished_at || v.planned_end) + " " + v.number }), " ",
        v.customer_name || "", h("span", { class: "muted small", text: " · " + svcNames(v.service_ids) +
          (v.receipt && v.receipt.my_tip_cents ? " · tip " + Spa.money(v.receipt.my_tip_cents) : "") })))
        : h("li", { class: "muted", text: "No sessions yet today." }));
    }
  }

  conn = Spa.staffPage(["therapist"], {
    onSnapshot: (snap) => {
      me = snap.me && snap.me.staff ? snap.me.staff.id : null;
      therapists.clear();
      (snap.therapists || []).forEach((t) => therapists.set(t.id, t));
      visits.clear();
      (snap.visits || []).forEach((v) => visits.set(v.id, v));
      services.clear();
      (snap.services || []).forEach((s) => services.set(s.id, s));
      rooms.clear();
      (snap.rooms || []).forEach((r) => rooms.set(r.id, r));
      rotation = snap.rotation || [];
      queue = snap.queue || [];
      book = snap.book || { bookings: [], shifts: [] };
      render();
      renderDay();
    },
    on: {
      "booking.updated": (p) => {
        const list = (book.bookings || []).filter((b) => b.id !== p.booking.id);
        if (p.booking.date === (book.bookings[0] || p.booking).date) list.push(p.booking);
        book.bookings = list.sort((a, b) => a.start - b.start);
        renderDay();
      },
      "shift.updated": (p) => {
        book.shifts = (book.shifts || []).filter((s) => !(s.therapist_id === p.shift.therapist_id && s.date === p.shift.date));
        if (!p.shift.off) book.shifts.push(p.shift);
        renderDay();
      },
      "therapist.updated": (p) => {
        if (p.therapist) therapists.set(p.therapist.id, p.therapist);
        if (p.rotation) rotation = p.rotation;
        renderStatus();
        renderSession();
        renderRequested();
        renderRotation();
      },
      "visit.updated": (p) => {
        visits.set(p.visit.id, p.visit);
        renderSession();
        renderRequested();
        renderDay();
      },
      "queue.updated": (p) => {
        queue = p.queue || [];
        renderQueue();
        renderRequested();
      },
      "room.updated": (p) => {
        if (p.room.removed) rooms.delete(p.room.id);
        else rooms.set(p.room.id, p.room);
        renderRooms();
        renderSession();
      },
      "service.updated": (p) => {
        services.set(p.service.id, p.service);
        renderQueue();
        renderSession();
      },
      alert: (p) => alert(p),
    },
  });
  setInterval(tick, 250);
  // Free-in minutes are computed by the hub when a room changes: refresh them now and then.
  setInterval(() => conn && conn.ready && conn.sync(), 5 * 60000);
})();
