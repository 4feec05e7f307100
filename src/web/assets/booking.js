// The customer's own booking: when, what, with whom, and a way to cancel
// it until the spa's cut-off. Once checked in, it leads to the live ticket
// (the same link). The hub sends this page nothing about anyone else.
(function () {
  "use strict";
  const { h, $, fill } = Spa;
  const token = decodeURIComponent(location.pathname.replace(/^\/b\//, "").split("/")[0] || "");
  let booking = null;

  const STATE = {
    booked: "You are booked",
    checked_in: "You are checked in",
    cancelled: "This booking was cancelled",
    no_show: "We missed you",
  };

  function fact(label, value, id) {
    return h("div", { class: "fact", id: id || null }, h("div", { class: "label", text: label }), h("div", { class: "v", text: value }));
  }

  function render() {
    if (!booking) return;
    $("#number").textContent = booking.number;
    $("#hello").textContent = booking.customer_name ? "Hello, " + booking.customer_name : "";
    $("#state").textContent = STATE[booking.state] || Spa.words(booking.state);
    document.title = booking.number + " · " + (STATE[booking.state] || "Your booking");
    const services = (booking.services || []).map((s) => s.name).join(", ");
    fill($("#facts"),
      fact("When", booking.date + " " + booking.time, "when"),
      fact("What", services || "–"),
      booking.therapist ? fact("With", booking.therapist) : null,
      booking.room ? fact("Room", booking.room) : null);
    const actions = $("#actions");
    fill(actions);
    $("#detail").textContent = "";
    if (booking.state === "booked") {
      const btn = h("button", { type: "button", class: "danger", id: "cancel", text: "Cancel my booking" });
      fill(actions, btn);
      Spa.bind(btn, "cancel", () => (confirm("Cancel " + booking.number + " on " + booking.date + " at " + booking.time + "?") ? ["booking.cancel", { booking_id: booking.id }] : null), null, "Cancelled.");
      $("#detail").textContent = "Please arrive a few minutes early. To change the time, call the spa.";
    } else if (booking.state === "checked_in") {
      fill(actions, h("a", { href: "/t/" + encodeURIComponent(token), class: "button", id: "to-ticket", text: "Follow your turn" }));
    }
  }

  if (!token) {
    Spa.setStatus("refused", "This link has no booking in it.");
    return;
  }
  Spa.connect(token, {
    onRefused: (msg) => {
      if (msg === "unauthorized") {
        $("#number").textContent = "—";
        $("#state").textContent = "This booking link is no longer valid";
        $("#detail").textContent = "The booking is over, or the link is incomplete. Please call the spa.";
        fill($("#facts"));
        fill($("#actions"));
      }
    },
    onSnapshot: (snap) => {
      booking = snap.booking || null;
      render();
    },
    on: {
      "booking.updated": (p) => {
        booking = p.booking;
        render();
      },
    },
  });
})();
