// The counter's sales (#17) on the front desk: product and gift card lines
// and payment rows (a gift card pays with its code), used by the visit's
// checkout in cashier.js and by the "Sale (no visit)" card here; the new
// cards' codes on a receipt (shown again if a lost answer is retried); a
// gift card's balance. The page
// shows list prices; the hub prices the bill, the discount and the tax.
(function () {
  "use strict";
  const { h, $, fill } = Spa;
  const byName = (a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }) || a.id - b.id;
  /** Products on the shelf (snapshot and `product.updated`). */
  const products = new Map();
  /** Prints a receipt by id (cashier.js owns the staff token). */
  let print = () => {};

  /** A payment row; a gift card payment asks for the card's code instead of a reference. */
  function payRowEl(method, amount, onChange) {
    const row = h("div", { class: "pay-row" },
      h("select", { class: "pm", "aria-label": "Method" }, ["cash", "card", "voucher", "giftcard", "other"].map((m) => h("option", { value: m, text: m === "giftcard" ? "gift card" : m }))),
      h("input", { class: "pa", inputmode: "decimal", placeholder: "0.00", "aria-label": "Amount" }),
      h("input", { class: "pr", placeholder: "reference (optional)", "aria-label": "Reference", maxlength: 100 }),
      h("input", { class: "pc", placeholder: "gift card code", "aria-label": "Gift card code", maxlength: 40, autocomplete: "off" }),
      h("button", { type: "button", class: "small ghost", text: "✕", title: "Remove", onclick: () => { row.remove(); onChange(); } }));
    const pick = () => {
      const card = row.querySelector(".pm").value === "giftcard";
      row.querySelector(".pc").hidden = !card;
      row.querySelector(".pr").hidden = card;
    };
    row.querySelector(".pm").value = method;
    row.querySelector(".pa").value = amount == null ? "" : amount;
    pick();
    row.addEventListener("input", () => { pick(); onChange(); });
    return row;
  }
  const readPayments = (box) => Array.from(box.children).map((row) => ({
    method: row.querySelector(".pm").value,
    text: row.querySelector(".pa").value.trim(),
    amount: Spa.parseMoney(row.querySelector(".pa").value),
    reference: row.querySelector(".pr").value.trim(),
    code: row.querySelector(".pc").value.trim(),
  }));
  /** The wire form of a payment: a gift card's code, or a reference when one was typed. */
  function paymentArg(p) {
    const arg = { method: p.method, amount_cents: p.amount };
    if (p.method === "giftcard") arg.code = p.code;
    else if (p.reference) arg.reference = p.reference;
    return arg;
  }

  // Product and gift card lines, on a visit's checkout and in a sale. The
  // page shows list prices; the hub prices the lines, the discount and the tax.
  function itemRowEl(onChange) {
    const list = Array.from(products.values()).filter((p) => p.active !== false).sort(byName);
    const row = h("div", { class: "pay-row", dataset: { kind: "item" } },
      h("select", { class: "ip", "aria-label": "Product" }, list.map((p) => h("option", { value: String(p.id), text: p.name + " · " + Spa.money(p.price_cents) + " · " + p.stock + " in stock" }))),
      h("input", { class: "iq", type: "number", min: "1", step: "1", value: "1", "aria-label": "Quantity" }),
      h("span", { class: "il num" }),
      h("button", { type: "button", class: "small ghost", text: "✕", title: "Remove", onclick: () => { row.remove(); onChange(); } }));
    const price = () => {
      const p = products.get(Number(row.querySelector(".ip").value));
      const q = Number(row.querySelector(".iq").value);
      row.querySelector(".il").textContent = p && Number.isInteger(q) ? Spa.money(p.price_cents * q) : "?";
    };
    row.addEventListener("input", () => { price(); onChange(); });
    price();
    return row;
  }
  function cardRowEl(onChange) {
    const row = h("div", { class: "pay-row", dataset: { kind: "card" } },
      h("span", { text: "Gift card of" }),
      h("input", { class: "ga", inputmode: "decimal", placeholder: "50.00", "aria-label": "Gift card amount" }),
      h("button", { type: "button", class: "small ghost", text: "✕", title: "Remove", onclick: () => { row.remove(); onChange(); } }));
    row.addEventListener("input", onChange);
    return row;
  }
  /** The lines as `items` and `giftcards`, with their list prices; a string when one cannot be read. */
  function readLines(box) {
    const out = { items: [], giftcards: [], products_cents: 0, cards_cents: 0 };
    for (const row of box.children) {
      if (row.dataset.kind === "item") {
        const p = products.get(Number(row.querySelector(".ip").value));
        if (!p) return "Pick a product on every product line (products are made on the admin page).";
        const qty = Number(row.querySelector(".iq").value);
        if (!Number.isInteger(qty)) return "Quantity: a whole number such as 1.";
        out.items.push({ product_id: p.id, qty });
        out.products_cents += p.price_cents * qty;
      } else {
        const a = Spa.parseMoney(row.querySelector(".ga").value);
        if (a == null) return "Gift card: enter its amount (e.g. 50.00).";
        out.giftcards.push({ amount_cents: a });
        out.cards_cents += a;
      }
    }
    return out;
  }
  const plusTax = () => (Spa.currency.prices_include_tax === false ? " (before tax)" : "");

  /** The products and gift cards of a receipt as the hub priced them, and
   * the new cards' codes: shown this once (the hub keeps only a hash). */
  function soldLines(receipt, codes) {
    const sold = (receipt.lines || []).filter((l) => l.kind === "product" || l.kind === "giftcard");
    return [
      sold.length ? h("table", { class: "totals sold" }, sold.map((l) => h("tr", {},
        h("td", { text: l.name + (l.qty > 1 ? " × " + l.qty : "") }), h("td", { class: "num", text: Spa.money(l.gross_cents) })))) : null,
      codes.length ? h("div", { class: "msg giftcodes" }, h("b", { text: "Gift card code" + (codes.length > 1 ? "s" : "") + " (write it on the card): " }),
        codes.map((c) => h("code", { class: "giftcode", text: c + " " }))) : null,
    ];
  }

  // ---- a sale without a visit, and a gift card's balance ---------------------------------------
  let sale = { request_id: Spa.randomId() };
  const onSale = () => renderSaleTotals();
  function saleTotals() {
    const lines = readLines($("#sale-lines"));
    const payments = readPayments($("#sale-payments"));
    const due = typeof lines === "string" ? null : lines.products_cents + lines.cards_cents;
    const paid = payments.every((p) => p.amount != null) ? payments.reduce((n, p) => n + p.amount, 0) : null;
    return { lines, payments, due, paid };
  }
  function renderSaleTotals() {
    const t = saleTotals();
    const rows = [["Total due" + plusTax(), t.due == null ? "?" : Spa.money(t.due), "sum"], ["Paid", t.paid == null ? "?" : Spa.money(t.paid)]];
    if (t.due != null && t.paid != null && t.paid !== t.due) rows.push(t.paid < t.due ? ["Still to pay", Spa.money(t.due - t.paid)] : ["Change (cash)", Spa.money(t.paid - t.due)]);
    fill($("#sale-totals"), rows.map(([k, v, cls]) => h("tr", { class: cls || "" }, h("td", { text: k }), h("td", { class: "num", text: v }))));
  }
  function resetSale() {
    fill($("#sale-lines"));
    fill($("#sale-payments"), payRowEl("cash", "", onSale));
    renderSaleTotals();
  }
  $("#sale-add-item").addEventListener("click", () => { $("#sale-lines").append(itemRowEl(onSale)); onSale(); });
  $("#sale-add-card").addEventListener("click", () => { $("#sale-lines").append(cardRowEl(onSale)); onSale(); });
  $("#sale-add-pay").addEventListener("click", () => {
    const t = saleTotals();
    const rest = t.due != null && t.paid != null ? Math.max(0, t.due - t.paid) : 0;
    $("#sale-payments").append(payRowEl("card", rest ? Spa.amount(rest) : "", onSale));
    onSale();
  });
  Spa.bind($("#sale-pay"), "sale.checkout", () => {
    const t = saleTotals();
    if (typeof t.lines === "string") return t.lines;
    if (!t.lines.items.length && !t.lines.giftcards.length) return "Add a product or a gift card.";
    const given = t.payments.filter((p) => p.text || p.method === "giftcard");
    if (given.some((p) => p.amount == null)) return "Every payment needs an amount (e.g. 40.00).";
    const args = { request_id: sale.request_id, items: t.lines.items, giftcards: t.lines.giftcards, payments: given.map(paymentArg) };
    return ["sale.checkout", args, (err) => {
      // As on a visit's checkout: a lost answer keeps its id for the retry.
      if (err.code !== "timeout" && err.code !== "offline") sale.request_id = Spa.randomId();
    }];
  }, (data) => {
    sale = { request_id: Spa.randomId() };
    const r = data.receipt || {};
    const codes = (data.giftcards || []).map((c) => c.code).filter(Boolean);
    const line = (k, c, cls) => h("tr", { class: cls || "" }, h("td", { text: k }), h("td", { class: "num", text: Spa.money(c) }));
    const box = $("#sale-receipt");
    box.hidden = false;
    fill(box, h("div", { class: "receipt", id: "sale-receipt-body" },
      h("h3", { text: "Paid · receipt " + (r.number || "") }),
      soldLines(r, codes),
      h("table", { class: "totals" },
        line("Total", r.total_cents, "sum"),
        (r.taxes || []).map((x) => line("of which tax " + x.rate, x.tax_cents)),
        (r.payments || []).map((p) => line("Paid " + Spa.words(p.method === "giftcard" ? "gift card" : p.method) + (p.reference ? " (" + p.reference + ")" : ""), p.amount_cents)),
        (r.giftcards_used || []).map((g) => line("Gift card …" + (g.hint || ""), g.amount_cents)),
        r.change_cents ? line("Change", r.change_cents) : null),
      data.retried ? h("p", { class: "muted small", text: "This sale was already recorded: this is its receipt, charged once." }) : null,
      h("div", { class: "row" }, h("button", { type: "button", text: "Print receipt", onclick: () => print(r.id) }))));
    resetSale();
  }, "Paid");

  Spa.bind($("#gc-check"), "giftcard.balance", () => {
    const code = $("#gc-code").value.trim();
    return code ? ["giftcard.balance", { code }] : "Type the card's code.";
  }, (data) => {
    const g = data.giftcard || {};
    const el = $("#gc-balance");
    el.hidden = false;
    el.textContent = "Balance " + Spa.money(data.balance_cents) + " (card …" + (g.hint || "") + ", issued for " + Spa.money(g.issued_cents) + ")";
  });
  $("#gc-code").addEventListener("input", () => ($("#gc-balance").hidden = true));

  /** New stock and prices in the open lines' product lists (the choice is kept). */
  function refreshProductChoices() {
    for (const sel of document.querySelectorAll("select.ip")) {
      const row = sel.closest(".pay-row");
      const fresh = itemRowEl(() => {}).querySelector(".ip");
      const was = sel.value;
      fill(sel, Array.from(fresh.options));
      if (Array.from(sel.options).some((o) => o.value === was)) sel.value = was;
      row.dispatchEvent(new Event("input"));
    }
  }

  Spa.Counter = {
    payRowEl, readPayments, paymentArg, itemRowEl, cardRowEl, readLines, plusTax, soldLines,
    refresh: refreshProductChoices,
    init: (printReceipt) => {
      print = printReceipt;
      resetSale();
    },
    onProducts: (list) => {
      products.clear();
      list.forEach((p) => products.set(p.id, p));
    },
    onProduct: (p) => {
      products.set(p.id, p);
      refreshProductChoices();
    },
  };
})();
