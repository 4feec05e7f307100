// Shared by every page: DOM helpers, tokens, the connection to the hub
// (snapshot, seq tracking, resync on a gap, the "reconnecting" state), and
// command buttons that stay disabled until their ack arrives and show the
// ack's error message next to them.
(function () {
  "use strict";
  const Spa = (window.Spa = {});

  // ---- DOM ------------------------------------------------------------------
  /** h("button", {class: "x", onclick: f, text: "Go"}, ...children) */
  Spa.h = function h(tag, attrs) {
    const el = document.createElement(tag);
    let value;
    if (attrs) {
      for (const k of Object.keys(attrs)) {
        const v = attrs[k];
        if (v == null || v === false) continue;
        if (k === "class") el.className = v;
        else if (k === "text") el.textContent = v;
        else if (k === "value") value = v;
        else if (k === "dataset") Object.assign(el.dataset, v);
        else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
        else if (typeof v === "boolean" || typeof v === "number" && k in el) el[k] = v;
        else el.setAttribute(k, v === true ? "" : String(v));
      }
    }
    for (let i = 2; i < arguments.length; i++) append(el, arguments[i]);
    if (value !== undefined) el.value = value;
    return el;
  };
  function append(el, kid) {
    if (kid == null || kid === false) return;
    if (Array.isArray(kid)) kid.forEach((k) => append(el, k));
    else el.append(kid instanceof Node ? kid : String(kid));
  }
  Spa.$ = (sel, root) => (root || document).querySelector(sel);
  Spa.$$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
  /** Replaces an element's children. */
  Spa.fill = function (el) {
    el.replaceChildren();
    for (let i = 1; i < arguments.length; i++) append(el, arguments[i]);
    return el;
  };

  // ---- formatting -------------------------------------------------------------
  // The spa's currency (SPA_CURRENCY; the snapshot says which): amounts
  // are integer minor units, shown with the code ("12.50 USD", "1250 JPY").
  Spa.currency = { code: "", minor_units: 2 };
  /** An amount without the code, for input fields ("12.50"). */
  Spa.amount = function (cents) {
    if (cents == null || isNaN(cents)) return "–";
    const digits = Spa.currency.minor_units;
    const scale = Math.pow(10, digits);
    const neg = cents < 0;
    const abs = Math.abs(Math.trunc(cents));
    const s = digits ? Math.floor(abs / scale) + "." + String(abs % scale).padStart(digits, "0") : String(abs);
    return (neg ? "−" : "") + s;
  };
  /** An amount as people read it: "12.50 USD". */
  Spa.money = function (cents) {
    const s = Spa.amount(cents);
    return s === "–" || !Spa.currency.code ? s : s + " " + Spa.currency.code;
  };
  /** "12", "12.5", "12.50", "12,50" (and "12.50 USD") → minor units (integer); null when not a sum. */
  Spa.parseMoney = function (text) {
    const digits = Spa.currency.minor_units;
    const t = String(text == null ? "" : text).trim().replace(/\s*[A-Za-z]{3}$/, "").replace(",", ".");
    const m = new RegExp("^(\\d{1,9})(?:\\.(\\d{0," + digits + "}))?$").exec(t);
    if (!m) return null;
    return parseInt(m[1], 10) * Math.pow(10, digits) + parseInt((m[2] || "").padEnd(digits, "0") || "0", 10);
  };
  Spa.clock = function (ms) {
    if (ms == null) return "–";
    const d = new Date(ms);
    return String(d.getHours()).padStart(2, "0") + ":" + String(d.getMinutes()).padStart(2, "0");
  };
  /** 754000 → "12:34"; negative → "+12:34" (over). */
  Spa.mmss = function (ms) {
    const over = ms < 0;
    const s = Math.floor(Math.abs(ms) / 1000);
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const sec = s % 60;
    const body = (h ? h + ":" + String(m).padStart(2, "0") : String(m)) + ":" + String(sec).padStart(2, "0");
    return (over ? "+" : "") + body;
  };
  Spa.today = function () {
    const d = new Date();
    return d.getFullYear() + "-" + String(d.getMonth() + 1).padStart(2, "0") + "-" + String(d.getDate()).padStart(2, "0");
  };
  Spa.words = (s) => String(s == null ? "" : s).replace(/_/g, " ");
  Spa.ROOM_STATUS = {
    available: "Available",
    held: "Reserved",
    occupied: "In session",
    overtime: "Overtime",
    cleaning: "Cleaning",
    out_of_service: "Out of service",
  };
  /** The status a room is shown in (overtime is derived from occupied). */
  Spa.roomLook = (r) => (r.status === "occupied" && r.overtime ? "overtime" : r.status);

  // ---- tokens -------------------------------------------------------------------
  function readJson(key) {
    try {
      return JSON.parse(localStorage.getItem(key) || "null");
    } catch (e) {
      return null;
    }
  }
  Spa.store = {
    staff() {
      const s = readJson("spa.staff");
      if (!s || !s.token) return null;
      if (s.expires_at && s.expires_at < Date.now()) {
        localStorage.removeItem("spa.staff");
        return null;
      }
      return s;
    },
    setStaff(s) {
      localStorage.setItem("spa.staff", JSON.stringify(s));
    },
    clearStaff() {
      localStorage.removeItem("spa.staff");
    },
    monitor() {
      return localStorage.getItem("spa.monitor") || null;
    },
    setMonitor(t) {
      localStorage.setItem("spa.monitor", t);
    },
    clearMonitor() {
      localStorage.removeItem("spa.monitor");
    },
  };
  Spa.pageFor = (role) => ({ admin: "/admin", cashier: "/cashier", therapist: "/therapist", monitor: "/monitor" })[role] || "/";

  Spa.logout = async function () {
    const s = Spa.store.staff();
    Spa.store.clearStaff();
    if (s && s.token && s.kind !== "admin-token") {
      try {
        await fetch("/api/logout", { method: "POST", headers: { Authorization: "Bearer " + s.token } });
      } catch (e) {
        /* the session expires by itself */
      }
    }
    location.href = "/";
  };

  // ---- the connection banner --------------------------------------------------------
  const STATUS_TEXT = {
    connecting: "Connecting to the hub…",
    live: "Live",
    reconnecting: "Reconnecting… the hub cannot be reached; showing the last known state.",
    refused: "Not allowed",
  };
  function banner() {
    let el = document.getElementById("conn");
    if (!el) {
      el = Spa.h("div", { id: "conn", class: "conn", role: "status", "aria-live": "polite" });
      document.body.prepend(el);
    }
    return el;
  }
  function setStatus(state, text) {
    const el = banner();
    el.dataset.state = state;
    el.textContent = text || STATUS_TEXT[state] || state;
    document.body.classList.toggle("offline", state !== "live");
    document.body.dataset.conn = state;
  }
  Spa.setStatus = setStatus;

  // ---- commands ---------------------------------------------------------------------
  const pending = new Set(); // keys of commands awaiting their ack
  const errors = new Map(); // key → last error message
  const oks = new Map(); // key → short success note
  let current = null; // the page's connection

  /** Sends a command; resolves to the ack ({ok, data} or {ok:false, error}). */
  async function send(name, args) {
    const socket = current && current.socket;
    if (!socket || !socket.connected || !current.ready) {
      return { ok: false, error: { code: "offline", message: "Not connected to the hub: wait until it reconnects, then try again." } };
    }
    try {
      const ack = await socket.timeout(15000).emitWithAck(name, args || {});
      if (ack && typeof ack === "object" && "ok" in ack) return ack;
      return { ok: false, error: { code: "internal", message: "The hub sent an unexpected answer." } };
    } catch (e) {
      const msg = socket.connected
        ? "No answer from the hub within 15 s: check whether it happened before trying again."
        : "The connection dropped before the hub answered: check whether it happened before trying again.";
      return { ok: false, error: { code: "timeout", message: msg } };
    }
  }
  Spa.send = send;

  function paint(key) {
    for (const btn of Spa.$$("button[data-cmd]")) {
      if (btn.dataset.cmd !== key) continue;
      paintOne(btn);
    }
  }
  function ackSpan(btn) {
    let span = btn.nextElementSibling;
    if (!span || !span.classList.contains("ack")) {
      span = Spa.h("span", { class: "ack", role: "status", "aria-live": "polite" });
      btn.after(span);
    }
    return span;
  }
  function paintOne(btn) {
    const key = btn.dataset.cmd;
    const busy = pending.has(key);
    btn.disabled = busy || btn.dataset.off === "1";
    btn.classList.toggle("busy", busy);
    const span = ackSpan(btn);
    const err = errors.get(key);
    const ok = oks.get(key);
    span.textContent = busy ? "…" : err || ok || "";
    span.classList.toggle("error", !busy && !!err);
    span.classList.toggle("ok", !busy && !err && !!ok);
  }

  /**
   * Makes `btn` a command button: on click `run()` returns [name, args]
   * (or a string: a message shown without sending, or null: nothing to do);
   * the button stays disabled until the ack; `done(data)` runs on ok.
   * `key` identifies the command across re-renders.
   */
  Spa.bind = function (btn, key, run, done, okNote) {
    btn.dataset.cmd = key;
    btn.classList.add("cmd");
    btn.addEventListener("click", async (ev) => {
      ev.preventDefault();
      if (pending.has(key)) return;
      let what;
      try {
        what = run();
      } catch (e) {
        what = String(e && e.message ? e.message : e);
      }
      if (what == null) return;
      if (typeof what === "string") {
        errors.set(key, what);
        oks.delete(key);
        paint(key);
        return;
      }
      pending.add(key);
      errors.delete(key);
      oks.delete(key);
      paint(key);
      const ack = await send(what[0], what[1]);
      pending.delete(key);
      if (ack.ok) {
        if (okNote) {
          oks.set(key, okNote);
          setTimeout(() => {
            if (oks.get(key) === okNote) {
              oks.delete(key);
              paint(key);
            }
          }, 2500);
        }
      } else {
        const msg = (ack.error && ack.error.message) || "Refused.";
        errors.set(key, msg);
        // A message stays long enough to be read, then goes stale.
        setTimeout(() => {
          if (errors.get(key) === msg && !pending.has(key)) {
            errors.delete(key);
            paint(key);
          }
        }, 30000);
      }
      paint(key);
      if (ack.ok && done) done(ack.data || {});
      if (!ack.ok && what[2]) what[2](ack.error || {});
    });
    paintOne(btn);
    return btn;
  };
  /** A new command button (see Spa.bind) followed by its ack span. */
  Spa.button = function (label, key, run, opts) {
    opts = opts || {};
    const btn = Spa.h("button", { type: "button", class: opts.class || "", title: opts.title });
    btn.textContent = label;
    if (opts.off) btn.dataset.off = "1";
    Spa.bind(btn, key, run, opts.done, opts.okNote);
    const wrap = Spa.h("span", { class: "cmdwrap" }, btn);
    paintOne(btn);
    return wrap;
  };
  Spa.clearError = function (key) {
    errors.delete(key);
    paint(key);
  };

  // ---- dialogs ----------------------------------------------------------------------
  /**
   * A modal form whose submit button is a command button.
   * fields: [{name, label, type: text|number|money|select|textarea|checkbox|password, value, options: [[v, label]], required, placeholder}]
   * run(values) → [name, args] | message | null; done(data) closes it.
   */
  let dialogSeq = 0;
  Spa.dialog = function (opts) {
    const id = "dlg" + ++dialogSeq;
    const inputs = {};
    const rows = (opts.fields || []).map((f) => {
      let input;
      const fid = id + "-" + f.name;
      if (f.type === "select") {
        input = Spa.h("select", { id: fid, name: f.name }, (f.options || []).map(([v, l]) => Spa.h("option", { value: String(v), text: l })));
        if (f.value != null) input.value = String(f.value);
      } else if (f.type === "textarea") {
        input = Spa.h("textarea", { id: fid, name: f.name, rows: 3, placeholder: f.placeholder || "" });
        input.value = f.value == null ? "" : f.value;
      } else if (f.type === "checkbox") {
        input = Spa.h("input", { id: fid, name: f.name, type: "checkbox" });
        input.checked = !!f.value;
      } else if (f.type === "checks") {
        // Several choices (e.g. a visit's services): the value is the list.
        const chosen = new Set((f.value || []).map(String));
        input = Spa.h("div", { id: fid, class: "svc-list" }, (f.options || []).map(([v, l]) => Spa.h("label", { class: "check" },
          Spa.h("input", { type: "checkbox", value: String(v), checked: chosen.has(String(v)) }), " " + l)));
        input.checks = true;
      } else {
        input = Spa.h("input", {
          id: fid,
          name: f.name,
          type: f.type === "money" ? "text" : f.type || "text",
          inputmode: f.type === "money" ? "decimal" : f.type === "number" ? "numeric" : null,
          placeholder: f.placeholder || "",
          autocomplete: "off",
        });
        input.value = f.value == null ? "" : String(f.value);
      }
      inputs[f.name] = input;
      if (f.type === "checks") return Spa.h("fieldset", {}, Spa.h("legend", { text: f.label }), input);
      return Spa.h("label", { class: f.type === "checkbox" ? "check" : "field", for: fid }, f.type === "checkbox" ? [input, " ", f.label] : [f.label, input]);
    });
    const dlg = Spa.h("dialog", { class: "dlg", id });
    const cancel = Spa.h("button", { type: "button", class: "ghost", text: "Cancel", onclick: () => dlg.close() });
    const submit = Spa.h("button", { type: "button", class: opts.danger ? "danger" : "primary", text: opts.submit || "OK" });
    const values = () => {
      const out = {};
      for (const [k, el] of Object.entries(inputs)) {
        out[k] = el.checks ? Array.from(el.querySelectorAll("input:checked")).map((i) => i.value) : el.type === "checkbox" ? el.checked : el.value;
      }
      return out;
    };
    Spa.bind(submit, opts.key || id, () => opts.run(values()), (data) => {
      dlg.close();
      if (opts.done) opts.done(data);
    });
    Spa.fill(dlg, Spa.h("form", { method: "dialog", class: "dlg-form", onsubmit: (e) => { e.preventDefault(); submit.click(); } },
      Spa.h("h3", { text: opts.title }),
      opts.text ? Spa.h("p", { class: "muted", text: opts.text }) : null,
      rows,
      Spa.h("div", { class: "dlg-actions" }, cancel, submit)));
    dlg.addEventListener("close", () => {
      Spa.clearError(opts.key || id);
      dlg.remove();
    });
    document.body.append(dlg);
    dlg.showModal();
    const first = dlg.querySelector("input,select,textarea");
    if (first) first.focus();
    return dlg;
  };

  // ---- the connection ---------------------------------------------------------------
  /**
   * Connects with `token`. opts: {onSnapshot(snap, conn), on: {event: fn(payload)},
   * onRefused(message)}. Events are applied only in seq order: older ones
   * are dropped, a gap asks `sync` (a fresh snapshot follows).
   */
  Spa.connect = function (token, opts) {
    setStatus("connecting");
    // WebSocket first; where a network breaks WebSockets the client falls back
    // to long-polling by itself (tryAllTransports).
    const socket = io({ transports: ["websocket", "polling"], tryAllTransports: true, auth: { token }, reconnectionDelayMax: 5000 });
    const conn = { socket, seq: null, offset: 0, ready: false, syncing: false, snapshots: 0 };
    current = conn;
    Spa.conn = conn; // for the browser tests and a curious developer's console
    conn.now = () => Date.now() + conn.offset;
    conn.sync = function () {
      if (conn.syncing || !socket.connected) return;
      conn.syncing = true;
      socket
        .timeout(15000)
        .emitWithAck("sync", {})
        .catch(() => {})
        .then(() => {
          conn.syncing = false;
        });
    };
    socket.on("connect", () => {
      // The snapshot follows the CONNECT; until then we are not live.
    });
    socket.on("disconnect", (reason) => {
      conn.ready = false;
      setStatus("reconnecting");
      // The hub closed this session on purpose: try again (a revoked token
      // is then refused with "unauthorized").
      if (reason === "io server disconnect") setTimeout(() => socket.connect(), 1000);
    });
    socket.on("connect_error", (err) => {
      conn.ready = false;
      if (socket.active) {
        setStatus(conn.snapshots ? "reconnecting" : "connecting", conn.snapshots ? null : "Connecting to the hub… (" + (err && err.message ? err.message : "no answer") + ")");
        return;
      }
      const msg = (err && err.message) || "refused";
      setStatus("refused", msg === "unauthorized" ? "Not allowed: the hub refused this token." : "Refused: " + msg);
      if (opts.onRefused) opts.onRefused(msg);
    });
    socket.on("snapshot", (snap) => {
      conn.seq = typeof snap.seq === "number" ? snap.seq : 0;
      if (typeof snap.server_time === "number") conn.offset = snap.server_time - Date.now();
      conn.syncing = false;
      conn.ready = true;
      conn.snapshots++;
      conn.me = snap.me || {};
      if (snap.currency && snap.currency.code) Spa.currency = snap.currency;
      setStatus("live");
      opts.onSnapshot(snap, conn);
      for (const key of pending) paint(key);
    });
    const track = (p) => {
      const s = p && p.seq;
      if (typeof s !== "number" || conn.seq == null) return false;
      if (s < conn.seq) return false; // already in the snapshot or applied
      if (s > conn.seq + 1) {
        conn.sync(); // a lost message: take a fresh snapshot
        return false;
      }
      conn.seq = s;
      return true;
    };
    const handlers = Object.assign({}, opts.on || {});
    const names = new Set(Object.keys(handlers).concat(["seq", "room.updated", "therapist.updated", "visit.updated", "queue.updated", "service.updated", "staff.updated", "device.updated", "drawer.updated", "alert", "booking.updated", "shift.updated", "block.updated"]));
    for (const name of names) {
      socket.on(name, (payload) => {
        if (!track(payload)) return;
        const fn = handlers[name];
        if (fn) fn(payload, conn);
      });
    }
    return conn;
  };

  /**
   * A staff page: needs a stored staff token (else to `/`), shows who is
   * logged in, and a log-out button. `roles`: the roles the page is for.
   */
  /**
   * The office's clock check: when the hub's clock is not synchronised
   * (no internet after a power cut) and differs from this device's by more
   * than 2 minutes, say so; an admin may use this device's time
   * (`clock.set`, forward only, dropped once the hub synchronises).
   */
  Spa.clockCheck = function (snap, role) {
    const clock = snap.clock;
    let box = Spa.$("#clock-warn");
    const main = Spa.$("main");
    if (!clock || !main) return;
    const diff = (typeof snap.server_time === "number" ? snap.server_time : clock.now_ms) - Date.now();
    const show = !clock.synchronized && Math.abs(diff) > 2 * 60 * 1000;
    if (!box) {
      box = Spa.h("div", { id: "clock-warn", class: "msg error", role: "alert" });
      box.hidden = true;
      main.prepend(box);
    }
    box.hidden = !show;
    if (!show) return;
    const mins = Math.round(Math.abs(diff) / 60000);
    const text = "The hub's clock is not synchronised and is " + mins + " min " + (diff < 0 ? "behind" : "ahead of") + " this device (hub: " +
      new Date(Date.now() + diff).toLocaleString() + ", this device: " + new Date().toLocaleString() + "). Tickets, bookings and reports use the hub's time. ";
    if (role === "admin" && diff < 0) {
      Spa.fill(box, text, Spa.h("button", { type: "button", class: "primary small", id: "clock-set", text: "Use this device's time", onclick: async () => {
        const ack = await send("clock.set", { now_ms: Date.now() });
        if (ack.ok) { box.hidden = true; if (current) current.sync(); }
        else Spa.fill(box, text, Spa.h("b", { text: ack.error.message }));
      } }));
    } else if (role === "admin") {
      Spa.fill(box, text, "The hub's time can only move forward: check this device's clock.");
    } else {
      Spa.fill(box, text, "Ask an admin to set it from their device.");
    }
  };

  /** The origin for links to phones and monitors (see clockCheck's caller). */
  Spa.base = location.origin;

  Spa.staffPage = function (roles, opts) {
    const s = Spa.store.staff();
    if (!s) {
      location.replace("/?next=" + encodeURIComponent(location.pathname));
      return null;
    }
    const out = Spa.$("#logout");
    if (out) out.addEventListener("click", () => Spa.logout());
    const conn = Spa.connect(s.token, {
      on: opts.on,
      onRefused: (msg) => {
        if (msg === "unauthorized") {
          Spa.store.clearStaff();
          location.replace("/?expired=1&next=" + encodeURIComponent(location.pathname));
        }
      },
      onSnapshot: (snap, c) => {
        const me = snap.me || {};
        const role = me.role || s.role;
        const who = Spa.$("#who");
        if (who) who.textContent = (me.staff && me.staff.name) || (role === "admin" ? "Admin" : s.name || "") + "";
        const wrong = Spa.$("#wrong-role");
        if (wrong) {
          const bad = roles.indexOf(role) < 0;
          wrong.hidden = !bad;
          if (bad) Spa.fill(wrong, "This page is for ", roles.join(" or "), ". You are logged in as ", role, ": ", Spa.h("a", { href: Spa.pageFor(role), text: "go to your page" }), ".");
        }
        Spa.clockCheck(snap, role);
        // Links and QR codes for phones and monitors: the hub's LAN address
        // or SPA_PUBLIC_URL, not the localhost this desk PC may be using.
        if (typeof snap.public_base === "string" && /^https?:\/\//.test(snap.public_base)) Spa.base = snap.public_base;
        opts.onSnapshot(snap, c);
      },
    });
    conn.staff = s;
    return conn;
  };

  /** Tabs: buttons [data-tab=NAME] show section #tab-NAME. */
  Spa.tabs = function (root, onShow) {
    const buttons = Spa.$$("[data-tab]", root);
    const show = (name) => {
      for (const b of buttons) {
        const on = b.dataset.tab === name;
        b.classList.toggle("on", on);
        b.setAttribute("aria-selected", on ? "true" : "false");
        const sec = document.getElementById("tab-" + b.dataset.tab);
        if (sec) sec.hidden = !on;
      }
      if (onShow) onShow(name);
    };
    for (const b of buttons) b.addEventListener("click", () => show(b.dataset.tab));
    if (buttons.length) show(buttons[0].dataset.tab);
    return show;
  };

  /** A random id for idempotent requests. */
  Spa.randomId = function () {
    const a = new Uint8Array(16);
    crypto.getRandomValues(a);
    return Array.from(a, (b) => b.toString(16).padStart(2, "0")).join("");
  };
})();
