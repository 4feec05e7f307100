// The appointment book on the front desk: a day grid (therapists as
// columns, time as rows) with shifts, blocks and bookings coloured by
// state; a booking made from a free slot or from "find a time", and moved,
// cancelled, checked in or marked no-show from the grid. Times are the
// spa's local times as the hub gives them ("15:00"), whatever the zone of
// the tablet showing them.
(function () {
  "use strict";
  const { h, $, fill } = Spa;
  const SLOT_MIN = 15;
  const PX_PER_MIN = 1.2;

  let date = Spa.today();
  let today = Spa.today();
  let therapists = [];
  const rooms = new Map();
  const services = new Map();
  const bookings = new Map();
  let shifts = [];
  let blocks = [];
  let loading = false;

  const minutesOf = (hhmm) => {
    const [hh, mm] = String(hhmm || "0:0").split(":");
    return parseInt(hh, 10) * 60 + parseInt(mm, 10);
  };
  const hhmm = (m) => String(Math.floor(m / 60)).padStart(2, "0") + ":" + String(m % 60).padStart(2, "0");
  /** Positions a grid element (the pages' CSP allows no style attributes). */
  function placed(el, top, height) {
    el.style.top = top + "px";
    if (height != null) el.style.height = height + "px";
    return el;
  }
  const nameOf = (id) => (therapists.find((t) => t.id === id) || {}).name || "therapist " + id;
  const roomName = (id) => (rooms.get(id) || {}).name || "room " + id;

  /** The day's local midnight in ms, from a shift or a booking (for blocks). */
  function midnight() {
    for (const s of shifts) return s.start_ms - minutesOf(s.start) * 60000;
    for (const b of bookings.values()) return b.start - minutesOf(b.time) * 60000;
    return null;
  }

  /** The hours the grid shows: the shifts' span, at least 08:00–20:00. */
  function span() {
    let from = 8 * 60;
    let to = 20 * 60;
    for (const s of shifts) {
      from = Math.min(from, minutesOf(s.start));
      to = Math.max(to, minutesOf(s.end));
    }
    for (const b of bookings.values()) {
      from = Math.min(from, minutesOf(b.time));
      to = Math.max(to, minutesOf(b.time) + (b.minutes || 60));
    }
    return [Math.floor(from / 60) * 60, Math.min(24 * 60, Math.ceil(to / 60) * 60)];
  }

  function serviceOptions() {
    return Array.from(services.values()).map((s) => [s.id, s.name + " (" + s.duration_min + " min)"]);
  }
  function therapistOptions(any) {
    const list = therapists.map((t) => [t.id, t.name]);
    return any ? [["", "Any therapist"]].concat(list) : list;
  }
  function roomOptions() {
    return [["", "Any room"]].concat(Array.from(rooms.values()).map((r) => [r.id, r.name]));
  }

  function createDialog(preset) {
    // A returning customer picked on the desk's card is booked as that record.
    const picked = Spa.Customers && Spa.Customers.picked;
    Spa.dialog({
      title: "New booking",
      key: "book-create",
      fields: [
        { name: "time", label: "Start (" + date + ")", value: preset.time || "", placeholder: "15:00" },
        { name: "service", label: "Service", type: "select", options: serviceOptions(), value: preset.service },
        { name: "therapist", label: "Therapist", type: "select", options: therapistOptions(true), value: preset.therapist == null ? "" : preset.therapist },
        { name: "room", label: "Room", type: "select", options: roomOptions(), value: preset.room == null ? "" : preset.room },
        { name: "name", label: "Customer name", value: picked ? picked.name : "" },
        { name: "phone", label: "Phone", type: "tel", value: picked ? picked.phone || "" : "" },
        { name: "notes", label: "Notes and allergies (staff only)", type: "textarea" },
      ],
      submit: "Book",
      run: (f) => {
        if (!/^\d{1,2}:\d{2}$/.test(f.time.trim())) return "Give the start as HH:MM, e.g. 15:00.";
        if (!f.name.trim()) return "Give the customer's name.";
        if (!f.phone.trim()) return "Give a phone number: the desk may need to call.";
        const args = {
          start: date + "T" + hhmm(minutesOf(f.time.trim())),
          service_ids: [Number(f.service)],
          customer_name: f.name.trim(),
          phone: f.phone.trim(),
          request_id: Spa.randomId(),
        };
        if (picked && f.name.trim() === picked.name) args.customer_id = picked.id;
        if (f.therapist) args.therapist_id = Number(f.therapist);
        if (f.room) args.room_id = Number(f.room);
        if (f.notes.trim()) args.notes = f.notes.trim();
        return ["booking.create", args];
      },
      done: (data) => {
        if (data && data.booking) bookings.set(data.booking.id, data.booking);
        if (data && data.customer_url) showLink(data);
        render();
      },
    });
  }

  function showLink(data) {
    const box = $("#bk-link");
    if (!box) return;
    const url = Spa.base + data.customer_url;
    fill(box, h("span", { class: "ticket", text: data.booking.number }), " ", data.booking.customer_name, " · ",
      h("a", { href: url, target: "_blank", rel: "noopener noreferrer", text: "customer's booking link" }));
    box.hidden = false;
  }

  function actionsDialog(b) {
    const facts = b.number + " · " + b.time + " · " + nameOf(b.therapist_id) + " · " + roomName(b.room_id);
    const fields = [
      { name: "action", label: facts + " — " + (b.customer_name || ""), type: "select", options: [["check_in", "Check in (the customer is here)"], ["move", "Move"], ["cancel", "Cancel"], ["no_show", "Mark as no-show"]] },
      { name: "time", label: "New start (move)", value: b.time },
      { name: "therapist", label: "New therapist (move)", type: "select", options: therapistOptions(false), value: b.therapist_id },
      { name: "reason", label: "Reason (cancel)" },
    ];
    Spa.dialog({
      title: "Booking " + b.number,
      key: "book-act-" + b.id,
      fields,
      submit: "Do it",
      run: (f) => {
        switch (f.action) {
          case "check_in":
            return ["booking.check_in", { booking_id: b.id }];
          case "no_show":
            return ["booking.no_show", { booking_id: b.id }];
          case "cancel":
            return f.reason.trim() ? ["booking.cancel", { booking_id: b.id, reason: f.reason.trim() }] : "Give a reason for the cancellation.";
          default: {
            if (!/^\d{1,2}:\d{2}$/.test(f.time.trim())) return "Give the new start as HH:MM.";
            return ["booking.move", { booking_id: b.id, start: b.date + "T" + hhmm(minutesOf(f.time.trim())), therapist_id: Number(f.therapist) }];
          }
        }
      },
      done: (data) => {
        if (data && data.booking) bookings.set(data.booking.id, data.booking);
        render();
      },
    });
  }

  function render() {
    const grid = $("#bk-grid");
    if (!grid) return;
    $("#bk-date").value = date;
    const [from, to] = span();
    const height = (to - from) * PX_PER_MIN;
    const zero = midnight();
    const hours = [];
    for (let m = from; m < to; m += 60) {
      const hour = h("div", { class: "bk-hour", text: hhmm(m) });
      hour.style.height = 60 * PX_PER_MIN + "px";
      hours.push(hour);
    }
    const cols = therapists.map((t) => {
      const col = h("div", { class: "bk-col", "data-therapist": t.id });
      col.style.height = height + "px";
      for (const s of shifts.filter((x) => x.therapist_id === t.id)) {
        const top = (minutesOf(s.start) - from) * PX_PER_MIN;
        col.append(placed(h("div", { class: "bk-shift" }), top, (minutesOf(s.end) - minutesOf(s.start)) * PX_PER_MIN));
      }
      if (zero != null) {
        for (const bl of blocks.filter((x) => x.therapist_id === t.id)) {
          const a = Math.max(from, (bl.start - zero) / 60000);
          const z = Math.min(to, (bl.end - zero) / 60000);
          if (z > a) col.append(placed(h("div", { class: "bk-block", title: bl.reason, text: bl.reason }), (a - from) * PX_PER_MIN, (z - a) * PX_PER_MIN));
        }
      }
      for (const b of bookings.values()) {
        if (b.therapist_id !== t.id || b.date !== date) continue;
        const top = (minutesOf(b.time) - from) * PX_PER_MIN;
        const el = h("button", {
          type: "button",
          class: "bk-booking st-" + b.state,
          "data-booking": b.id,
          title: b.number + " " + b.time + " " + (b.customer_name || "") + " · " + Spa.words(b.state),
        }, h("b", { text: b.time + " " + b.number }), " ", b.customer_name || "", h("span", { class: "small", text: " · " + roomName(b.room_id) }));
        placed(el, top, Math.max(18, (b.minutes || 60) * PX_PER_MIN - 2));
        el.addEventListener("click", (ev) => {
          ev.stopPropagation();
          if (b.state === "booked" || b.state === "no_show") actionsDialog(b);
        });
        col.append(el);
      }
      col.addEventListener("click", (ev) => {
        const y = ev.offsetY;
        const m = from + Math.floor(y / PX_PER_MIN / SLOT_MIN) * SLOT_MIN;
        createDialog({ time: hhmm(m), therapist: t.id });
      });
      return h("div", { class: "bk-track" }, h("div", { class: "bk-head", text: t.name }), col);
    });
    fill(grid, h("div", { class: "bk-track bk-times" }, h("div", { class: "bk-head", text: "" }), h("div", { class: "bk-col" }, hours)), cols);
    const counts = { booked: 0, checked_in: 0, cancelled: 0, no_show: 0 };
    for (const b of bookings.values()) if (b.date === date) counts[b.state] = (counts[b.state] || 0) + 1;
    $("#bk-summary").textContent = Object.entries(counts).map(([k, n]) => n + " " + Spa.words(k)).join(" · ");
    const svc = $("#bk-find-service");
    if (svc && !svc.options.length) fill(svc, serviceOptions().map(([v, l]) => h("option", { value: String(v), text: l })));
  }

  async function load() {
    if (loading) return;
    loading = true;
    const ack = await Spa.send("booking.list", { date });
    loading = false;
    if (!ack.ok) {
      $("#bk-summary").textContent = (ack.error && ack.error.message) || "The book could not be read.";
      return;
    }
    bookings.clear();
    for (const b of ack.data.bookings || []) bookings.set(b.id, b);
    shifts = ack.data.shifts || [];
    blocks = ack.data.blocks || [];
    render();
  }

  function findTimes() {
    const service = Number($("#bk-find-service").value);
    const who = $("#bk-find-therapist").value;
    const args = { date: $("#bk-find-date").value || date, service_ids: [service] };
    if (who) args.therapist_id = Number(who);
    return ["booking.availability", args];
  }

  function showSlots(data) {
    const list = $("#bk-slots");
    const slots = (data && data.slots) || [];
    fill(list, slots.length ? slots.slice(0, 40).map((s) => {
      const b = h("button", { type: "button", class: "small", text: s.time + " · " + nameOf(s.therapist_id) });
      b.addEventListener("click", () => {
        date = data.date;
        load();
        createDialog({ time: s.time, therapist: s.therapist_id, room: s.room_id, service: data.service_ids[0] });
      });
      return b;
    }) : h("span", { class: "muted", text: "Nothing free that day for this service." }));
  }

  Spa.Book = {
    /** Wires the tab's controls (once the page's connection exists). */
    init() {
      $("#bk-date").addEventListener("change", (ev) => {
        date = ev.target.value || today;
        load();
      });
      $("#bk-prev").addEventListener("click", () => step(-1));
      $("#bk-next").addEventListener("click", () => step(1));
      $("#bk-today").addEventListener("click", () => {
        date = today;
        load();
      });
      $("#bk-new").addEventListener("click", () => createDialog({}));
      $("#bk-find-date").value = date;
      Spa.bind($("#bk-find"), "bk-find", findTimes, showSlots);
    },
    onSnapshot(snap) {
      therapists = (snap.therapists || []).slice().sort((a, b) => a.name.localeCompare(b.name));
      rooms.clear();
      (snap.rooms || []).forEach((r) => rooms.set(r.id, r));
      services.clear();
      (snap.services || []).forEach((s) => services.set(s.id, s));
      const who = $("#bk-find-therapist");
      if (who) fill(who, therapistOptions(true).map(([v, l]) => h("option", { value: String(v), text: l })));
      const book = snap.book || {};
      if (date === today) {
        bookings.clear();
        (book.bookings || []).forEach((b) => bookings.set(b.id, b));
        shifts = book.shifts || [];
        blocks = book.blocks || [];
        render();
      } else load();
    },
    /** The therapists changed (one clocked in, a new one hired). */
    onTherapists(list) {
      therapists = list.slice().sort((a, b) => a.name.localeCompare(b.name));
      render();
    },
    onBooking(p) {
      const b = p.booking;
      if (b.date === date) bookings.set(b.id, b);
      else bookings.delete(b.id);
      render();
    },
    /** A shift or block changed: read the day again. */
    onSchedule() {
      load();
    },
  };

  function step(days) {
    const d = new Date(date + "T12:00:00");
    d.setDate(d.getDate() + days);
    date = d.getFullYear() + "-" + String(d.getMonth() + 1).padStart(2, "0") + "-" + String(d.getDate()).padStart(2, "0");
    load();
  }
})();
