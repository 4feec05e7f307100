// The front desk: check in walk-ins (with the customer's QR link), the queue
// and calling, the floor, checkout with split payment, tip and discount, the
// products and gift cards on a visit's checkout (their lines: counter.js),
// the drawer with its Z report, and the day report with its CSV.
(function () {
  "use strict";
  const { h, $, fill } = Spa;

  const visits = new Map();
  const services = new Map();
  const therapists = new Map();
  const rooms = new Map();
  let rotation = [];
  let queue = [];
  let drawer = null;
  let conn = null;
  let role = null;
  /** Admins who may approve a cashier's correction with their PIN. */
  let admins = [];
  /** Receipts (#17) by visit id, from checkouts and `receipt.updated`. */
  const receipts = new Map();

  const svcNames = (ids) => (ids || []).map((id) => (services.get(id) || { name: "service " + id }).name).join(", ");
  const roomName = (id) => (id == null ? "–" : (rooms.get(id) || { name: "Room " + id }).name);
  const staffName = (id) => (id == null ? "–" : (therapists.get(id) || { name: "#" + id }).name);
  const byName = (a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }) || a.id - b.id;

  // ---- check-in ------------------------------------------------------------------------------
  function renderCheckinChoices() {
    const box = $("#ci-services");
    const checked = new Set(Array.from(box.querySelectorAll("input:checked")).map((i) => i.value));
    const list = Array.from(services.values()).filter((s) => s.active !== false).sort(byName);
    fill(box, list.length ? list.map((s) => h("label", { class: "check" },
      h("input", { type: "checkbox", name: "service", value: String(s.id), checked: checked.has(String(s.id)) }),
      " " + s.name + " · " + s.duration_min + " min · " + Spa.money(s.price_cents))) : h("span", { class: "empty", text: "No services yet (admin page)." }));
    const sel = $("#ci-therapist");
    const was = sel.value;
    fill(sel, h("option", { value: "", text: "No request (rotation)" }),
      Array.from(therapists.values()).sort(byName).map((t) => h("option", { value: String(t.id), text: t.name + " (" + Spa.words(t.status) + ")" })));
    sel.value = Array.from(sel.options).some((o) => o.value === was) ? was : "";
  }

  function showLink(data) {
    const v = data.visit || {};
    const url = new URL(data.customer_url || "/t/" + data.customer_token, Spa.base).href;
    $("#link-card").hidden = false;
    $("#link-number").textContent = v.number || "";
    $("#link-name").textContent = v.customer_name || "";
    $("#link-url").href = url;
    $("#link-text").textContent = url;
    fill($("#link-qr"), window.SpaQr(url, 180));
    $("#link-copy-ack").textContent = "";
  }
  $("#link-copy").addEventListener("click", async () => {
    const ack = $("#link-copy-ack");
    try {
      await navigator.clipboard.writeText($("#link-text").textContent);
      ack.textContent = "Copied";
      ack.className = "ack ok";
    } catch (e) {
      ack.textContent = "Copying is not allowed here: select the link instead.";
      ack.className = "ack error";
    }
  });

  Spa.bind($("#ci-submit"), "visit.create", () => {
    const name = $("#ci-name").value.trim();
    const ids = Array.from($("#ci-services").querySelectorAll("input:checked")).map((i) => Number(i.value));
    if (!name) return "Enter the customer's name.";
    if (!ids.length) return "Pick at least one service.";
    const args = { customer_name: name, service_ids: ids };
    const t = $("#ci-therapist").value;
    if (t) args.requested_therapist_id = Number(t);
    const phone = $("#ci-phone").value.trim();
    if (phone) args.phone = phone;
    const notes = $("#ci-notes").value.trim();
    if (notes) args.notes = notes;
    const rec = Spa.Customers.picked;
    if (rec && rec.name === name) args.customer_id = rec.id;
    return ["visit.create", args];
  }, (data) => {
    showLink(data);
    $("#checkin").reset();
    pickRecord(null);
    offerMatches(data);
  }, "Checked in");

  // A returning customer's card: "check in" fills the form for that record.
  function pickRecord(c) {
    Spa.Customers.picked = c;
    const box = $("#ci-record");
    box.hidden = !c;
    if (!c) {
      fill(box); // nothing of the record stays behind, hidden or not
      return;
    }
    fill(box, "Checking in the record of ", h("b", { text: c.name }), c.notes ? h("div", { class: "small warn", text: c.notes }) : null,
      h("button", { type: "button", class: "small ghost", text: "Not this record", onclick: () => pickRecord(null) }));
    $("#ci-name").value = c.name;
    $("#ci-phone").value = c.phone || "";
    $("#ci-name").focus();
  }
  Spa.Customers.onCheckIn = (c) => pickRecord(c);
  Spa.Customers.onBook = (c) => {
    Spa.Customers.picked = c;
    showTab("book");
  };
  // The record the form is filled for was forgotten or merged away: its
  // name and phone leave the form too.
  Spa.Customers.onUpdated = (c) => {
    const rec = Spa.Customers.picked;
    if (!rec || rec.id !== c.id || !(c.removed || c.forgotten)) return;
    if ($("#ci-name").value === rec.name) $("#ci-name").value = "";
    if ($("#ci-phone").value === (rec.phone || "")) $("#ci-phone").value = "";
    pickRecord(null);
  };
  Spa.Customers.mount();
  // A walk-in whose phone matches a record: offered, not silently duplicated.
  function offerMatches(data) {
    const matches = data.customer_matches || [];
    const v = data.visit || {};
    if (!matches.length || !v.id) return;
    const box = h("div", { class: "msg", id: "ci-matches" }, "This phone belongs to a customer record: ",
      matches.map((c) => Spa.button("Link " + v.number + " to " + c.name, "link-" + v.id + "-" + c.id,
        () => ["visit.update", { visit_id: v.id, customer_id: c.id }], { class: "small", done: () => box.remove() })));
    $("#checkin-card").append(box);
  }

  // ---- editing a visit before checkout (name, phone, notes, services; the
  // requested therapist while it waits) ------------------------------------------------------
  function editDialog(v) {
    const fields = [
      { name: "customer_name", label: "Customer name", value: v.customer_name || "" },
      { name: "phone", label: "Phone", type: "tel", value: v.phone || "" },
      { name: "notes", label: "Notes and allergies (staff only)", type: "textarea", value: v.notes || "" },
    ];
    if (v.state !== "awaiting_payment") {
      fields.push({ name: "services", label: "Services (the price and times follow)", type: "checks", value: v.service_ids || [],
        options: Array.from(services.values()).filter((s) => s.active !== false).sort(byName).map((s) => [s.id, s.name + " · " + Spa.money(s.price_cents)]) });
    }
    if (v.state === "waiting") {
      fields.push({ name: "therapist", label: "Requested therapist", type: "select", value: v.requested_therapist_id == null ? "" : v.requested_therapist_id,
        options: [["", "No request (rotation)"]].concat(Array.from(therapists.values()).sort(byName).map((t) => [t.id, t.name])) });
    }
    Spa.dialog({
      title: "Edit " + v.number + " " + (v.customer_name || ""),
      key: "edit-" + v.id,
      fields,
      submit: "Save",
      run: (f) => {
        const args = { visit_id: v.id };
        if (f.customer_name.trim() !== (v.customer_name || "")) args.customer_name = f.customer_name.trim();
        if (f.phone.trim() !== (v.phone || "")) args.phone = f.phone.trim() || null;
        if (f.notes.trim() !== (v.notes || "")) args.notes = f.notes.trim() || null;
        if (f.services) {
          const ids = f.services.map(Number);
          if (!ids.length) return "Pick at least one service.";
          if (ids.join(",") !== (v.service_ids || []).join(",")) args.service_ids = ids;
        }
        if (f.therapist !== undefined) {
          const t = f.therapist ? Number(f.therapist) : null;
          if (t !== (v.requested_therapist_id == null ? null : v.requested_therapist_id)) args.requested_therapist_id = t;
        }
        if (Object.keys(args).length === 1) return "Nothing changed.";
        return ["visit.update", args];
      },
    });
  }
  const editButton = (v) => h("button", { type: "button", class: "small", text: "Edit…", dataset: { edit: String(v.id) }, onclick: () => editDialog(visits.get(v.id) || v) });
  $("#checkin").addEventListener("submit", (e) => {
    e.preventDefault();
    $("#ci-submit").click();
  });

  // ---- queue and calling ---------------------------------------------------------------------
  function callArgs(visitId) {
    const args = {};
    if (visitId != null) args.visit_id = visitId;
    const t = $("#call-therapist").value;
    const r = $("#call-room").value;
    const reason = $("#call-reason").value.trim();
    if (t) args.therapist_id = Number(t);
    if (r) args.room_id = Number(r);
    if (reason) args.override_reason = reason;
    return ["visit.call", args];
  }
  Spa.bind($("#call-next"), "call-next", () => callArgs(null), () => {
    $("#call-reason").value = "";
  });

  function renderCallChoices() {
    const ts = $("#call-therapist");
    const was = ts.value;
    const avail = Array.from(therapists.values()).filter((t) => t.status === "available");
    avail.sort((a, b) => rotation.indexOf(a.id) - rotation.indexOf(b.id));
    fill(ts, h("option", { value: "", text: "Next in rotation" }), avail.map((t) => h("option", { value: String(t.id), text: t.name })));
    ts.value = Array.from(ts.options).some((o) => o.value === was) ? was : "";
    const rs = $("#call-room");
    const wasR = rs.value;
    const free = Array.from(rooms.values()).filter((r) => r.status === "available" || ((r.status === "held" || r.status === "occupied") && r.capacity > (r.visits || []).length)).sort(byName);
    fill(rs, h("option", { value: "", text: "Any free room" }), free.map((r) => h("option", { value: String(r.id), text: r.name })));
    rs.value = Array.from(rs.options).some((o) => o.value === wasR) ? wasR : "";
  }

  function leaveDialog(v) {
    Spa.dialog({
      title: v.number + " " + (v.customer_name || "") + " leaves without treatment",
      fields: [{ name: "reason", label: "Reason", value: "" }],
      submit: "Mark as left",
      danger: true,
      key: "leave-" + v.id,
      run: (f) => (f.reason.trim() ? ["visit.leave", { visit_id: v.id, reason: f.reason.trim() }] : "Give a reason."),
    });
  }

  function renderQueue() {
    const el = $("#queue");
    $("#queue-count").textContent = queue.length ? queue.length + " waiting" : "";
    if (!queue.length) {
      fill(el, h("tr", {}, h("td", { colspan: 5, class: "empty", text: "Nobody is waiting." })));
      return;
    }
    fill(el, queue.map((q) => {
      const v = visits.get(q.visit_id) || { id: q.visit_id, number: q.number, customer_name: q.customer_name };
      return h("tr", { dataset: { visit: String(q.visit_id) } },
        h("td", {}, h("span", { class: "ticket", text: q.number })),
        h("td", {}, q.customer_name || v.customer_name || "", q.requested_therapist_id ? h("div", { class: "muted small", text: "asks for " + staffName(q.requested_therapist_id) }) : null),
        h("td", { class: "small", text: svcNames(q.service_ids) }),
        h("td", { class: "num", text: typeof q.eta_min === "number" ? (q.eta_min ? "~" + q.eta_min + " min" : "now") : "–" }),
        h("td", { class: "actions" },
          Spa.button("Call", "call-" + q.visit_id, () => callArgs(q.visit_id), { class: "small primary", done: () => ($("#call-reason").value = "") }),
          editButton(v),
          h("button", { type: "button", class: "small", text: "Left…", onclick: () => leaveDialog(v) })));
    }));
  }

  function renderFloor() {
    const list = Array.from(visits.values()).filter((v) => v.state === "called" || v.state === "in_service").sort((a, b) => a.id - b.id);
    const el = $("#floor");
    if (!list.length) {
      fill(el, h("tr", {}, h("td", { colspan: 5, class: "empty", text: "No sessions right now." })));
    } else {
      fill(el, list.map((v) => {
        const acts = [];
        if (v.state === "called") acts.push(Spa.button("Start", "start-" + v.id, () => ["visit.start", { visit_id: v.id }], { class: "small primary" }));
        if (v.state === "in_service") acts.push(Spa.button("Finish", "finish-" + v.id, () => ["visit.finish", { visit_id: v.id }], { class: "small primary" }));
        acts.push(Spa.button("Undo", "undo-" + v.id, () => ["visit.undo", { visit_id: v.id }], { class: "small" }));
        acts.push(editButton(v));
        const when = v.state === "in_service" ? "ends " + Spa.clock(v.planned_end) : "called " + Spa.clock(v.called_at);
        return h("tr", {},
          h("td", {}, h("span", { class: "ticket", text: v.number })),
          h("td", { text: v.customer_name || "" }),
          h("td", { class: "small", text: staffName(v.therapist_id) + " · " + roomName(v.room_id) }),
          h("td", {}, h("span", { class: "pill " + v.state, text: Spa.words(v.state) }), h("div", { class: "muted small", text: when })),
          h("td", { class: "actions" }, acts));
      }));
    }
    const awaiting = Array.from(visits.values()).filter((v) => v.state === "awaiting_payment").sort((a, b) => a.id - b.id);
    const badge = $("#pay-count");
    badge.hidden = !awaiting.length;
    badge.textContent = String(awaiting.length);
    const payRow = (v) => h("li", { class: "between", dataset: { visit: String(v.id) } },
      h("span", {}, h("span", { class: "ticket", text: v.number }), " ", v.customer_name || "", h("span", { class: "muted small", text: " · " + svcNames(v.service_ids) + " · " + Spa.money(v.services_cents) })),
      h("span", {}, editButton(v), " ", h("button", { type: "button", class: "small primary", text: "Check out", onclick: () => openCheckout(v.id) })));
    fill($("#awaiting"), awaiting.length ? awaiting.map(payRow) : h("li", { class: "empty", text: "Nothing to check out." }));
    fill($("#co-list"), awaiting.length ? awaiting.map(payRow) : h("li", { class: "empty", text: "Nothing to check out." }));
  }

  // ---- corrections (admin): void, refund, re-tip -----------------------------------------------------
  const UNPAID = ["waiting", "called", "in_service", "awaiting_payment"];
  const refundedOf = (r) => ((r && r.refunds) || []).reduce((sum, x) => sum + x.amount_cents, 0);
  // A cashier's correction: an admin picks their name and types their PIN
  // on this screen; the hub checks it (with the login lockout).
  const approvalFields = () => (role === "admin" ? [] : [
    { name: "admin", label: "Approving admin", type: "select", options: admins.map((a) => [String(a.id), a.name]) },
    { name: "pin", label: "Admin PIN", type: "password" },
  ]);
  function withApproval(args, f) {
    if (role === "admin") return args;
    if (!f.admin || !f.pin) return "An admin must choose their name and enter their PIN.";
    args.approval = { admin_id: Number(f.admin), pin: f.pin };
    return args;
  }
  const asCommand = (name, args) => (typeof args === "string" ? args : [name, args]);

  function voidDialog(v) {
    Spa.dialog({
      title: "Void " + v.number,
      key: "void-" + v.id,
      danger: true,
      fields: [{ name: "reason", label: "Reason (kept in the day report)" }].concat(approvalFields()),
      submit: "Void visit",
      run: (f) => (f.reason.trim() ? asCommand("visit.void", withApproval({ visit_id: v.id, reason: f.reason.trim() }, f)) : "Give a reason."),
    });
  }
  function refundDialog(v) {
    const r = v.receipt || {};
    const left = (r.total_cents || 0) - refundedOf(r);
    const method = (r.payments && r.payments[0] && r.payments[0].method) || "cash";
    const sale = receipts.get(v.id);
    const lines = sale ? (sale.lines || []).filter((l) => l.gross_cents - (l.refunded_cents || 0) > 0) : [];
    Spa.dialog({
      title: "Refund " + v.number,
      key: "refund-" + v.id,
      fields: [
        { name: "what", label: "Refund", type: "select", value: "amount", options: [["amount", "An amount (spread over the lines)"], ["full", "Everything left"]]
          .concat(lines.map((l) => ["line-" + l.line, "Line: " + l.name + (l.qty > 1 ? " × " + (l.qty - (l.refunded_qty || 0)) : "") + " (" + Spa.money(l.gross_cents - (l.refunded_cents || 0)) + ")"])) },
        { name: "qty", label: "How many of that line (empty: all left)", type: "number" },
        { name: "amount", label: "Amount (up to " + Spa.money(left) + ")", type: "money", value: Spa.amount(left) },
        { name: "method", label: "Paid back as (a refund goes back in the tender it was paid with)", type: "select", value: method, options: [["cash", "Cash (from your open drawer)"], ["card", "Card"], ["voucher", "Voucher"], ["giftcard", "Gift card (back onto it)"], ["other", "Other"]] },
        { name: "other", label: "Pay back in a tender this visit was not paid with", type: "checkbox" },
        { name: "restock", label: "Put returned products back on the shelf", type: "checkbox" },
        { name: "reason", label: "Reason (kept in the day report)" },
      ].concat(approvalFields()),
      submit: "Refund",
      run: (f) => {
        if (!f.reason.trim()) return "Give a reason.";
        const args = { visit_id: v.id, method: f.method, reason: f.reason.trim() };
        if (f.what === "full") args.full = true;
        else if (f.what.startsWith("line-")) {
          const line = { line: Number(f.what.slice(5)) };
          if (String(f.qty || "").trim()) line.qty = Number(f.qty);
          args.lines = [line];
        } else {
          const cents = Spa.parseMoney(f.amount);
          if (cents == null || cents <= 0) return "Enter the amount to pay back, e.g. 10.00.";
          args.amount_cents = cents;
        }
        if (f.other) args.other_tender = true;
        if (f.restock) args.restock = true;
        return asCommand("visit.refund", withApproval(args, f));
      },
      done: (data) => printReceipt(data && data.receipt && data.receipt.id),
    });
  }
  function retipDialog(v) {
    const r = v.receipt || {};
    const shares = new Map((r.tips || []).map((t) => [t.therapist_id, t.amount_cents]));
    const ids = Array.from(new Set([...shares.keys(), ...therapists.keys()])).sort((a, b) => a - b);
    Spa.dialog({
      title: "Re-split the tip of " + v.number + " (" + Spa.money(r.tip_cents || 0) + ")",
      key: "retip-" + v.id,
      fields: ids.map((id) => ({ name: "t" + id, label: staffName(id), type: "money", value: shares.has(id) ? Spa.money(shares.get(id)) : "" }))
        .concat([{ name: "reason", label: "Reason (kept in the day report)" }]).concat(approvalFields()),
      submit: "Save tip split",
      run: (f) => {
        const split = [];
        for (const id of ids) {
          const text = f["t" + id].trim();
          if (!text) continue;
          const cents = Spa.parseMoney(text);
          if (cents == null) return staffName(id) + ": enter an amount such as 2.50.";
          if (cents > 0) split.push({ therapist_id: id, amount_cents: cents });
        }
        const sum = split.reduce((s, x) => s + x.amount_cents, 0);
        if (sum !== (r.tip_cents || 0)) return "The shares add up to " + Spa.money(sum) + "; the tip is " + Spa.money(r.tip_cents || 0) + ".";
        if (!f.reason.trim()) return "Give a reason.";
        return asCommand("visit.retip", withApproval({ visit_id: v.id, tip_split: split, reason: f.reason.trim() }, f));
      },
    });
  }
  function renderCorrections() {
    const card = $("#corrections-card");
    card.hidden = role !== "admin" && role !== "cashier";
    if (card.hidden) return;
    const list = Array.from(visits.values())
      .filter((v) => (v.state === "closed" && v.receipt) || UNPAID.includes(v.state))
      .sort((a, b) => b.id - a.id);
    fill($("#corrections"), list.length ? list.map((v) => {
      const r = v.receipt;
      const refunded = refundedOf(r);
      const acts = r
        ? [h("button", { type: "button", class: "small", text: "Refund", onclick: () => refundDialog(v) }),
          h("button", { type: "button", class: "small", text: "Re-tip", onclick: () => retipDialog(v) })]
        : [h("button", { type: "button", class: "small danger", text: "Void", onclick: () => voidDialog(v) })];
      return h("tr", { dataset: { visit: String(v.id) } },
        h("td", {}, h("span", { class: "ticket", text: v.number })),
        h("td", { text: v.customer_name || "" }),
        h("td", { class: "num" }, r ? Spa.money(r.total_cents) : Spa.money(v.services_cents),
          refunded ? h("div", { class: "muted small refunded", text: "refunded " + Spa.money(refunded) }) : null),
        h("td", {}, h("span", { class: "pill " + v.state, text: Spa.words(v.state) })),
        h("td", { class: "actions" }, acts));
    }) : h("tr", {}, h("td", { colspan: 5, class: "empty", text: "No visits to correct today." })));
  }

  function renderRooms() {
    const list = Array.from(rooms.values()).sort(byName);
    fill($("#rooms"), list.length ? list.map((r) => {
      const look = Spa.roomLook(r);
      const acts = [];
      if (r.status === "cleaning") acts.push(Spa.button("Ready", "room-ready-" + r.id, () => ["room.set_status", { room_id: r.id, status: "available" }]));
      if (r.status === "available") acts.push(Spa.button("Cleaning", "room-clean-" + r.id, () => ["room.set_status", { room_id: r.id, status: "cleaning" }]));
      if (r.status === "out_of_service") acts.push(Spa.button("Back in service", "room-back-" + r.id, () => ["room.set_status", { room_id: r.id, status: "available" }]));
      else if (r.status !== "occupied") acts.push(h("button", { type: "button", text: "Out of service…", onclick: () => oosDialog(r) }));
      let info = Spa.ROOM_STATUS[look] || look;
      if (typeof r.free_in_min === "number" && r.free_in_min > 0) info += " · free ~" + r.free_in_min + " min";
      if (r.status === "out_of_service" && r.reason) info += " · " + r.reason;
      return h("div", { class: "room " + look }, h("div", { class: "rn", text: r.name }), h("div", { class: "rs", text: info }), h("div", { class: "actions" }, acts));
    }) : h("p", { class: "empty", text: "No rooms yet (admin page)." }));
  }
  function oosDialog(r) {
    Spa.dialog({
      title: r.name + ": out of service",
      fields: [{ name: "reason", label: "Reason", value: "" }],
      submit: "Take out of service",
      danger: true,
      key: "oos-" + r.id,
      run: (f) => (f.reason.trim() ? ["room.set_status", { room_id: r.id, status: "out_of_service", reason: f.reason.trim() }] : "Give a reason."),
    });
  }

  function renderTherapists() {
    const list = Array.from(therapists.values()).sort((a, b) => {
      const ra = rotation.indexOf(a.id) + (a.status === "available" ? 0 : 1e6);
      const rb = rotation.indexOf(b.id) + (b.status === "available" ? 0 : 1e6);
      return (ra < 0 ? 1e9 : ra) - (rb < 0 ? 1e9 : rb) || byName(a, b);
    });
    fill($("#therapists"), list.length ? list.map((t) => {
      const who = { therapist_id: t.id };
      const acts = [];
      if (t.status === "off") acts.push(Spa.button("Clock in", "clock_in-" + t.id, () => ["therapist.clock_in", who], { class: "small" }));
      if (t.status === "available") acts.push(Spa.button("Break", "break-" + t.id, () => ["therapist.break", who], { class: "small" }));
      if (t.status === "break") acts.push(Spa.button("Resume", "resume-" + t.id, () => ["therapist.resume", who], { class: "small" }));
      if (t.status === "available" || t.status === "break") acts.push(Spa.button("Clock out", "clock_out-" + t.id, () => ["therapist.clock_out", who], { class: "small" }));
      const place = rotation.filter((id) => (therapists.get(id) || {}).status === "available").indexOf(t.id);
      return h("tr", {},
        h("td", { class: "num muted", text: place >= 0 ? "#" + (place + 1) : "" }),
        h("td", {}, t.name, h("div", { class: "muted small", text: "turns " + (Math.round((t.turns_today || 0) * 10) / 10) })),
        h("td", {}, h("span", { class: "pill " + t.status, text: Spa.words(t.status) })),
        h("td", { class: "actions" }, acts));
    }) : h("tr", {}, h("td", { class: "empty", text: "No therapists yet." })));
  }

  // ---- checkout ------------------------------------------------------------------------------
  let co = null; // {visit_id, request_id}
  const { payRowEl, readPayments, paymentArg, itemRowEl, cardRowEl, readLines, plusTax, soldLines } = Spa.Counter;
  const onCheckout = () => renderTotals();
  $("#co-add-item").addEventListener("click", () => { $("#co-lines").append(itemRowEl(onCheckout)); renderTotals(); });
  $("#co-add-card").addEventListener("click", () => { $("#co-lines").append(cardRowEl(onCheckout)); renderTotals(); });
  $("#co-add").addEventListener("click", () => {
    const t = totals();
    const rest = t.due != null && t.paid != null ? Math.max(0, t.due - t.paid) : 0;
    $("#co-payments").append(payRowEl("card", rest ? Spa.amount(rest) : "", renderTotals));
    renderTotals();
  });
  for (const id of ["#co-discount", "#co-tip"]) $(id).addEventListener("input", renderTotals);
  $("#co-discount-mode").addEventListener("change", renderTotals);
  // Tip presets: a share of the services, rounded half up; "custom" is the field.
  for (const b of document.querySelectorAll("#co-tip-presets button")) {
    b.addEventListener("click", () => {
      const v = co && visits.get(co.visit_id);
      const services = v ? v.services_cents || 0 : 0;
      const p = Number(b.dataset.tip);
      $("#co-tip").value = p ? Spa.amount(Math.floor((services * p + 50) / 100)) : "";
      renderTotals();
    });
  }
  /** The checkout needs the cashier's open drawer: say so before the form is filled. */
  function drawerFirst() {
    const open = !!(drawer && drawer.open !== false && !drawer.closed_at);
    $("#co-drawer-first").hidden = open;
    $("#co-pay").disabled = !open;
  }

  function totals() {
    const v = co && visits.get(co.visit_id);
    const lines = readLines($("#co-lines"));
    const services = v ? v.services_cents || 0 : 0;
    const goods = services + (typeof lines === "string" ? 0 : lines.products_cents);
    const cards = typeof lines === "string" ? 0 : lines.cards_cents;
    const dText = $("#co-discount").value.trim();
    const tText = $("#co-tip").value.trim();
    const percent = $("#co-discount-mode").value === "percent";
    const pct = percent && dText ? (/^\d{1,3}$/.test(dText) && Number(dText) <= 100 ? Number(dText) : null) : null;
    // The discount is on the goods (services and products), never on gift cards or the tip.
    const discount = !dText ? 0 : percent ? (pct == null ? null : Math.floor((goods * pct + 50) / 100)) : Spa.parseMoney(dText);
    const tip = tText ? Spa.parseMoney(tText) : 0;
    const payments = readPayments($("#co-payments"));
    const paid = payments.every((p) => p.amount != null) ? payments.reduce((s, p) => s + p.amount, 0) : null;
    const due = discount != null && tip != null && typeof lines !== "string" ? goods - discount + cards + tip : null;
    return { services, lines, discount, tip, payments, paid, due, pct };
  }
  function renderTotals() {
    const t = totals();
    const l = typeof t.lines === "string" ? null : t.lines;
    const rows = [
      ["Services", Spa.money(t.services)],
      l && l.products_cents ? ["Products", Spa.money(l.products_cents)] : null,
      l && l.cards_cents ? ["Gift cards sold", Spa.money(l.cards_cents)] : null,
      ["Discount", t.discount == null ? "?" : t.discount ? "−" + Spa.money(t.discount) : Spa.money(0)],
      ["Tip", t.tip == null ? "?" : Spa.money(t.tip)],
      ["Total due" + plusTax(), t.due == null ? "?" : Spa.money(t.due), "sum"],
      ["Paid", t.paid == null ? "?" : Spa.money(t.paid)],
    ];
    if (t.due != null && t.paid != null) {
      if (t.paid < t.due) rows.push(["Still to pay", Spa.money(t.due - t.paid)]);
      else if (t.paid > t.due) rows.push(["Change (cash)", Spa.money(t.paid - t.due)]);
    }
    fill($("#co-totals"), rows.filter(Boolean).map(([k, v, cls]) => h("tr", { class: cls || "" }, h("td", { text: k }), h("td", { class: "num", text: v }))));
  }

  function openCheckout(visitId) {
    showTab("checkout");
    const v = visits.get(visitId);
    if (!v) return;
    if (!co || co.visit_id !== visitId) co = { visit_id: visitId, request_id: Spa.randomId() };
    $("#co-empty").hidden = true;
    $("#co-receipt").hidden = true;
    $("#co-form").hidden = false;
    $("#co-number").textContent = v.number;
    $("#co-name").textContent = v.customer_name || "";
    fill($("#co-services"), (v.service_ids || []).map((id) => {
      const s = services.get(id);
      return h("tr", {}, h("td", { text: s ? s.name : "service " + id }), h("td", { class: "num", text: s ? Spa.money(s.price_cents) : "" }));
    }), h("tr", { class: "muted small" }, h("td", { text: "Therapist: " + staffName(v.therapist_id) }), h("td", {})));
    $("#co-discount").value = "";
    $("#co-discount-mode").value = "amount";
    $("#co-discount-reason").value = "";
    $("#co-tip").value = "";
    fill($("#co-lines"));
    drawerFirst();
    fill($("#co-payments"), payRowEl("cash", v.services_cents ? Spa.amount(v.services_cents) : "", renderTotals));
    Spa.clearError("checkout");
    renderTotals();
  }

  Spa.bind($("#co-pay"), "checkout", () => {
    if (!co) return "Pick a visit first.";
    const t = totals();
    if (t.discount == null) return "The discount is not an amount (e.g. 5.00).";
    if (t.tip == null) return "The tip is not an amount (e.g. 5.00).";
    if (typeof t.lines === "string") return t.lines;
    // A total of zero (a free service, a full discount) is checked out with
    // no payment: rows left empty or at 0.00 are dropped then.
    const given = t.due === 0 ? t.payments.filter((p) => p.text && p.amount !== 0) : t.payments;
    if (!given.length && t.due !== 0) return "Add a payment.";
    const bad = given.find((p) => p.amount == null || p.amount <= 0);
    if (bad) return "Every payment needs an amount above zero (e.g. 40.00).";
    const args = {
      visit_id: co.visit_id,
      request_id: co.request_id,
      payments: given.map(paymentArg),
    };
    if (t.lines.items.length) args.items = t.lines.items;
    if (t.lines.giftcards.length) args.giftcards = t.lines.giftcards;
    if (t.tip) args.tip_cents = t.tip;
    if (t.discount) {
      const reason = $("#co-discount-reason").value.trim();
      if (!reason) return "A discount needs a reason.";
      args.discount = t.pct != null ? { percent: t.pct, reason } : { amount_cents: t.discount, reason };
    }
    return ["visit.checkout", args, (err) => {
      // A refusal ends this attempt; a lost answer keeps its id, so a retry
      // cannot charge twice.
      if (co && err.code !== "timeout" && err.code !== "offline") co.request_id = Spa.randomId();
    }];
  }, (data) => {
    co = null;
    $("#co-form").hidden = true;
    if (data.receipt && data.receipt.sale && data.visit) receipts.set(data.visit.id, data.receipt.sale);
    showReceipt(data);
  });

  function showReceipt(data) {
    const r = data.receipt || {};
    const v = data.visit || {};
    const box = $("#co-receipt");
    box.hidden = false;
    const line = (k, c, cls) => h("tr", { class: cls || "" }, h("td", { text: k }), h("td", { class: "num", text: Spa.money(c) }));
    fill(box, h("div", { class: "receipt", id: "receipt" },
      h("h3", { text: "Paid · " + (v.number || "") + " " + (v.customer_name || "") }),
      h("table", { class: "totals" },
        line("Services", r.services_cents),
        r.discount_cents ? line("Discount", -r.discount_cents) : null,
        r.tip_cents ? line("Tip", r.tip_cents) : null,
        line("Total", r.total_cents, "sum"),
        (r.payments || []).map((p) => line("Paid " + p.method + (p.reference ? " (" + p.reference + ")" : ""), p.amount_cents)),
        r.change_cents ? line("Change", r.change_cents) : null),
      (r.tips || []).length ? h("p", { class: "muted small", text: "Tips: " + r.tips.map((t) => staffName(t.therapist_id) + " " + Spa.money(t.amount_cents)).join(", ") }) : null,
      r.sale ? h("p", { class: "muted small", text: "Receipt " + r.sale.number + (r.sale.taxes || []).map((t) => " · tax " + t.rate + " " + Spa.money(t.tax_cents)).join("") }) : null,
      r.sale ? soldLines(r.sale, (data.giftcards || []).map((c) => c.code).filter(Boolean)) : null,
      data.retried ? h("p", { class: "muted small", text: "This checkout was already recorded: this is its receipt, charged once." }) : null),
      h("div", { class: "row" },
        r.sale ? h("button", { type: "button", id: "co-print", text: "Print receipt", dataset: { receipt: String(r.sale.id) }, onclick: () => printReceipt(r.sale.id) }) : null,
        h("button", { type: "button", text: "Done", onclick: () => { box.hidden = true; $("#co-empty").hidden = false; } })));
  }

  /** Opens the receipt page (fetched with the staff token, never in a URL)
   * in a window of its own and prints it. */
  async function printReceipt(id) {
    if (!id || !conn || !conn.staff) return;
    const res = await fetch("/receipt/" + id, { headers: { Authorization: "Bearer " + conn.staff.token } });
    if (!res.ok) return;
    const html = (await res.text()).replace("<head>", '<head><base href="' + location.origin + '/">');
    const url = URL.createObjectURL(new Blob([html], { type: "text/html" }));
    const w = window.open(url, "_blank");
    if (w) w.addEventListener("load", () => { w.focus(); w.print(); });
  }

  /** The receipt printer's state, when there is one (every 10 s). */
  async function printerStatus() {
    if (!conn || !conn.staff) return;
    try {
      const res = await fetch("/api/printer", { headers: { Authorization: "Bearer " + conn.staff.token } });
      const p = res.ok ? (await res.json()).printer : null;
      const el = $("#printer-status");
      el.hidden = !p;
      if (p) el.textContent = p.ok ? "Receipt printer ready (" + p.printed + " printed)" : "Receipt printer: " + (p.last_error || "not ready") + (p.not_printed.length ? " · not printed: " + p.not_printed.join(", ") : "");
      el.className = p && !p.ok ? "error small" : "muted small";
    } catch (e) {
      /* the next round tells */
    }
  }
  setInterval(printerStatus, 10000);

  // ---- drawer ----------------------------------------------------------------------------------
  function money(id, label, optional) {
    const t = $(id).value.trim();
    if (!t) return optional ? 0 : label + ": enter an amount (e.g. 100.00).";
    const c = Spa.parseMoney(t);
    return c == null ? label + ": not an amount (e.g. 100.00)." : c;
  }
  Spa.bind($("#dr-open"), "drawer.open", () => {
    const f = money("#dr-float", "Float");
    return typeof f === "string" ? f : ["drawer.open", { float_cents: f }];
  }, (d) => setDrawer(d.drawer), "Opened");
  Spa.bind($("#dr-move"), "drawer.move", () => {
    const a = money("#dr-amount", "Amount");
    if (typeof a === "string") return a;
    return ["drawer.move", { kind: $("#dr-kind").value, amount_cents: a, note: $("#dr-note").value.trim() }];
  }, (d) => {
    if (d.drawer) setDrawer(d.drawer);
    $("#dr-amount").value = "";
    $("#dr-note").value = "";
  }, "Recorded");
  Spa.bind($("#dr-close"), "drawer.close", () => {
    const counted = {};
    for (const m of ["cash", "card", "voucher", "other"]) {
      const c = money("#dr-" + m, m, true);
      if (typeof c === "string") return c;
      counted[m] = c;
    }
    const args = { counted };
    if ($("#dr-force").checked) args.force = true;
    return ["drawer.close", args];
  }, (d) => {
    if (d.drawer) setDrawer(d.drawer);
    $("#z-card").hidden = false;
    fill($("#z-report"), zReport(d.z_report || {}));
  }, "Closed");

  function setDrawer(d) {
    drawer = d || null;
    drawerFirst();
    renderDrawer();
  }
  const METHODS = ["cash", "card", "voucher", "other"];
  function perMethodTable(cols) {
    // cols: [[title, {cash, card, …}], …]
    return h("table", {},
      h("thead", {}, h("tr", {}, h("th", { text: "" }), cols.map(([t]) => h("th", { class: "num", text: t })))),
      h("tbody", {}, METHODS.map((m) => h("tr", {}, h("td", { text: m }), cols.map(([, o]) => h("td", { class: "num", text: Spa.money(o && o[m] != null ? o[m] : 0) }))))));
  }
  function renderDrawer() {
    const el = $("#drawer-status");
    if (!drawer) return;
    el.classList.remove("empty");
    if (typeof drawer !== "object" || !("float_cents" in drawer)) {
      fill(el, show(drawer));
      return;
    }
    const d = drawer;
    const open = d.open !== false && !d.closed_at;
    $("#dr-open").closest(".card").hidden = open;
    $("#dr-move").closest(".card").hidden = !open;
    $("#dr-close").closest(".card").hidden = !open;
    fill(el,
      h("p", {}, h("span", { class: "pill " + (open ? "available" : "off"), text: open ? "open" : "closed" }), " ",
        open ? "since " + Spa.clock(d.opened_at) : "closed " + Spa.clock(d.closed_at), " · float " + Spa.money(d.float_cents)),
      d.expected ? perMethodTable([["Taken", d.taken], ["Expected in drawer", d.expected]]) : null,
      (d.moves || []).length ? [h("h3", { text: "Movements" }), h("ul", { class: "list" }, d.moves.map((m) => h("li", { class: "between" },
        h("span", {}, Spa.clock(m.at) + " · " + Spa.words(m.kind) + (m.note ? " · " + m.note : "")), h("span", { class: "num", text: Spa.money(m.amount_cents) }))))] : null);
  }
  function zReport(z) {
    if (z.expected && typeof z.expected === "object") return perMethodTable([["Expected", z.expected], ["Counted", z.counted], ["Variance", z.variance]]);
    return show(z);
  }

  // ---- a readable rendering of any JSON (drawer, reports) ---------------------------------------
  function label(k) {
    return Spa.words(String(k).replace(/_cents$/, "").replace(/_ms$/, ""));
  }
  function scalar(k, v) {
    if (v == null) return "–";
    if (typeof v === "number" && /_cents$/.test(k)) return Spa.money(v);
    if (typeof v === "number" && /(_at|_since)$/.test(k) && v > 1e11) return new Date(v).toLocaleString();
    if (typeof v === "boolean") return v ? "yes" : "no";
    if (typeof v === "number" && !Number.isInteger(v)) return String(Math.round(v * 100) / 100);
    return String(v);
  }
  function show(value, key) {
    if (value == null || typeof value !== "object") return h("span", { text: scalar(key || "", value) });
    if (Array.isArray(value)) {
      if (!value.length) return h("span", { class: "muted", text: "none" });
      if (value.every((x) => x && typeof x === "object" && !Array.isArray(x))) {
        const cols = Array.from(value.reduce((s, x) => { Object.keys(x).forEach((k) => s.add(k)); return s; }, new Set()));
        return h("table", {}, h("thead", {}, h("tr", {}, cols.map((c) => h("th", { class: "", text: label(c) })))),
          h("tbody", {}, value.map((x) => h("tr", {}, cols.map((c) => h("td", {}, show(x[c], c)))))));
      }
      return h("span", { text: value.map((x) => scalar(key || "", x)).join(", ") });
    }
    const entries = Object.entries(value);
    if (!entries.length) return h("span", { class: "muted", text: "none" });
    return h("dl", { class: "kv" }, entries.map(([k, v]) => [h("dt", { text: label(k) }), h("dd", {}, show(v, /_cents$/.test(key || "") && typeof v === "number" ? key : k))]));
  }

  // ---- day report -----------------------------------------------------------------------------
  $("#rp-date").value = Spa.today();
  Spa.bind($("#rp-show"), "report.day", () => {
    const date = $("#rp-date").value;
    return ["report.day", date ? { date } : {}];
  }, (d) => fill($("#report"), h("div", { id: "report-body" }, reportView(d.report || d))));

  function reportView(r) {
    if (!r || typeof r !== "object" || !("revenue_by_method" in r)) return show(r);
    const fig = (k, v) => h("div", { class: "figure" }, h("div", { class: "v", text: v }), h("div", { class: "k", text: k }));
    const mins = (m) => (m == null ? "–" : Math.round(m) + " min");
    const table = (cols, rows) => h("table", {}, h("thead", {}, h("tr", {}, cols.map(([t, cls]) => h("th", { class: cls || "", text: t })))),
      h("tbody", {}, rows.length ? rows.map((row) => h("tr", {}, row.map((c, i) => h("td", { class: cols[i][1] || "", text: c })))) : h("tr", {}, h("td", { colspan: cols.length, class: "empty", text: "none" }))));
    const states = Object.entries(r.visits_by_state || {}).filter(([, n]) => n);
    return h("div", { class: "stack" },
      h("div", { class: "figures" },
        fig("revenue", Spa.money(r.revenue_cents)),
        fig("services", Spa.money(r.services_cents)),
        fig("discounts (" + ((r.discounts || {}).count || 0) + ")", Spa.money((r.discounts || {}).cents || 0)),
        fig("tips (" + ((r.tips || {}).count || 0) + ")", Spa.money((r.tips || {}).cents || 0)),
        fig("refunds (" + ((r.refunds || {}).count || 0) + ")", Spa.money((r.refunds || {}).cents || 0)),
        fig("visits", String(r.visits_created || 0)),
        fig("average wait", mins(r.average_wait_min)),
        fig("average service", mins(r.average_service_min))),
      h("div", { class: "cols-2" },
        h("div", {}, h("h3", { text: "By payment method" }), perMethodTable([["Revenue", r.revenue_by_method], ["Refunds", r.refunds_by_method]])),
        h("div", {}, h("h3", { text: "Visits by state" }), table([["State"], ["Visits", "num"]], states.map(([s, n]) => [Spa.words(s), String(n)])))),
      h("div", {}, h("h3", { text: "Services sold" }), table([["Service"], ["Sold", "num"], ["Revenue", "num"]], (r.services_sold || []).map((s) => [s.name, String(s.count), Spa.money(s.revenue_cents)]))),
      h("div", {}, h("h3", { text: "Staff who served, took a turn or earned tips" }), table([["Name"], ["Role"], ["Sessions", "num"], ["Turns", "num"], ["Tips", "num"], ["of which re-splits", "num"]], (r.therapists || []).map((t) => [t.name, Spa.words(t.role || ""), String(t.sessions), String(Math.round(t.turns * 1000) / 1000), Spa.money(t.tips_cents), t.tip_corrections_cents ? Spa.money(t.tip_corrections_cents) : ""]))),
      (r.tip_corrections || []).length ? h("div", {}, h("h3", { text: "Tip re-splits made this day" }), table([["Visit"], ["Therapist"], ["Moved", "num"], ["Reason"]], r.tip_corrections.flatMap((c) => c.changes.map((ch) => [c.number, ch.name, Spa.money(ch.delta_cents), c.reason])))) : null,
      h("div", {}, h("h3", { text: "Rooms" }), table([["Room"], ["Sessions", "num"], ["Occupied", "num"], ["Utilisation", "num"]], (r.rooms || []).map((x) => [x.name, String(x.sessions), mins(x.occupied_min), (Math.round(x.utilisation_percent * 10) / 10) + " %"]))),
      (r.drawers || []).length ? h("div", {}, h("h3", { text: "Drawers" }), (r.drawers || []).map((d) => h("div", {}, h("p", { class: "muted small", text: "Drawer " + d.drawer_id + (d.forced ? " (closed by force)" : "") }), perMethodTable([["Expected", d.expected], ["Counted", d.counted], ["Variance", d.variance]])))) : null);
  }
  $("#rp-csv").addEventListener("click", async () => {
    const btn = $("#rp-csv");
    const ack = $("#rp-csv-ack");
    const date = $("#rp-date").value || Spa.today();
    btn.disabled = true;
    ack.textContent = "…";
    ack.className = "ack";
    try {
      const res = await fetch("/api/reports/day.csv?date=" + encodeURIComponent(date), { headers: { Authorization: "Bearer " + conn.staff.token } });
      if (!res.ok) {
        let msg = "The hub answered " + res.status + ".";
        try {
          const body = await res.json();
          if (body && body.error && body.error.message) msg = body.error.message;
        } catch (e) {
          /* not JSON */
        }
        throw new Error(msg);
      }
      const blob = await res.blob();
      const a = h("a", { href: URL.createObjectURL(blob), download: "day-report-" + date + ".csv" });
      document.body.append(a);
      a.click();
      setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
      ack.textContent = "";
    } catch (e) {
      ack.textContent = e.message || "Download failed.";
      ack.className = "ack error";
    }
    btn.disabled = false;
  });

  // ---- tabs and the hub ---------------------------------------------------------------------------
  const showTab = Spa.tabs(document.querySelector(".tabnav"));

  function renderAll() {
    renderCheckinChoices();
    renderCallChoices();
    renderQueue();
    renderFloor();
    renderRooms();
    renderTherapists();
    renderDrawer();
    renderCorrections();
    Spa.Counter.refresh();
    drawerFirst();
    printerStatus();
  }
  function alert(p) {
    const box = h("div", { class: "msg error", text: p.message || "Alert" });
    $("#alerts").append(box);
    setTimeout(() => box.remove(), 60000);
  }

  conn = Spa.staffPage(["cashier", "admin"], {
    onSnapshot: (snap) => {
      role = snap.me && snap.me.role;
      $("#admin-link").hidden = role !== "admin";
      admins = (snap.staff || []).filter((s) => s.role === "admin" && s.active !== false);
      receipts.clear();
      (snap.receipts || []).forEach((r) => receipts.set(r.visit_id, r));
      visits.clear();
      (snap.visits || []).forEach((v) => visits.set(v.id, v));
      services.clear();
      (snap.services || []).forEach((s) => services.set(s.id, s));
      therapists.clear();
      (snap.therapists || []).forEach((t) => therapists.set(t.id, t));
      rooms.clear();
      (snap.rooms || []).forEach((r) => rooms.set(r.id, r));
      Spa.Counter.onProducts(snap.products || []);
      rotation = snap.rotation || [];
      queue = snap.queue || [];
      Spa.Book.onSnapshot(snap);
      if (snap.drawer !== undefined) drawer = snap.drawer;
      else if (Array.isArray(snap.drawers)) {
        const mine = snap.me && snap.me.staff ? snap.me.staff.id : null;
        drawer = snap.drawers.find((d) => d.open && d.owner_id === mine) || snap.drawers.find((d) => d.open) || drawer;
      }
      renderAll();
    },
    on: {
      "visit.updated": (p) => {
        visits.set(p.visit.id, p.visit);
        renderFloor();
        renderQueue();
        renderCorrections();
      },
      "queue.updated": (p) => {
        queue = p.queue || [];
        renderQueue();
      },
      "room.updated": (p) => {
        if (p.room.removed) rooms.delete(p.room.id);
        else rooms.set(p.room.id, p.room);
        renderRooms();
        renderCallChoices();
        renderFloor();
      },
      "therapist.updated": (p) => {
        if (p.therapist) {
          if (p.therapist.active === false) therapists.delete(p.therapist.id);
          else therapists.set(p.therapist.id, p.therapist);
        }
        if (p.rotation) rotation = p.rotation;
        renderTherapists();
        renderCallChoices();
        renderCheckinChoices();
        renderQueue();
        Spa.Book.onTherapists(Array.from(therapists.values()));
      },
      "service.updated": (p) => {
        if (p.service.active === false) services.delete(p.service.id);
        else services.set(p.service.id, p.service);
        renderCheckinChoices();
      },
      "drawer.updated": (p) => setDrawer(p.drawer),
      "product.updated": (p) => {
        if (p.product) Spa.Counter.onProduct(p.product);
      },
      "receipt.updated": (p) => {
        if (p.receipt && p.receipt.visit_id != null && p.receipt.kind === "sale") receipts.set(p.receipt.visit_id, p.receipt);
      },
      "customer.updated": (p) => Spa.Customers.updated(p.customer),
      "booking.updated": (p) => Spa.Book.onBooking(p),
      "shift.updated": () => Spa.Book.onSchedule(),
      "block.updated": () => Spa.Book.onSchedule(),
      alert: (p) => alert(p),
    },
  });
  Spa.Book.init();
  Spa.Counter.init(printReceipt);
  setInterval(() => conn && conn.ready && conn.sync(), 5 * 60000);
})();
