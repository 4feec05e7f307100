// Returning customers (#16), on /cashier and /admin: a search box that finds
// as you type (2 letters of any word of the name, or phone digits), the
// customer card (notes, last visits, "check in", "book", edit), a new
// record, and on the admin page merge and forget, each behind a
// confirmation that names what it does.
(function () {
  "use strict";
  const { h, $, fill } = Spa;
  const C = (Spa.Customers = {
    /** The record the desk is checking in or booking ({id, name, phone}). */
    picked: null,
    /** Set by the page: (customer) → check in / book. */
    onCheckIn: null,
    onBook: null,
    /** The admin page shows merge and forget. */
    admin: false,
  });

  /** The hits of the last search, kept current by `customer.updated`. */
  let last = [];
  let seq = 0;
  /** The id of the record on the card (#cust-detail), or null. */
  let shown = null;

  function line(c) {
    const bits = [c.phone ? "☎ " + c.phone : null, c.visits ? c.visits + " visit(s)" : null, c.last_visit_at ? "last " + new Date(c.last_visit_at).toLocaleDateString() : null].filter(Boolean);
    return bits.join(" · ");
  }

  function renderHits() {
    fill($("#cust-results"), last.length ? last.map((c) => h("li", { class: "cust-hit", dataset: { customer: String(c.id) } },
      h("button", { type: "button", class: "link", text: c.name, onclick: () => card(c) }),
      h("span", { class: "muted small", text: " " + line(c) }),
      c.notes ? h("div", { class: "small warn", text: c.notes }) : null))
      : h("li", { class: "muted", text: "No customer found." }));
  }

  async function search(q, box) {
    const mine = ++seq;
    if (q.trim().length < 2) {
      last = [];
      fill(box);
      return;
    }
    const ack = await Spa.send("customer.search", { q });
    if (mine !== seq) return; // a later keystroke won
    if (!ack.ok) {
      fill(box, h("li", { class: "msg error", text: ack.error.message }));
      return;
    }
    last = ack.data.customers || [];
    renderHits();
  }

  function editDialog(c) {
    Spa.dialog({
      title: c ? "Edit " + c.name : "New customer",
      key: c ? "cust-edit-" + c.id : "cust-new",
      fields: [
        { name: "name", label: "Name", value: c ? c.name : $("#cust-q").value.trim() },
        { name: "phone", label: "Phone", type: "tel", value: c ? c.phone || "" : "" },
        { name: "email", label: "Email (optional)", type: "email", value: c ? c.email || "" : "" },
        { name: "notes", label: "Notes and allergies (staff only)", type: "textarea", value: c ? c.notes || "" : "" },
      ],
      submit: c ? "Save" : "Create",
      run: (f) => {
        const args = { name: f.name.trim(), phone: f.phone.trim() || null, email: f.email.trim() || null, notes: f.notes.trim() || null };
        if (!args.name) return "Give the customer's name.";
        if (c) return ["customer.update", Object.assign({ customer_id: c.id }, args)];
        return ["customer.create", args];
      },
      done: (data) => data && data.customer && card(data.customer),
    });
  }

  /** Shows a record's card; its last visits come from `customer.history`. */
  async function card(c) {
    const el = $("#cust-detail");
    el.hidden = false;
    shown = c.id;
    el.dataset.customer = String(c.id);
    const visitsBox = h("ul", { class: "list small", id: "cust-visits" }, h("li", { class: "muted", text: "Loading the last visits…" }));
    const acts = [];
    // A forgotten record is kept only for its history: nothing more is done with it.
    if (c.forgotten) acts.push(h("p", { class: "msg", id: "cust-forgotten", text: "Forgotten: the name, phone, email and notes were removed everywhere. The visits and their amounts stay." }));
    else if (C.onCheckIn) acts.push(h("button", { type: "button", class: "primary", id: "cust-checkin", text: "Check in", onclick: () => { C.picked = c; C.onCheckIn(c); } }));
    if (C.onBook && !c.forgotten) acts.push(h("button", { type: "button", id: "cust-book", text: "Book", onclick: () => { C.picked = c; C.onBook(c); } }));
    if (!c.forgotten) acts.push(h("button", { type: "button", id: "cust-edit", text: "Edit record", onclick: () => editDialog(c) }));
    if (C.admin && !c.forgotten) {
      acts.push(h("button", { type: "button", id: "cust-merge", text: "Merge into…", onclick: () => mergeDialog(c) }));
      acts.push(h("button", { type: "button", class: "danger", id: "cust-forget", text: "Forget…", onclick: () => forgetDialog(c) }));
    }
    fill(el,
      h("div", { class: "between" }, h("h3", { id: "cust-name", text: c.name }), h("span", { class: "muted small", text: "#" + c.id })),
      h("div", { class: "muted small", text: [c.phone ? "☎ " + c.phone : null, c.email].filter(Boolean).join(" · ") }),
      c.notes ? h("div", { class: "notes", id: "cust-notes", text: c.notes }) : null,
      h("div", { class: "row" }, acts),
      h("h4", { text: "Last visits" }), visitsBox);
    const ack = await Spa.send("customer.history", { customer_id: c.id });
    if (shown !== c.id || !visitsBox.isConnected) return; // another card (or a newer copy) is shown
    if (!ack.ok) {
      fill(visitsBox, h("li", { class: "msg error", text: ack.error.message }));
      return;
    }
    const vs = (ack.data.visits || []).slice(0, 5);
    fill(visitsBox, vs.length ? vs.map((v) => h("li", {},
      h("b", { text: new Date(v.created_at).toLocaleDateString() + " " + v.number }), " ",
      (v.services || []).map((s) => s.name).join(", "),
      h("span", { class: "muted", text: " · " + (v.therapist || "–") + " · " + Spa.words(v.state) + (v.paid_cents ? " · " + Spa.money(v.paid_cents) : "") })))
      : h("li", { class: "muted", text: "No visits yet." }));
  }
  C.card = card;

  // The confirmations name the consequences; the browser test
  // (tests/browser/pages.test.mjs) reads them.
  function mergeDialog(c) {
    const others = last.filter((o) => o.id !== c.id && !o.forgotten);
    Spa.dialog({
      title: "Merge " + c.name + " (#" + c.id + ") into another record",
      key: "cust-merge-" + c.id,
      text: "The history moves over: every visit and booking of " + c.name + " (#" + c.id + ") moves to the record you keep, which keeps its own name and notes (a missing phone, email or notes is taken from #" + c.id + "). The duplicate #" + c.id + " is then gone: search no longer finds it. This cannot be undone.",
      fields: [{ name: "into", label: "Keep this record", type: "select", options: others.map((o) => [o.id, o.name + " (#" + o.id + (o.phone ? ", " + o.phone : "") + ")"]) }],
      submit: "Merge",
      danger: true,
      run: (f) => (f.into ? ["customer.merge", { customer_id: c.id, into_id: Number(f.into) }] : "Search so that both records are listed, then pick the one to keep."),
      done: (data) => data && data.customer && card(data.customer),
    });
  }

  function forgetDialog(c) {
    Spa.dialog({
      title: "Forget " + c.name + " (#" + c.id + ")",
      key: "cust-forget-" + c.id,
      text: "The right to erasure: " + c.name + "'s name, phone, email and notes are removed everywhere: from the record, from every visit and booking, from the event log and from every backup made from now on (backups made before keep them until they are deleted). Screens that show them are blanked at once. Day reports keep every count and amount. This cannot be undone.",
      fields: [
        { name: "reason", label: "Reason (e.g. asked by email on 3 May)" },
        { name: "sure", label: "I understand this cannot be undone", type: "checkbox" },
      ],
      submit: "Forget",
      danger: true,
      run: (f) => {
        if (!f.reason.trim()) return "Give a reason.";
        if (!f.sure) return "Tick the box to confirm.";
        return ["customer.forget", { customer_id: c.id, reason: f.reason.trim() }];
      },
      // The ack carries no record: show the blanked one (its
      // `customer.updated` does the same, whichever comes first).
      done: async () => {
        const ack = await Spa.send("customer.history", { customer_id: c.id });
        if (ack.ok && shown === c.id) card(ack.data.customer);
      },
    });
  }

  /** Wires the search box (#cust-q, #cust-results, #cust-detail, #cust-new). */
  C.mount = function () {
    const q = $("#cust-q");
    const box = $("#cust-results");
    let timer = null;
    q.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => search(q.value, box), 120);
    });
    $("#cust-new").addEventListener("click", () => editDialog(null));
  };

  /**
   * A changed record (`customer.updated`): the hit list and the card show
   * the new copy, a forgotten one blanked; a record merged into another
   * (`removed`) leaves both. The page's own hook (C.onUpdated) runs last.
   */
  C.updated = function (c) {
    const i = last.findIndex((o) => o.id === c.id);
    if (i >= 0) {
      if (c.removed) last.splice(i, 1);
      else last[i] = c;
      renderHits();
    }
    if (shown === c.id) {
      if (c.removed) {
        shown = null;
        fill($("#cust-detail"), h("p", { class: "muted", id: "cust-gone", text: "This record was merged into another." }));
      } else card(c);
    }
    if (C.onUpdated) C.onUpdated(c);
  };
})();
