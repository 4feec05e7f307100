// The customer's own ticket: number, place in line, estimated wait, and
// "go to Room N" when called. The hub sends this page nothing about anyone else.
(function () {
  "use strict";
  const { h, $, fill } = Spa;
  const token = decodeURIComponent(location.pathname.replace(/^\/t\//, "").split("/")[0] || "");

  let visit = null;
  let room = null; // {id, name}
  let line = null; // {position, eta_min}
  let lineAt = Date.now();
  let conn = null;

  const STATE = {
    waiting: "You are in the queue",
    called: "It's your turn!",
    in_service: "Enjoy your treatment",
    awaiting_payment: "Please come to the front desk",
    closed: "Thank you for your visit",
    left: "This ticket was closed",
    voided: "This ticket was cancelled",
  };

  function render() {
    if (!visit) return;
    $("#number").textContent = visit.number;
    $("#hello").textContent = visit.customer_name ? "Hello, " + visit.customer_name : "";
    $("#state").textContent = STATE[visit.state] || Spa.words(visit.state);
    document.title = visit.number + " · " + (STATE[visit.state] || "Your ticket");
    const facts = $("#facts");
    const go = $("#go");
    fill(facts);
    fill(go);
    $("#detail").textContent = "";
    if (visit.state === "waiting") {
      const pos = line ? line.position : null;
      let eta = "–";
      if (line && typeof line.eta_min === "number") {
        const m = Math.max(0, line.eta_min - Math.floor((Date.now() - lineAt) / 60000));
        eta = m === 0 ? "soon" : "~" + m + " min";
      }
      fill(facts,
        h("div", { class: "fact", id: "position" }, h("div", { class: "label", text: "Place in line" }), h("div", { class: "v", text: pos == null ? "–" : String(pos) })),
        h("div", { class: "fact", id: "eta" }, h("div", { class: "label", text: "Estimated wait" }), h("div", { class: "v", text: eta })));
      $("#detail").textContent = pos === 1 ? "You are next." : "We will call your number on the screens and here.";
    } else if (visit.state === "called") {
      const name = room && room.id === visit.room_id ? room.name : "your room";
      fill(go, h("div", { class: "go", id: "go-room" }, "Please go to", h("span", { class: "room-name", text: name })));
    } else if (visit.state === "in_service" && room && room.id === visit.room_id) {
      $("#detail").textContent = room.name;
    } else if (visit.state === "awaiting_payment" && typeof visit.services_cents === "number") {
      fill(facts, h("div", { class: "fact" }, h("div", { class: "label", text: "Services" }), h("div", { class: "v", text: Spa.money(visit.services_cents) })));
    }
  }

  if (!token) {
    Spa.setStatus("refused", "This link has no ticket in it.");
    return;
  }
  conn = Spa.connect(token, {
    onRefused: (msg) => {
      if (msg === "unauthorized") {
        $("#number").textContent = "—";
        $("#state").textContent = "This ticket link is no longer valid";
        $("#detail").textContent = "The visit has ended, or the link is incomplete. Please ask at the front desk.";
        fill($("#facts"));
        fill($("#go"));
      }
    },
    onSnapshot: (snap) => {
      visit = snap.visit;
      room = snap.room || null;
      const mine = (snap.queue || []).find((q) => visit && q.visit_id === visit.id);
      line = mine || null;
      lineAt = Date.now();
      render();
    },
    on: {
      "visit.updated": (p, c) => {
        visit = p.visit;
        // The room's name comes with a snapshot: ask for one when it changes.
        if (visit.room_id != null && !(room && room.id === visit.room_id)) c.sync();
        render();
      },
      "queue.updated": (p) => {
        const mine = (p.queue || []).find((q) => visit && q.visit_id === visit.id);
        line = mine || null;
        lineAt = Date.now();
        render();
      },
    },
  });
  setInterval(render, 30000);
})();
