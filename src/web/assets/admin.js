// The admin page: rooms (light channels, status), a live view of the room
// lights and the health figures from /healthz, services and products (tax
// rates, stock), staff and PINs, monitor pairing (link + QR) and revocation.
(function () {
  "use strict";
  const { h, $, fill } = Spa;

  const rooms = new Map();
  const services = new Map();
  const products = new Map();
  const staff = new Map();
  const devices = new Map();
  let conn = null;

  const byName = (a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }) || a.id - b.id;
  const int = (text, label, min, max) => {
    const t = String(text).trim();
    if (!/^\d+$/.test(t)) return label + ": enter a whole number.";
    const n = parseInt(t, 10);
    if (n < min || n > max) return label + ": between " + min + " and " + max + ".";
    return n;
  };

  // ---- rooms -----------------------------------------------------------------------------------
  Spa.bind($("#rm-add"), "room.create", () => {
    const name = $("#rm-name").value.trim();
    if (!name) return "Give the room a name.";
    const args = { name, capacity: Number($("#rm-cap").value) };
    const ch = $("#rm-ch").value.trim();
    if (ch) {
      const n = int(ch, "Light channel", 0, 65535);
      if (typeof n === "string") return n;
      args.light_channel = n;
    }
    return ["room.create", args];
  }, () => {
    $("#rm-name").value = "";
    $("#rm-ch").value = "";
  }, "Added");

  function roomDialog(r) {
    Spa.dialog({
      title: "Edit " + r.name,
      key: "room-edit-" + r.id,
      fields: [
        { name: "name", label: "Name", value: r.name },
        { name: "capacity", label: "Capacity", type: "select", value: r.capacity, options: [[1, "1"], [2, "2"]] },
        { name: "light_channel", label: "Light channel (empty: none)", value: r.light_channel == null ? "" : r.light_channel },
      ],
      submit: "Save",
      run: (f) => {
        const args = { room_id: r.id };
        if (f.name.trim() !== r.name) args.name = f.name.trim();
        if (Number(f.capacity) !== r.capacity) args.capacity = Number(f.capacity);
        const ch = f.light_channel.trim();
        if (ch === "") {
          if (r.light_channel != null) args.light_channel = null;
        } else {
          const n = int(ch, "Light channel", 0, 65535);
          if (typeof n === "string") return n;
          if (n !== r.light_channel) args.light_channel = n;
        }
        return ["room.update", args];
      },
    });
  }
  function statusDialog(r) {
    Spa.dialog({
      title: r.name + ": status",
      key: "room-status-" + r.id,
      fields: [
        { name: "status", label: "Status", type: "select", value: r.status === "out_of_service" ? "out_of_service" : "available", options: [["available", "Available"], ["cleaning", "Cleaning"], ["out_of_service", "Out of service"]] },
        { name: "reason", label: "Reason (out of service)", value: r.reason || "" },
      ],
      submit: "Set status",
      run: (f) => {
        const args = { room_id: r.id, status: f.status };
        if (f.status === "out_of_service") {
          if (!f.reason.trim()) return "Out of service needs a reason.";
          args.reason = f.reason.trim();
        }
        return ["room.set_status", args];
      },
    });
  }
  function removeDialog(what, key, command) {
    Spa.dialog({ title: "Remove " + what + "?", text: "This cannot be undone.", key, submit: "Remove", danger: true, run: () => command });
  }
  function renderRooms() {
    const list = Array.from(rooms.values()).sort(byName);
    fill($("#rooms"), list.length ? list.map((r) => {
      const look = Spa.roomLook(r);
      return h("tr", { dataset: { room: String(r.id) } },
        h("td", {}, h("b", { text: r.name }), h("div", { class: "muted small", text: "capacity " + r.capacity })),
        h("td", {}, h("span", { class: "pill " + (look === "available" ? "available" : look === "cleaning" || look === "held" ? "break" : look === "out_of_service" ? "off" : "in_session"), text: Spa.ROOM_STATUS[look] || look }), r.reason ? h("div", { class: "muted small", text: r.reason }) : null),
        h("td", { class: "num", text: r.light_channel == null ? "–" : String(r.light_channel) }),
        h("td", { class: "actions" },
          h("button", { type: "button", class: "small", text: "Edit", onclick: () => roomDialog(r) }),
          h("button", { type: "button", class: "small", text: "Status", onclick: () => statusDialog(r) }),
          h("button", { type: "button", class: "small danger", text: "Remove", onclick: () => removeDialog(r.name, "room-remove-" + r.id, ["room.remove", { room_id: r.id }]) })));
    }) : h("tr", {}, h("td", { colspan: 4, class: "empty", text: "No rooms yet." })));
  }

  // ---- lights and health (from /healthz, every 2 s) ---------------------------------------------
  async function poll() {
    let body = null;
    let status = 0;
    try {
      const res = await fetch("/healthz", { cache: "no-store" });
      status = res.status;
      body = await res.json();
    } catch (e) {
      body = null;
    }
    if (!body) {
      $("#health-at").textContent = "the hub does not answer";
      return;
    }
    $("#health-at").textContent = (status === 200 ? "ok" : "HTTP " + status) + " · " + new Date().toLocaleTimeString();
    const lights = body.lights || { channels: [] };
    $("#lights-backend").textContent = "backend: " + (lights.backend || "?");
    const channels = lights.channels || [];
    fill($("#lights"), channels.length ? channels.map((c) => {
      const names = Array.from(rooms.values()).filter((r) => r.light_channel === c.channel).map((r) => r.name).join(", ");
      return h("div", { class: "light", dataset: { channel: String(c.channel) } },
        h("div", { class: "lamps" },
          h("span", { class: "lamp red" + (c.red ? " on" : ""), title: "red" }),
          h("span", { class: "lamp amber" + (c.amber ? " on" : ""), title: "amber" }),
          h("span", { class: "lamp green" + (c.green ? " on" : ""), title: "green" })),
        h("div", {},
          h("div", { class: "ln", text: "Channel " + c.channel + (names ? " · " + names : "") }),
          h("div", { class: "ls", text: (c.status ? Spa.words(c.status) : "no room") + (c.blinking ? " · blinking" : "") + (c.fault ? " · fault: " + c.fault : "") })));
    }) : h("p", { class: "empty", text: lights.backend === "off" ? "Lights are off (SPA_LIGHTS=off)." : "No light channels are wired (SPA_LIGHT_CHANNELS)." }));
    // The light-channel field says what it takes, wired or not.
    const wired = channels.map((c) => c.channel);
    $("#rm-ch-hint").textContent = wired.length
      ? "Light channel: one of the wired channels (" + wired.join(", ") + "), or empty for a room without a light."
      : "Light channel: no channels are wired yet, so leave it empty. To drive room lights, add a line like SPA_LIGHT_CHANNELS=1=17,27,22 2=5,6,13 (channel=red,amber,green BCM pins) to /etc/spa-hub/spa-hub.env, restart the hub, then give each room its channel.";
    // The clock: synchronised or not (the office pages offer to set it).
    const clock = body.clock;
    if (clock) {
      $("#clock-source").textContent = clock.synchronized ? "synchronised (" + clock.source + ")" : "not synchronised";
      const diff = Math.round((clock.now_ms - Date.now()) / 60000);
      $("#clock-text").textContent = "Hub time " + new Date(clock.now_ms).toLocaleString() +
        (Math.abs(diff) >= 2 ? " (" + Math.abs(diff) + " min " + (diff < 0 ? "behind" : "ahead of") + " this device)" : " (matches this device)") +
        (clock.synchronized ? "." : ". No internet time yet" + (clock.held_at_last_event ? "; held at the newest event so times never go back" : "") +
          (clock.set_offset_ms ? "; set by an admin (dropped once the hub synchronises)" : "") + ".");
    }
    const c = body.connections || {};
    const byRole = c.by_role || {};
    const up = body.uptime_s || 0;
    const fig = (k, v) => h("div", { class: "figure" }, h("div", { class: "v", text: String(v) }), h("div", { class: "k", text: k }));
    fill($("#health"),
      fig("version", body.version || "?"),
      fig("storage", body.storage || "?"),
      fig("uptime", Math.floor(up / 3600) + " h " + Math.floor((up % 3600) / 60) + " min"),
      fig("connections", (c.total == null ? "?" : c.total) + " / " + (c.budget == null ? "?" : c.budget)),
      Object.entries(byRole).map(([k, v]) => fig(k === "pending" ? "not signed in yet" : k + " connections", v)),
      fig("last event seq", body.seq == null ? "?" : body.seq));
  }

  // ---- services --------------------------------------------------------------------------------
  Spa.bind($("#sv-add"), "service.create", () => {
    const name = $("#sv-name").value.trim();
    if (!name) return "Give the service a name.";
    const dur = int($("#sv-dur").value, "Minutes", 1, 1440);
    if (typeof dur === "string") return dur;
    const clean = int($("#sv-clean").value || "0", "Cleanup", 0, 1440);
    if (typeof clean === "string") return clean;
    const price = Spa.parseMoney($("#sv-price").value);
    if (price == null) return "Price: enter an amount (e.g. 80.00).";
    const rate = taxRate($("#sv-tax").value);
    if (typeof rate === "string") return rate;
    const args = { name, duration_min: dur, cleanup_min: clean, price_cents: price, tax_rate_bp: rate };
    const skill = $("#sv-skill").value.trim();
    if (skill) args.skill = skill;
    return ["service.create", args];
  }, () => {
    $("#sv-name").value = "";
    $("#sv-price").value = "";
    $("#sv-skill").value = "";
  }, "Added");

  function serviceDialog(s) {
    Spa.dialog({
      title: "Edit " + s.name,
      key: "service-edit-" + s.id,
      fields: [
        { name: "name", label: "Name", value: s.name },
        { name: "duration_min", label: "Minutes", value: s.duration_min },
        { name: "cleanup_min", label: "Cleanup minutes", value: s.cleanup_min },
        { name: "price", label: "Price", type: "money", value: Spa.amount(s.price_cents) },
        { name: "skill", label: "Skill (empty: none)", value: s.skill || "" },
        { name: "turn_weight", label: "Turn weight", value: s.turn_weight },
        { name: "tax", label: "Tax rate %", value: percent(s.tax_rate_bp) },
      ],
      submit: "Save",
      run: (f) => {
        const dur = int(f.duration_min, "Minutes", 1, 1440);
        if (typeof dur === "string") return dur;
        const clean = int(f.cleanup_min, "Cleanup", 0, 1440);
        if (typeof clean === "string") return clean;
        const price = Spa.parseMoney(f.price);
        if (price == null) return "Price: enter an amount (e.g. 80.00).";
        const weight = Number(String(f.turn_weight).replace(",", "."));
        if (!isFinite(weight)) return "Turn weight: a number such as 1 or 1.5.";
        const rate = taxRate(f.tax);
        if (typeof rate === "string") return rate;
        return ["service.update", { service_id: s.id, name: f.name.trim(), duration_min: dur, cleanup_min: clean, price_cents: price, skill: f.skill.trim() || null, turn_weight: weight, tax_rate_bp: rate }];
      },
    });
  }
  function renderServices() {
    const list = Array.from(services.values()).filter((s) => s.active !== false).sort(byName);
    fill($("#services"), list.length ? list.map((s) => h("tr", {},
      h("td", {}, h("b", { text: s.name }), s.turn_weight !== 1 ? h("div", { class: "muted small", text: "turn weight " + s.turn_weight }) : null),
      h("td", { class: "num", text: String(s.duration_min) }),
      h("td", { class: "num", text: String(s.cleanup_min) }),
      h("td", { class: "num", text: Spa.money(s.price_cents) }),
      h("td", { class: "num", text: percent(s.tax_rate_bp) + " %" }),
      h("td", { text: s.skill || "–" }),
      h("td", { class: "actions" },
        h("button", { type: "button", class: "small", text: "Edit", onclick: () => serviceDialog(s) }),
        h("button", { type: "button", class: "small danger", text: "Remove", onclick: () => removeDialog(s.name, "service-remove-" + s.id, ["service.remove", { service_id: s.id }]) }))))
      : h("tr", {}, h("td", { colspan: 7, class: "empty", text: "No services yet." })));
  }

  // ---- tax rates and products (#17) -------------------------------------------------------------
  /** "7.25" (or "7,25 %") → 725 basis points; the hub checks the range and says so. */
  function taxRate(text) {
    const t = String(text == null ? "" : text).trim().replace(/\s*%$/, "").replace(",", ".") || "0";
    if (!/^-?\d+(\.\d{1,2})?$/.test(t)) return "Tax rate: a percentage such as 7.25 or 19.";
    return Math.round(Number(t) * 100);
  }
  const percent = (bp) => String((bp || 0) / 100);
  function productArgs(f) {
    const price = Spa.parseMoney(f.price);
    if (price == null) return "Price: enter an amount (e.g. 24.00).";
    const rate = taxRate(f.tax);
    if (typeof rate === "string") return rate;
    return { name: f.name.trim(), sku: f.sku.trim(), price_cents: price, tax_rate_bp: rate };
  }
  Spa.bind($("#pr-add"), "product.create", () => {
    const args = productArgs({ name: $("#pr-name").value, sku: $("#pr-sku").value, price: $("#pr-price").value, tax: $("#pr-tax").value });
    if (typeof args === "string") return args;
    const stock = Number($("#pr-stock").value.trim() || "0");
    if (!Number.isInteger(stock)) return "Stock: a whole number such as 12.";
    args.stock = stock;
    return ["product.create", args];
  }, () => {
    for (const id of ["#pr-name", "#pr-sku", "#pr-price"]) $(id).value = "";
    $("#pr-stock").value = "0";
  }, "Added");
  function productDialog(p) {
    Spa.dialog({
      title: "Edit " + p.name,
      key: "product-edit-" + p.id,
      fields: [
        { name: "name", label: "Name", value: p.name },
        { name: "sku", label: "SKU", value: p.sku },
        { name: "price", label: "Price", type: "money", value: Spa.amount(p.price_cents) },
        { name: "tax", label: "Tax rate %", value: percent(p.tax_rate_bp) },
        { name: "active", label: "On sale", type: "checkbox", value: p.active !== false },
      ],
      submit: "Save",
      run: (f) => {
        const args = productArgs(f);
        if (typeof args === "string") return args;
        return ["product.update", Object.assign(args, { product_id: p.id, active: !!f.active })];
      },
    });
  }
  function stockDialog(p) {
    Spa.dialog({
      title: "Stock of " + p.name + " (" + p.stock + " now)",
      key: "product-stock-" + p.id,
      fields: [
        { name: "delta", label: "Change (+12 delivered, −1 broken)", value: "" },
        { name: "reason", label: "Reason" },
      ],
      submit: "Adjust stock",
      run: (f) => {
        const delta = Number(String(f.delta).trim().replace("−", "-"));
        if (!String(f.delta).trim() || !Number.isInteger(delta)) return "Change: a whole number such as 12 or -1.";
        return ["product.stock", { product_id: p.id, delta, reason: f.reason.trim() }];
      },
    });
  }
  function renderProducts() {
    const list = Array.from(products.values()).sort(byName);
    fill($("#products"), list.length ? list.map((p) => h("tr", { dataset: { product: String(p.id) } },
      h("td", {}, h("b", { text: p.name }), p.active === false ? h("div", { class: "muted small", text: "not on sale" }) : null),
      h("td", { text: p.sku }),
      h("td", { class: "num", text: Spa.money(p.price_cents) }),
      h("td", { class: "num", text: percent(p.tax_rate_bp) + " %" }),
      h("td", { class: "num stock", text: String(p.stock) }),
      h("td", { class: "actions" },
        h("button", { type: "button", class: "small", text: "Edit", onclick: () => productDialog(p) }),
        h("button", { type: "button", class: "small", text: "Stock", onclick: () => stockDialog(p) }))))
      : h("tr", {}, h("td", { colspan: 6, class: "empty", text: "No products yet." })));
  }

  // ---- staff -----------------------------------------------------------------------------------
  const skillsOf = (text) => String(text || "").split(",").map((s) => s.trim()).filter(Boolean);
  Spa.bind($("#st-add"), "staff.create", () => {
    const name = $("#st-name").value.trim();
    if (!name) return "Give the name the person signs in with.";
    const pin = $("#st-pin").value.trim();
    if (!/^\d{4,12}$/.test(pin)) return "The PIN is 4 to 12 digits.";
    return ["staff.create", { name, role: $("#st-role").value, pin, skills: skillsOf($("#st-skills").value) }];
  }, () => {
    $("#st-name").value = "";
    $("#st-pin").value = "";
    $("#st-skills").value = "";
  }, "Added");

  function staffDialog(s) {
    Spa.dialog({
      title: "Edit " + s.name,
      text: "Changing the PIN or the role signs the person out everywhere.",
      key: "staff-edit-" + s.id,
      fields: [
        { name: "name", label: "Name", value: s.name },
        { name: "role", label: "Role", type: "select", value: s.role, options: [["therapist", "therapist"], ["cashier", "cashier"], ["admin", "admin"]] },
        { name: "pin", label: "New PIN (empty: keep)", type: "password" },
        { name: "skills", label: "Skills (comma separated)", value: (s.skills || []).join(", ") },
      ],
      submit: "Save",
      run: (f) => {
        const args = { staff_id: s.id };
        if (f.name.trim() !== s.name) args.name = f.name.trim();
        if (f.role !== s.role) args.role = f.role;
        if (f.pin.trim()) {
          if (!/^\d{4,12}$/.test(f.pin.trim())) return "The PIN is 4 to 12 digits.";
          args.pin = f.pin.trim();
        }
        const skills = skillsOf(f.skills);
        if (skills.join(",") !== (s.skills || []).join(",")) args.skills = skills;
        return ["staff.update", args];
      },
    });
  }
  function renderStaff() {
    const list = Array.from(staff.values()).sort((a, b) => (a.active === b.active ? 0 : a.active ? -1 : 1) || byName(a, b));
    fill($("#staff"), list.length ? list.map((s) => h("tr", { class: s.active ? "" : "muted" },
      h("td", {}, h("b", { text: s.name })),
      h("td", { text: s.role }),
      h("td", { class: "small", text: (s.skills || []).join(", ") || "–" }),
      h("td", {}, s.active ? (s.role === "therapist" ? h("span", { class: "pill " + s.status, text: Spa.words(s.status) }) : h("span", { class: "pill available", text: "active" })) : h("span", { class: "pill off", text: "deactivated" })),
      h("td", { class: "actions" }, s.active ? [
        h("button", { type: "button", class: "small", text: "Edit", onclick: () => staffDialog(s) }),
        h("button", { type: "button", class: "small danger", text: "Deactivate", onclick: () => Spa.dialog({ title: "Deactivate " + s.name + "?", text: "They can no longer sign in; their sessions end now.", key: "staff-deact-" + s.id, submit: "Deactivate", danger: true, run: () => ["staff.deactivate", { staff_id: s.id }] }) }),
      ] : null)))
      : h("tr", {}, h("td", { colspan: 5, class: "empty", text: "No staff yet." })));
  }

  // ---- monitors --------------------------------------------------------------------------------
  Spa.bind($("#dv-pair"), "device.pair", () => {
    const name = $("#dv-name").value.trim();
    if (!name) return "Name the monitor (e.g. Lobby TV).";
    return ["device.pair", { role: "monitor", name }];
  }, (data) => {
    $("#dv-name").value = "";
    const url = Spa.base + "/monitor#token=" + encodeURIComponent(data.token);
    const box = $("#pair-result");
    box.hidden = false;
    fill(box, h("div", { class: "linkbox" },
      window.SpaQr(url, 170),
      h("div", { class: "stack" },
        h("b", { text: (data.device && data.device.name ? data.device.name : "Monitor") + " is paired" }),
        h("a", { href: url, id: "pair-link", target: "_blank", rel: "noopener noreferrer" }, h("code", { text: url })),
        h("p", { class: "muted small", text: "Open this link on the monitor (or scan the code). It is shown only now; pair again if it is lost, and revoke the old one." }))));
  });
  function renderDevices() {
    const list = Array.from(devices.values()).sort((a, b) => (a.revoked === b.revoked ? 0 : a.revoked ? 1 : -1) || byName(a, b));
    fill($("#devices"), list.length ? list.map((d) => h("tr", { class: d.revoked ? "muted" : "" },
      h("td", {}, h("b", { text: d.name })),
      h("td", { class: "small", text: d.paired_at ? new Date(d.paired_at).toLocaleString() : "–" }),
      h("td", {}, h("span", { class: "pill " + (d.revoked ? "off" : "available"), text: d.revoked ? "revoked" : "paired" })),
      h("td", { class: "actions" }, d.revoked ? null : h("button", { type: "button", class: "small danger", text: "Revoke", onclick: () => Spa.dialog({ title: "Revoke " + d.name + "?", text: "The monitor disconnects now and can no longer sign in.", key: "device-revoke-" + d.id, submit: "Revoke", danger: true, run: () => ["device.revoke", { device_id: d.id }] }) }))))
      : h("tr", {}, h("td", { colspan: 4, class: "empty", text: "No monitors paired." })));
  }

  // ---- the hub -----------------------------------------------------------------------------------
  Spa.Customers.admin = true;
  Spa.Customers.mount();

  conn = Spa.staffPage(["admin"], {
    onSnapshot: (snap) => {
      rooms.clear();
      (snap.rooms || []).forEach((r) => rooms.set(r.id, r));
      services.clear();
      (snap.services || []).forEach((s) => services.set(s.id, s));
      products.clear();
      (snap.products || []).forEach((p) => products.set(p.id, p));
      staff.clear();
      (snap.staff || snap.therapists || []).forEach((s) => staff.set(s.id, s));
      devices.clear();
      (snap.devices || []).forEach((d) => devices.set(d.id, d));
      renderRooms();
      renderServices();
      renderProducts();
      renderStaff();
      renderDevices();
      Spa.Shifts.onStaff(Array.from(staff.values()));
    },
    on: {
      "customer.updated": (p) => Spa.Customers.updated(p.customer),
      "room.updated": (p) => {
        if (p.room.removed) rooms.delete(p.room.id);
        else rooms.set(p.room.id, p.room);
        renderRooms();
      },
      "service.updated": (p) => {
        services.set(p.service.id, p.service);
        renderServices();
      },
      "product.updated": (p) => {
        products.set(p.product.id, p.product);
        renderProducts();
      },
      "staff.updated": (p) => {
        staff.set(p.staff.id, p.staff);
        renderStaff();
      },
      "therapist.updated": (p) => {
        if (p.therapist) staff.set(p.therapist.id, p.therapist);
        renderStaff();
      },
      "device.updated": (p) => {
        devices.set(p.device.id, p.device);
        renderDevices();
      },
    },
  });
  Spa.Shifts.init();
  poll();
  setInterval(poll, 2000);
})();
