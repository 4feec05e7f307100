#!/usr/bin/env node
// Compatibility test of spa-hub with the official socket.io-client 4.x.
//
// Drives a running hub through `io(url, {auth})` as an admin (the client's
// default options: long-polling, then the upgrade), a therapist (staff login
// over HTTP; long-polling only), a monitor (paired device; WebSocket only)
// and two customers (tokens from `visit.create`), and checks acks
// (`emitWithAck`), broadcasts and the per-role filtering of PROTOCOL.md;
// then the book (see `book`), which waits about two minutes for a booked time;
// then connection state recovery (see `recovery`), across a short disconnect
// and, when SPA_RESTART_DIR is set, across a restart of the hub.
//
// Usage: SPA_URL=http://127.0.0.1:PORT SPA_ADMIN_TOKEN=... node node_client.mjs
// (the URL may also be the first argument). Prints one line per check and a
// final `N passed, M failed`; exits 1 when any check failed.

import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { io } from "socket.io-client";

const URL_ = (process.argv[2] || process.env.SPA_URL || "").replace(/\/+$/, "");
const ADMIN_TOKEN = process.env.SPA_ADMIN_TOKEN || "";
const TIMEOUT = Number(process.env.SPA_CLIENT_TIMEOUT || "10") * 1000;
const RUN = randomBytes(3).toString("hex"); // unique names if the data dir is reused
// HTTPS (SPA_TLS_CERT on the hub): the CA made by `spa-hub tls init`,
// trusted explicitly with rejectUnauthorized (fetch trusts it through
// NODE_EXTRA_CA_CERTS, set by .ci/clients.sh).
const CA = process.env.SPA_CA ? readFileSync(process.env.SPA_CA) : null;

let passed = 0;
let failed = 0;

function check(name, ok, detail = "") {
  if (ok) {
    passed += 1;
    console.log(`ok   ${name}`);
  } else {
    failed += 1;
    console.log(`FAIL ${name}${detail ? `: ${detail}` : ""}`);
  }
  return ok;
}

function short(value, limit = 400) {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  if (text === undefined) return "undefined";
  return text.length <= limit ? text : `${text.slice(0, limit)}...`;
}

function* walk(value) {
  if (Array.isArray(value)) {
    for (const v of value) yield* walk(v);
  } else if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      yield [k, v];
      yield* walk(v);
    }
  }
}

const isInt = (v) => Number.isInteger(v);

// Stops the run when a connection the rest depends on could not be made.
function must(ok, what) {
  if (!ok) throw new Error(`cannot go on without the ${what} connection`);
}

// One socket.io-client Socket that records every event it receives.
// `transports: null` keeps the client's default (polling, then the upgrade);
// `recovery: true` asks the hub for connection state recovery.
class Peer {
  constructor(label, token, { transports = ["websocket"], recovery = false, reconnection = false } = {}) {
    this.label = label;
    this.events = []; // [name, payload] in arrival order
    this.waiters = new Set();
    this.connectErrors = [];
    const opts = {
      reconnection,
      reconnectionDelay: 200,
      reconnectionDelayMax: 1000,
      forceNew: true,
      timeout: TIMEOUT,
    };
    if (transports) opts.transports = transports;
    if (token !== null) opts.auth = recovery ? { token, recovery: true } : { token };
    if (CA) Object.assign(opts, { ca: CA, rejectUnauthorized: true });
    this.socket = io(URL_, { ...opts, autoConnect: false });
    this.socket.onAny((event, ...args) => {
      // With recovery, the hub adds each event's offset as a last argument.
      if (recovery && args.length > 1 && typeof args[args.length - 1] === "string") {
        this.offsets = (this.offsets || []).concat(args.pop());
      }
      this.events.push([event, args.length === 1 ? args[0] : args]);
      for (const w of this.waiters) w();
    });
    this.socket.on("connect_error", (err) => {
      this.connectErrors.push(err);
      for (const w of this.waiters) w();
    });
  }

  // Resolves true on connect, false on connect_error or time-out.
  connect() {
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(false), TIMEOUT);
      const done = (ok) => {
        clearTimeout(timer);
        this.socket.off("connect", onOk);
        this.socket.off("connect_error", onErr);
        resolve(ok);
      };
      const onOk = () => done(true);
      const onErr = () => done(false);
      this.socket.once("connect", onOk);
      this.socket.once("connect_error", onErr);
      this.socket.connect();
    });
  }

  call(command, args = {}) {
    return this.socket.timeout(TIMEOUT).emitWithAck(command, args);
  }

  mark() {
    return this.events.length;
  }

  find(pred, since) {
    for (const [name, payload] of this.events.slice(since)) {
      try {
        if (pred(name, payload)) return [name, payload];
      } catch {
        // a payload of another shape: not a match
      }
    }
    return null;
  }

  // First [name, payload] at index >= since matching pred, or null.
  waitFor(pred, since = 0, timeout = TIMEOUT) {
    const found = this.find(pred, since);
    if (found) return Promise.resolve(found);
    return new Promise((resolve) => {
      const waiter = () => {
        const hit = this.find(pred, since);
        if (hit) finish(hit);
      };
      const finish = (value) => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
        resolve(value);
      };
      const timer = setTimeout(() => finish(null), timeout);
      this.waiters.add(waiter);
    });
  }

  names(since = 0) {
    return this.events.slice(since).map(([n]) => n);
  }

  maxSeq() {
    const seqs = this.events.map(([, p]) => p && p.seq).filter(isInt);
    return seqs.length ? Math.max(...seqs) : null;
  }

  close() {
    this.socket.disconnect();
  }
}

async function http(method, path, body) {
  const init = { method, signal: AbortSignal.timeout(TIMEOUT) };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers = { "Content-Type": "application/json" };
  }
  const resp = await fetch(URL_ + path, init);
  return [resp.status, await resp.text()];
}

function okAck(name, ack, seqs) {
  const good =
    ack && ack.ok === true && ack.data && typeof ack.data === "object" && isInt(ack.data.seq);
  check(`${name}: ok ack with seq`, good, short(ack));
  if (!good) return {};
  if (seqs) {
    if (seqs.length) {
      const prev = seqs[seqs.length - 1];
      check(`${name}: seq ${ack.data.seq} > previous ${prev}`, ack.data.seq > prev);
    }
    seqs.push(ack.data.seq);
  }
  return ack.data;
}

function errorAck(name, ack, code) {
  const good =
    ack &&
    ack.ok === false &&
    ack.error &&
    ack.error.code === code &&
    typeof ack.error.message === "string" &&
    ack.error.message !== "";
  check(`${name}: error ack \`${code}\``, good, short(ack));
}

async function snapshotOf(peer, since = 0) {
  const got = await peer.waitFor((n) => n === "snapshot", since);
  return got ? got[1] : null;
}

function noLeak(label, peer, texts, keys) {
  const bad = [];
  for (const [name, payload] of peer.events) {
    const text = JSON.stringify(payload);
    for (const t of texts) if (text.includes(t)) bad.push(`${name} contains "${t}": ${short(payload)}`);
    for (const [k] of walk(payload)) if (keys.includes(k)) bad.push(`${name} has key "${k}": ${short(payload)}`);
  }
  check(
    `${label}: none of ${peer.events.length} payloads has ${JSON.stringify(texts.slice().sort())} ` +
      `or keys ${JSON.stringify(keys)}`,
    bad.length === 0,
    bad.slice(0, 3).join("; "),
  );
}

function seqOrder(label, peer) {
  const missing = peer.events.filter(([, p]) => !(p && isInt(p.seq))).map(([n]) => n);
  check(`${label}: every event carries an integer seq`, missing.length === 0, short(missing));
  const seqs = peer.events.filter(([, p]) => p && isInt(p.seq)).map(([n, p]) => [n, p.seq]);
  const backwards = [];
  for (let i = 1; i < seqs.length; i += 1) {
    if (seqs[i][1] < seqs[i - 1][1]) backwards.push(`${seqs[i - 1].join("@")} then ${seqs[i].join("@")}`);
  }
  check(`${label}: event seqs never go backwards`, backwards.length === 0, backwards.slice(0, 3).join("; "));
}

async function run(peers) {
  // --- HTTP beside the hub ------------------------------------------------
  let [status, body] = await http("GET", "/healthz");
  let parsed = null;
  try {
    parsed = JSON.parse(body);
  } catch {
    parsed = null;
  }
  check("GET /healthz is 200 JSON", status === 200 && parsed && typeof parsed === "object", body);
  [status, body] = await http("GET", "/socket.io/?EIO=4&transport=polling");
  check("polling handshake: 200 with an open packet offering the upgrade",
    status === 200 && body.startsWith("0{") && JSON.parse(body.slice(1)).upgrades[0] === "websocket",
    `${status} ${body}`);

  // --- auth failures --------------------------------------------------------
  for (const [label, token] of [
    ["bad token", `not-a-token-${RUN}`],
    ["missing token", null],
  ]) {
    const bad = new Peer(label, token);
    peers.push(bad);
    const connected = await bad.connect();
    check(`${label}: connection refused`, !connected && !bad.socket.connected);
    const err = bad.connectErrors[0];
    check(
      `${label}: connect_error says unauthorized`,
      err && err.message === "unauthorized",
      err ? `${err.message} ${short(err.data)}` : "no connect_error",
    );
    check(`${label}: no snapshot`, !bad.names().includes("snapshot"));
    bad.close();
  }

  // --- admin ----------------------------------------------------------------
  const admin = new Peer("admin", ADMIN_TOKEN, { transports: null });
  peers.push(admin);
  must(check("admin: connects", await admin.connect()), "admin");
  let snap = await snapshotOf(admin);
  check("admin: snapshot on connect", snap !== null);
  const keys = ["seq", "server_time", "me", "rooms", "therapists", "rotation", "queue",
    "visits", "services", "staff", "devices"];
  check("admin: snapshot has the office view keys", snap && keys.every((k) => k in snap), short(snap));
  check("admin: me.role is admin", snap && snap.me && snap.me.role === "admin", short(snap && snap.me));

  const seqs = [];
  let m = admin.mark();
  const roomName = `Node Room ${RUN}`;
  const room = okAck("room.create", await admin.call("room.create", { name: roomName }), seqs).room || {};
  check("room.create: data.room has id and the name", isInt(room.id) && room.name === roomName, short(room));
  let got = await admin.waitFor((n, p) => n === "room.updated" && p.room.id === room.id, m);
  check(
    "admin: room.updated broadcast for its own change, with the ack's seq",
    got && got[1].seq === seqs[seqs.length - 1],
    short(got),
  );

  const service = okAck("service.create", await admin.call("service.create", {
    name: `Node Massage ${RUN}`, duration_min: 45, cleanup_min: 5, price_cents: 6000,
  }), seqs).service || {};
  check("service.create: data.service has an id", isInt(service.id), short(service));

  const therapistName = `Node Tom ${RUN}`;
  const pin = "8356";
  const staff = okAck("staff.create", await admin.call("staff.create", {
    name: therapistName, role: "therapist", pin,
  }), seqs).staff || {};
  const tid = staff.id;
  check("staff.create: data.staff is a therapist with an id", isInt(tid) && staff.role === "therapist", short(staff));
  check("staff.create: the PIN is not echoed", !JSON.stringify(staff).includes(pin), short(staff));

  m = admin.mark();
  let data = okAck("therapist.clock_in", await admin.call("therapist.clock_in", { therapist_id: tid }), seqs);
  check("therapist.clock_in: therapist is available", data.therapist && data.therapist.status === "available", short(data));
  got = await admin.waitFor(
    (n, p) => n === "therapist.updated" && p.therapist.id === tid && p.seq === seqs[seqs.length - 1], m);
  check("admin: therapist.updated with rotation containing the therapist",
    got && Array.isArray(got[1].rotation) && got[1].rotation.includes(tid), short(got));

  // --- invalid input and unknown commands -------------------------------------
  errorAck("unknown command", await admin.call(`no.such.command.${RUN}`, {}), "invalid");
  let ack = await admin.call("room.create", {});
  errorAck("room.create without name", ack, "invalid");
  check("room.create without name: message names the field",
    ack && ack.error && String(ack.error.message).includes("name"), short(ack));

  // --- a command without an ack is still executed -------------------------------
  m = admin.mark();
  const fireName = `Node Fire ${RUN}`;
  admin.socket.emit("room.create", { name: fireName });
  got = await admin.waitFor((n, p) => n === "room.updated" && p.room.name === fireName, m);
  check("room.create without ack id still runs (room.updated arrives)", got !== null);
  if (got) {
    check("room.create without ack id: seq moved past the last ack", got[1].seq > seqs[seqs.length - 1], short(got[1]));
    seqs.push(got[1].seq);
  }

  // --- staff login over HTTP, therapist connection -------------------------------
  [status, body] = await http("POST", "/api/login", { name: therapistName, pin: "0000" });
  check("POST /api/login with a wrong PIN is refused", status === 401 || status === 403, `${status} ${body}`);
  [status, body] = await http("POST", "/api/login", { name: therapistName, pin });
  const login = status === 200 ? JSON.parse(body) : {};
  check("POST /api/login returns token, role, expires_at",
    status === 200 && typeof login.token === "string" && login.role === "therapist"
      && isInt(login.expires_at) && login.expires_at > Date.now(), `${status} ${body}`);
  const therapist = new Peer("therapist", login.token ?? "", { transports: ["polling"] });
  peers.push(therapist);
  must(check("therapist: connects", await therapist.connect()), "therapist");
  check("therapist: on long-polling only", therapist.socket.io.engine.transport.name === "polling");
  check("admin (default options): upgraded to websocket", admin.socket.io.engine.transport.name === "websocket",
    admin.socket.io.engine.transport.name);
  snap = await snapshotOf(therapist);
  check("therapist: snapshot on connect with me.role therapist",
    snap && snap.me && snap.me.role === "therapist", short(snap));
  check("therapist: snapshot lists the new room", snap && (snap.rooms || []).some((r) => r.id === room.id));
  errorAck("therapist room.create", await therapist.call("room.create", { name: "nope" }), "forbidden");
  errorAck("therapist visit.create", await therapist.call("visit.create", {
    customer_name: "nope", service_ids: [service.id] }), "forbidden");

  // --- monitor ---------------------------------------------------------------------
  data = okAck("device.pair", await admin.call("device.pair", { role: "monitor", name: `Node lobby ${RUN}` }), seqs);
  check("device.pair: data.token is a string", typeof data.token === "string", short(data));
  const monitor = new Peer("monitor", data.token ?? "");
  peers.push(monitor);
  must(check("monitor: connects", await monitor.connect()), "monitor");
  snap = await snapshotOf(monitor);
  check("monitor: snapshot on connect with me.role monitor", snap && snap.me && snap.me.role === "monitor", short(snap));
  errorAck("monitor room.create", await monitor.call("room.create", { name: "nope" }), "forbidden");
  errorAck("monitor visit.create", await monitor.call("visit.create", {
    customer_name: "nope", service_ids: [service.id] }), "forbidden");

  // --- two customers ------------------------------------------------------------------
  const nameA = `Alice Nodefirst ${RUN}`;
  const phoneA = `+1666${RUN}01`;
  const nameB = `Bruno Nodesecond ${RUN}`;
  const phoneB = `+1666${RUN}02`;
  let marks = new Map([admin, therapist, monitor].map((p) => [p, p.mark()]));
  data = okAck("visit.create A", await admin.call("visit.create", {
    customer_name: nameA, service_ids: [service.id], phone: phoneA }), seqs);
  const visitA = data.visit || {};
  const va = visitA.id;
  check("visit.create A: customer_token, customer_url, visit with the name",
    typeof data.customer_token === "string" && typeof data.customer_url === "string"
      && visitA.customer_name === nameA, short(data));
  const seqA = seqs[seqs.length - 1];
  for (const p of [admin, therapist, monitor]) {
    got = await p.waitFor((n, x) => n === "visit.updated" && x.visit.id === va, marks.get(p));
    check(`${p.label}: visit.updated for visit A with seq ${seqA}`, got && got[1].seq === seqA, short(got));
    got = await p.waitFor((n, x) => n === "queue.updated" && x.queue.some((e) => e.visit_id === va), marks.get(p));
    check(`${p.label}: queue.updated lists visit A`, got !== null, short(p.names(marks.get(p))));
  }

  const custA = new Peer("customer A", data.customer_token ?? "");
  peers.push(custA);
  must(check("customer A: connects", await custA.connect()), "customer A");
  snap = await snapshotOf(custA);
  check("customer A: snapshot holds their own visit",
    snap && snap.visit && snap.visit.id === va && snap.visit.customer_name === nameA, short(snap));
  check("customer A: me.role is customer", snap && snap.me && snap.me.role === "customer", short(snap && snap.me));
  errorAck("customer room.create", await custA.call("room.create", { name: "nope" }), "forbidden");
  errorAck("customer visit.call", await custA.call("visit.call", {}), "forbidden");

  marks = new Map([admin, therapist, monitor, custA].map((p) => [p, p.mark()]));
  data = okAck("visit.create B", await admin.call("visit.create", {
    customer_name: nameB, service_ids: [service.id], phone: phoneB }), seqs);
  const vb = (data.visit || {}).id;
  const seqB = seqs[seqs.length - 1];
  const custB = new Peer("customer B", data.customer_token ?? "");
  peers.push(custB);
  must(check("customer B: connects", await custB.connect()), "customer B");
  snap = await snapshotOf(custB);
  check("customer B: snapshot holds their own visit", snap && snap.visit && snap.visit.id === vb, short(snap));

  got = await admin.waitFor((n, x) => n === "visit.updated" && x.visit.id === vb, marks.get(admin));
  check("admin: visit.updated for B carries the customer name", got && got[1].visit.customer_name === nameB, short(got));
  got = await therapist.waitFor((n, x) => n === "visit.updated" && x.visit.id === vb, marks.get(therapist));
  check("therapist: visit.updated for B (not theirs) has no phone", got && !("phone" in got[1].visit), short(got));
  got = await monitor.waitFor((n, x) => n === "visit.updated" && x.visit.id === vb, marks.get(monitor));
  check("monitor: visit.updated for B with number and state only",
    got && got[1].seq === seqB && "number" in got[1].visit && !("customer_name" in got[1].visit), short(got));
  got = await monitor.waitFor((n, x) => n === "queue.updated" && x.seq === seqB, marks.get(monitor));
  check("monitor: queue.updated for B lists both visits",
    got && [va, vb].every((id) => got[1].queue.some((e) => e.visit_id === id)), short(got));
  got = await custA.waitFor((n, x) => x.seq >= seqB, marks.get(custA));
  check(`customer A: hears of seq ${seqB} (queue.updated or seq marker)`, got !== null, short(custA.names(marks.get(custA))));
  got = await custA.waitFor((n, x) => n === "queue.updated" && x.seq === seqB, marks.get(custA), 2000);
  if (got) {
    check("customer A: queue.updated shows only their own entry",
      got[1].queue.length <= 1 && got[1].queue.every((e) => e.visit_id === va), short(got));
  }

  // --- call, start, finish ------------------------------------------------------------
  marks = new Map([admin, therapist, monitor, custA, custB].map((p) => [p, p.mark()]));
  data = okAck("visit.call {}", await admin.call("visit.call", {}), seqs);
  const called = data.visit || {};
  check("visit.call {} calls the head of the queue (A) to the therapist and a room",
    called.id === va && called.state === "called" && called.therapist_id === tid && isInt(called.room_id), short(data));
  const seqCall = seqs[seqs.length - 1];
  got = await custA.waitFor((n, x) => n === "visit.updated" && x.seq === seqCall, marks.get(custA));
  check("customer A: visit.updated says called",
    got && got[1].visit.id === va && got[1].visit.state === "called", short(got));
  got = await monitor.waitFor(
    (n, x) => n === "room.updated" && x.room.id === called.room_id && x.seq === seqCall, marks.get(monitor));
  check("monitor: room.updated for the called room", got && got[1].room.status !== "available", short(got));
  got = await therapist.waitFor(
    (n, x) => n === "therapist.updated" && x.therapist.id === tid && x.seq === seqCall, marks.get(therapist));
  check("therapist: therapist.updated for self after the call", got && got[1].therapist.visit_id === va, short(got));
  got = await custB.waitFor((n, x) => x.seq >= seqCall, marks.get(custB));
  check(`customer B: hears of seq ${seqCall}`, got !== null, short(custB.names(marks.get(custB))));

  m = custA.mark();
  data = okAck("therapist visit.start A", await therapist.call("visit.start", { visit_id: va }), seqs);
  check("visit.start: visit has started_at and planned_end",
    data.visit && data.visit.started_at != null && data.visit.planned_end != null, short(data));
  got = await custA.waitFor((n, x) => n === "visit.updated" && x.seq === seqs[seqs.length - 1], m);
  check("customer A: visit.updated after start", got && got[1].visit.started_at != null, short(got));
  data = okAck("therapist visit.finish A", await therapist.call("visit.finish", { visit_id: va }), seqs);
  got = await custA.waitFor((n, x) => n === "visit.updated" && x.seq === seqs[seqs.length - 1], m);
  check("customer A: visit.updated after finish", got && got[1].visit.finished_at != null, short(got));
  errorAck("visit.start of a finished visit", await therapist.call("visit.start", { visit_id: va }), "conflict");
  errorAck("visit.start of no such visit", await admin.call("visit.start", { visit_id: 987654321 }), "not_found");

  // --- sync ----------------------------------------------------------------------------
  for (const p of [admin, monitor, custA]) {
    m = p.mark();
    ack = await p.call("sync");
    const good = ack && ack.ok === true && ack.data && isInt(ack.data.seq);
    check(`${p.label}: sync acks ok with seq`, good, short(ack));
    snap = await snapshotOf(p, m);
    check(`${p.label}: sync sends a fresh snapshot with the ack's seq`,
      snap && good && snap.seq === ack.data.seq && snap.seq >= seqs[seqs.length - 1], short(snap));
    if (p === custA && snap) {
      check("customer A: synced snapshot shows the visit finished", snap.visit && snap.visit.finished_at != null, short(snap));
    }
  }

  // --- returning customers (#16): search → check in a record → the therapist
  // sees the allergy; a forget reaches the office; nobody else hears a name.
  const recName = `Rosa Returning ${RUN}`;
  const recPhone = `+1 555 ${String(parseInt(RUN, 16) % 1000000).padStart(6, "0")}`;
  const allergy = `allergic to nut oils ${RUN}`;
  data = okAck("customer.create", await admin.call("customer.create", {
    name: recName, phone: recPhone, notes: allergy }), seqs);
  const rec = data.customer || {};
  check("customer.create: phone kept as digits", rec.phone === recPhone.replace(/\D/g, ""), short(rec));
  ack = await admin.call("customer.search", { q: "rosa ret" });
  check("customer.search by name prefixes finds the record",
    ack && ack.ok && ack.data.customers.length >= 1 && ack.data.customers[0].id === rec.id, short(ack));
  ack = await admin.call("customer.search", { q: recPhone.replace(/\D/g, "").slice(-4) });
  check("customer.search by 4 phone digits finds the record",
    ack && ack.ok && ack.data.customers.some((c) => c.id === rec.id), short(ack));
  for (const p of [therapist, monitor, custA]) {
    errorAck(`${p.label} customer.search`, await p.call("customer.search", { q: "ros" }), "forbidden");
  }
  errorAck("customer.create with a short phone",
    await admin.call("customer.create", { name: "Shorty", phone: "12345" }), "invalid");
  data = okAck("visit.create for the record", await admin.call("visit.create", {
    customer_id: rec.id, service_ids: [service.id] }), seqs);
  const vr = (data.visit || {}).id;
  check("visit.create for the record: the customer's name and notes on the desk's copy",
    data.visit && data.visit.customer_name === recName && data.visit.customer
      && data.visit.customer.notes === allergy, short(data));
  m = therapist.mark();
  data = okAck("visit.call the record's visit", await admin.call("visit.call", {
    visit_id: vr, therapist_id: tid }), seqs);
  got = await therapist.waitFor(
    (n, x) => n === "visit.updated" && x.visit.id === vr && x.visit.customer && x.visit.customer.notes === allergy, m);
  check("therapist: sees the allergy on their own visit", got !== null, short(therapist.names(m)));
  data = okAck("visit.update services", await admin.call("visit.update", {
    visit_id: vr, service_ids: [service.id, service.id] }), seqs);
  check("visit.update: re-priced", data.visit && data.visit.services_cents === 2 * service.price_cents, short(data));
  okAck("visit.leave the record's visit", await admin.call("visit.leave", { visit_id: vr, reason: "test over" }), seqs);
  m = admin.mark();
  okAck("customer.forget", await admin.call("customer.forget", { customer_id: rec.id, reason: "asked" }), seqs);
  got = await admin.waitFor(
    (n, x) => n === "visit.updated" && x.visit.id === vr && x.visit.customer_name === "(forgotten)", m);
  check("admin: the forget blanks the visit it holds", got !== null, short(admin.names(m)));
  errorAck("customer.forget twice", await admin.call("customer.forget", { customer_id: rec.id, reason: "again" }),
    "conflict");

  // --- leave the floor as found -----------------------------------------------------------
  okAck("visit.leave B", await admin.call("visit.leave", { visit_id: vb, reason: "test over" }), seqs);
  okAck("therapist.clock_out", await therapist.call("therapist.clock_out", {}), seqs);
  const last = seqs[seqs.length - 1];

  // --- every client hears of the last seq, and nothing leaked ---------------------------
  for (const p of [admin, therapist, monitor, custA, custB]) {
    got = await p.waitFor((n, x) => isInt(x.seq) && x.seq >= last);
    check(`${p.label}: catches up to the last seq ${last}`, got !== null, `max seen ${p.maxSeq()}`);
    seqOrder(p.label, p);
  }
  noLeak("monitor", monitor, [nameA, nameB, phoneA, phoneB, recName, allergy], ["customer_name", "phone", "notes"]);
  noLeak("customer A", custA, [nameB, phoneB, recName, allergy], []);
  noLeak("customer B", custB, [nameA, phoneA, recName, allergy], []);
  noLeak("therapist", therapist, [phoneB], []);
  for (const [p, mine] of [[custA, va], [custB, vb]]) {
    const foreign = [];
    for (const [name, payload] of p.events) {
      for (const [k, v] of walk(payload)) {
        if (k === "visit" && v && typeof v === "object" && v.id !== mine) foreign.push(`${name}: ${short(v)}`);
        if (k === "visit_id" && v != null && v !== mine) foreign.push(`${name}: visit_id ${v}`);
      }
    }
    check(`${p.label}: only ever receives their own visit`, foreign.length === 0, foreign.slice(0, 3).join("; "));
  }
  got = await admin.waitFor((n, x) => n === "visit.updated" && x.visit.id === va && x.visit.customer_name === nameA);
  check("admin: did receive the names the others must not", got !== null);

  await counter(admin, monitor, seqs);
  await book(admin, peers, room, service, seqs);
  await recovery(admin, peers, service, seqs);
}

// --- the counter (#17): a product and a gift card; a visit paid with the
// gift card, card and cash (split tender) for its service and two bottles;
// its receipt (number, tax per rate, lines adding up to the payments); a
// refund of one bottle onto the gift card with restock, and one by amount
// to the card; the monitor never sees a receipt or a code.
async function counter(admin, monitor, seqs) {
  const m = admin.mark();
  const product = okAck("product.create", await admin.call("product.create", {
    name: `Node oil ${RUN}`, sku: `NODE-${RUN}`, price_cents: 1299, tax_rate_bp: 1900, stock: 5 }), seqs).product || {};
  check("product.create: stock 5 at 19%", product.stock === 5 && product.tax_rate_bp === 1900, short(product));
  const taxed = okAck("service.create (taxed)", await admin.call("service.create", {
    name: `Node facial ${RUN}`, duration_min: 30, price_cents: 4545, tax_rate_bp: 725 }), seqs).service || {};
  check("service.create: tax_rate_bp 725", taxed.tax_rate_bp === 725, short(taxed));
  await admin.call("drawer.open", { float_cents: 10000 });
  errorAck("giftcard.issue without payment", await admin.call("giftcard.issue", { request_id: `gc0-${RUN}`, amount_cents: 3000 }), "invalid");
  let d = okAck("giftcard.issue", await admin.call("giftcard.issue", {
    request_id: `gc-${RUN}`, amount_cents: 3000, payments: [{ method: "cash", amount_cents: 3000 }] }), seqs);
  const code = d.code || "";
  check("giftcard.issue: the code is shown, grouped", /^[0-9A-Z]{4}(-[0-9A-Z]{4}){3}$/.test(code), short(d));
  const again = await admin.call("giftcard.issue", {
    request_id: `gc-${RUN}`, amount_cents: 3000, payments: [{ method: "cash", amount_cents: 3000 }] });
  check("giftcard.issue retried: the first receipt, the same code again",
    again && again.ok && again.data.retried === true && again.data.code === code, short(again));
  d = await admin.call("giftcard.balance", { code: code.toLowerCase().replace(/-/g, " ") });
  check("giftcard.balance: 3000, typed in lower case with spaces", d && d.ok && d.data.balance_cents === 3000, short(d));
  errorAck("giftcard.balance of an unknown code", await admin.call("giftcard.balance", { code: "0000-0000-0000-0000" }), "conflict");

  const therapist = okAck("staff.create (counter)", await admin.call("staff.create", {
    name: `Counter Cara ${RUN}`, role: "therapist", pin: "86420" }), seqs).staff || {};
  okAck("therapist.clock_in (counter)", await admin.call("therapist.clock_in", { therapist_id: therapist.id }), seqs);
  const room = okAck("room.create (counter)", await admin.call("room.create", { name: `Counter room ${RUN}` }), seqs).room || {};
  const visit = okAck("visit.create (counter)", await admin.call("visit.create", {
    customer_name: `Counter Cleo ${RUN}`, service_ids: [taxed.id] }), seqs).visit || {};
  okAck("visit.call (counter)", await admin.call("visit.call", { visit_id: visit.id, therapist_id: therapist.id, room_id: room.id }), seqs);
  okAck("visit.start (counter)", await admin.call("visit.start", { visit_id: visit.id }), seqs);
  okAck("visit.finish (counter)", await admin.call("visit.finish", { visit_id: visit.id }), seqs);
  // 45.45 + 2 × 12.99 = 71.43: 30.00 gift card, 30.00 card, 11.43 cash given as 20.00.
  const total = 4545 + 2 * 1299;
  errorAck("visit.checkout over the gift card's balance", await admin.call("visit.checkout", {
    visit_id: visit.id, request_id: `pay0-${RUN}`, items: [{ product_id: product.id, qty: 2 }],
    payments: [{ method: "giftcard", amount_cents: 3001, code }, { method: "card", amount_cents: total - 3001 }] }), "conflict");
  errorAck("visit.checkout of more bottles than stock", await admin.call("visit.checkout", {
    visit_id: visit.id, request_id: `pay1-${RUN}`, items: [{ product_id: product.id, qty: 6 }],
    payments: [{ method: "card", amount_cents: 4545 + 6 * 1299 }] }), "conflict");
  d = okAck("visit.checkout: product + gift card + card + cash", await admin.call("visit.checkout", {
    visit_id: visit.id, request_id: `pay-${RUN}`, items: [{ product_id: product.id, qty: 2 }],
    payments: [{ method: "giftcard", amount_cents: 3000, code }, { method: "card", amount_cents: 3000 },
      { method: "cash", amount_cents: 2000 }] }), seqs);
  const sale = (d.receipt && d.receipt.sale) || {};
  const lines = sale.lines || [];
  const gross = lines.reduce((t, l) => t + l.gross_cents, 0);
  check("receipt: a number R-…, 2 lines, change 8.57", /^R-\d{6}$/.test(sale.number || "") && lines.length === 2 && sale.change_cents === 857, short(sale));
  check("receipt: the lines add up to the payments less change", gross === total && sale.paid_cents - sale.change_cents === gross, short(sale));
  const rows = sale.taxes || [];
  check("receipt: net + tax = gross per rate, at 7.25% and 19%",
    rows.length === 2 && rows.every((r) => r.net_cents + r.tax_cents === r.gross_cents) &&
    rows[0].rate === "7.25%" && rows[1].rate === "19%" && rows[1].tax_cents === 415, short(rows));
  d = await admin.call("giftcard.balance", { code });
  check("giftcard.balance after paying: 0", d && d.ok && d.data.balance_cents === 0, short(d));
  let got = await admin.waitFor((n, x) => n === "product.updated" && x.product.id === product.id && x.product.stock === 3, m);
  check("product.updated: stock 3 after two sold", got !== null);
  got = await admin.waitFor((n, x) => n === "receipt.updated" && x.receipt.number === sale.number, m);
  check("receipt.updated reaches the office", got !== null);

  // One bottle back onto the gift card, restocked; then 10.00 to the card.
  d = okAck("visit.refund a line onto the gift card", await admin.call("visit.refund", {
    visit_id: visit.id, lines: [{ line: 1, qty: 1 }], method: "giftcard", restock: true, reason: "leaking bottle" }), seqs);
  const back = d.receipt || {};
  check("refund receipt: its own number, kind refund, 12.99 at 19%",
    back.kind === "refund" && back.number !== sale.number && back.total_cents === 1299 &&
    back.taxes.length === 1 && back.taxes[0].rate_bp === 1900, short(back));
  d = await admin.call("giftcard.balance", { code });
  check("giftcard.balance after the refund: 12.99 back", d && d.ok && d.data.balance_cents === 1299, short(d));
  got = await admin.waitFor((n, x) => n === "product.updated" && x.product.id === product.id && x.product.stock === 4, m);
  check("product.updated: restocked to 4", got !== null);
  errorAck("visit.refund beyond the line", await admin.call("visit.refund", {
    visit_id: visit.id, lines: [{ line: 1, qty: 2 }], method: "card", reason: "x" }), "invalid");
  d = okAck("visit.refund by amount to the card", await admin.call("visit.refund", {
    visit_id: visit.id, amount_cents: 1000, method: "card", reason: "goodwill" }), seqs);
  check("refund by amount: a receipt of 10.00", d.receipt && d.receipt.total_cents === 1000, short(d));
  const report = await admin.call("report.day", {});
  const r = (report && report.ok && report.data.report) || {};
  check("report.day: tax per rate, gift cards sold and redeemed, products",
    Array.isArray(r.taxes) && r.giftcards && r.giftcards.sold.cents >= 3000 && r.giftcards.redeemed.cents >= 3000 &&
    Array.isArray(r.products_sold) && r.products_sold.some((p) => p.product_id === product.id && p.sold === 2 && p.returned === 1),
    short({ taxes: r.taxes, giftcards: r.giftcards }));
  await monitor.waitFor((n, x) => isInt(x.seq) && x.seq >= seqs[seqs.length - 1], 0);
  noLeak("monitor (counter)", monitor, [code, code.replace(/-/g, "")], ["receipt", "payments", "giftcards_used", "giftcards"]);
}

// --- connection state recovery: a customer that misses events (a dropped
// transport, then a restart of the hub) gets exactly those back, in order,
// with `recovered === true`, and never another customer's.
async function recovery(admin, peers, service, seqs) {
  const visit = async (name) => okAck(`visit.create ${name}`, await admin.call("visit.create", {
    customer_name: name, service_ids: [service.id] }), seqs);
  const mine = await visit(`Rita Recover ${RUN}`);
  // (Others' visits move the queue: the customer hears of its own line.)
  const cust = new Peer("recovering customer", mine.customer_token ?? "", {
    transports: null, recovery: true, reconnection: true });
  peers.push(cust);
  must(check("recovery: customer connects (default options)", await cust.connect()), "recovering customer");
  await snapshotOf(cust);
  check("recovery: a first connection is not recovered", cust.socket.recovered === false);
  const otherName = `Otto Other ${RUN}`;
  // The customer's events after index m: every seq from `from` to `to`
  // exactly once per event name, no snapshot, nothing of the other visit.
  const missed = (label, m, from, to, otherId) => {
    const got = cust.events.slice(m);
    const pairs = got.map(([n, p]) => `${n}@${p && p.seq}`);
    const seen = new Set(got.map(([, p]) => p && p.seq));
    const all = [];
    for (let q = from; q <= to; q += 1) all.push(q);
    check(`${label}: recovered === true`, cust.socket.recovered === true);
    check(`${label}: no snapshot`, !got.some(([n]) => n === "snapshot"), pairs.join(" "));
    check(`${label}: every missed seq ${from}..${to} arrives`, all.every((q) => seen.has(q)), pairs.join(" "));
    check(`${label}: nothing twice`, new Set(pairs).size === pairs.length, pairs.join(" "));
    check(`${label}: each event's offset is its seq`,
      (cust.offsets || []).slice(-got.length).every((o, i) => o === String(got[i][1].seq)));
    check(`${label}: in order`, got.every(([, p], i) => i === 0 || p.seq >= got[i - 1][1].seq), pairs.join(" "));
    const text = JSON.stringify(got);
    check(`${label}: nothing of another customer`, !text.includes(otherName)
      && !got.some(([n, p]) => n === "visit.updated" && p.visit && p.visit.id === otherId), short(text));
  };
  // 1. The transport drops; the client reconnects by itself.
  let before = cust.maxSeq();
  let m = cust.mark();
  const back = new Promise((resolve) => cust.socket.once("connect", resolve));
  const gone = new Promise((resolve) => cust.socket.once("disconnect", resolve));
  cust.socket.io.engine.close();
  await gone;
  const other = await visit(otherName);
  const otherId = other.visit && other.visit.id;
  await visit(`${otherName} 2`);
  await Promise.race([back, new Promise((r) => setTimeout(r, TIMEOUT))]);
  let last = seqs[seqs.length - 1];
  await cust.waitFor((n, p) => p.seq === last, m);
  missed("recovery after a short disconnect", m, before + 1, last, otherId);

  // 2. Across a restart of the hub (.ci/clients.sh restarts it on request).
  const dir = process.env.SPA_RESTART_DIR;
  if (!dir) {
    console.log("skip recovery across a restart: SPA_RESTART_DIR is not set");
    return;
  }
  const fs = await import("node:fs");
  const path = await import("node:path");
  before = cust.maxSeq();
  m = cust.mark();
  cust.socket.disconnect();
  await visit(`${otherName} 3`);
  await visit(`${otherName} 4`);
  last = seqs[seqs.length - 1];
  fs.writeFileSync(path.join(dir, "restart"), "");
  const deadline = Date.now() + 60_000;
  while (!fs.existsSync(path.join(dir, "restarted")) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
  }
  check("recovery: the hub was restarted", fs.existsSync(path.join(dir, "restarted")));
  const reconnected = await cust.connect();
  check("recovery: reconnects after the restart", reconnected);
  await cust.waitFor((n, p) => p.seq === last, m);
  missed("recovery across a hub restart", m, before + 1, last, otherId);
}

// --- the book: booked → checked in → called at its time before an earlier
// walk-in → paid; a walk-in skipped because of a booking; a customer
// cancelling through their booking link before and after the cut-off.
// The hub runs with SPA_TIMEZONE=UTC and SPA_BOOKING_GRID_MIN=1 here, so a
// booking can start within the next minute or two.
async function book(admin, peers, room, service, seqs) {
  const day = (ms) => new Date(ms).toISOString().slice(0, 10);
  const local = (ms) => new Date(ms).toISOString().slice(0, 16);
  const m0 = admin.mark();
  await admin.call("sync");
  const snap0 = await snapshotOf(admin, m0);
  const now = snap0 ? snap0.server_time : Date.now();
  const offset = now - Date.now(); // the hub's clock minus ours
  const therapists = [];
  for (const name of [`Booked Bea ${RUN}`, `Walk-in Will ${RUN}`]) {
    const d = okAck("staff.create (book)", await admin.call("staff.create", { name, role: "therapist", pin: "97531" }), seqs);
    const id = d.staff && d.staff.id;
    therapists.push(id);
    okAck("therapist.clock_in (book)", await admin.call("therapist.clock_in", { therapist_id: id }), seqs);
    for (const offset of [0, 1, 3]) {
      okAck(`schedule.set ${name} +${offset}d`, await admin.call("schedule.set", {
        therapist_id: id, date: day(now + offset * 86400000), start: "00:00", end: "23:59" }), seqs);
    }
  }
  const [bea, will] = therapists;
  const r2 = okAck("room.create (book)", await admin.call("room.create", { name: `Book room ${RUN}` }), seqs).room;
  // A booking for Bea in our room, starting in about two minutes (shifts
  // end at 23:59: late in the UTC day, the part that waits for it is skipped).
  const startMs = Math.ceil((now + 90000) / 60000) * 60000;
  const endOfDay = Date.parse(day(startMs) + "T23:59:00Z");
  if (startMs + service.duration_min * 60000 > endOfDay) {
    console.log("skip the booked-time part of the book: it would end after the shifts' 23:59");
    return;
  }
  let d = okAck("booking.create", await admin.call("booking.create", {
    start: local(startMs), service_ids: [service.id], therapist_id: bea, room_id: room.id,
    customer_name: `Booker Bo ${RUN}`, phone: `+1777${RUN}`, request_id: `node-${RUN}` }), seqs);
  const booking = d.booking || {};
  check("booking.create: number B-…, the link /b/…", /^B-\d{3}$/.test(booking.number || "") &&
    typeof d.customer_url === "string" && d.customer_url.startsWith("/b/"), short(d));
  // A walk-in now: Bea is kept for her booking, Will takes it, and the ack says why.
  d = okAck("visit.create walk-in", await admin.call("visit.create", { customer_name: `Walker ${RUN}`, service_ids: [service.id] }), seqs);
  const walk1 = d.visit.id;
  d = okAck("visit.call walk-in", await admin.call("visit.call", { visit_id: walk1, room_id: r2.id }), seqs);
  check("visit.call: the walk-in does not go to Bea, who is booked",
    d.visit && isInt(d.visit.therapist_id) && d.visit.therapist_id !== bea, short(d));
  errorAck("visit.call naming Bea for a 60-min walk-in", await admin.call("visit.call", { visit_id: walk1, therapist_id: bea }), "conflict");
  // An earlier walk-in waits; the booked customer arrives and is checked in.
  d = okAck("visit.create earlier walk-in", await admin.call("visit.create", { customer_name: `Early ${RUN}`, service_ids: [service.id] }), seqs);
  const early = d.visit.id;
  d = okAck("booking.check_in", await admin.call("booking.check_in", { booking_id: booking.id }), seqs);
  const bookedVisit = d.visit && d.visit.id;
  check("booking.check_in: a visit asking for Bea", d.visit && d.visit.requested_therapist_id === bea, short(d));
  // At the booked time, "call next" takes the booked visit before the earlier walk-in.
  const wait = Math.max(0, startMs - (Date.now() + offset) + 1500);
  await new Promise((r) => setTimeout(r, wait));
  d = okAck("visit.call next at the booked time", await admin.call("visit.call", {}), seqs);
  check("visit.call {}: the booked visit, before the earlier walk-in, with Bea in the booked room",
    d.visit && d.visit.id === bookedVisit && d.visit.therapist_id === bea && d.visit.room_id === room.id, short(d));
  okAck("visit.start booked", await admin.call("visit.start", { visit_id: bookedVisit }), seqs);
  okAck("visit.finish booked", await admin.call("visit.finish", { visit_id: bookedVisit }), seqs);
  await admin.call("drawer.open", { float_cents: 0 });
  d = okAck("visit.checkout booked", await admin.call("visit.checkout", {
    visit_id: bookedVisit, request_id: `pay-${RUN}`, payments: [{ method: "card", amount_cents: service.price_cents }] }), seqs);
  const reportAck = await admin.call("report.day", {});
  const report = (reportAck && reportAck.ok && reportAck.data.report) || {};
  // A check-in counts on the day it is made: the evening before, when the
  // booking is just after midnight.
  const checkInAck = day(startMs) === day(now) ? reportAck : await admin.call("report.day", { date: day(now) });
  const checkInReport = (checkInAck && checkInAck.ok && checkInAck.data.report) || {};
  check("report.day: booked revenue and the booking counted",
    report.booked_revenue_cents >= service.price_cents && checkInReport.bookings && checkInReport.bookings.checked_in >= 1,
    short(report));
  okAck("visit.leave early walk-in", await admin.call("visit.leave", { visit_id: early, reason: "test over" }), seqs);

  // The customer's link: cancel three days ahead (before the 24 h cut-off) …
  d = okAck("booking.create ahead", await admin.call("booking.create", {
    start: `${day(now + 3 * 86400000)}T12:00`, service_ids: [service.id],
    customer_name: `Later Lou ${RUN}`, phone: "+1 555 0199" }), seqs);
  const lou = new Peer("booking customer", d.customer_token ?? "");
  peers.push(lou);
  must(check("booking customer: connects with the link's token", await lou.connect()), "booking customer");
  let snap = await snapshotOf(lou);
  check("booking customer: snapshot holds their booking only",
    snap && snap.booking && snap.booking.id === d.booking.id && !JSON.stringify(snap).includes("Booker Bo"), short(snap));
  errorAck("booking customer cancels another booking", await lou.call("booking.cancel", { booking_id: booking.id }), "forbidden");
  const cancelled = await lou.call("booking.cancel", { booking_id: d.booking.id });
  check("booking customer: cancels their own booking before the cut-off",
    cancelled && cancelled.ok === true && cancelled.data.booking.state === "cancelled", short(cancelled));
  // … and not within it.
  let soon = Math.ceil((Date.now() + offset + 75 * 60000) / 60000) * 60000;
  if (day(soon) === day(now) && soon + service.duration_min * 60000 > Date.parse(day(now) + "T23:59:00Z")) {
    soon = Date.parse(day(now + 86400000) + "T00:00:00Z"); // not across midnight
  }
  d = okAck("booking.create soon", await admin.call("booking.create", {
    start: local(soon), service_ids: [service.id], therapist_id: will,
    customer_name: `Soon Sue ${RUN}`, phone: "+1 555 0198" }), seqs);
  const sue = new Peer("late canceller", d.customer_token ?? "");
  peers.push(sue);
  must(check("late canceller: connects", await sue.connect()), "late canceller");
  const late = await sue.call("booking.cancel", { booking_id: d.booking.id });
  check("late canceller: refused within the cut-off, told to call", late && late.ok === false &&
    late.error.code === "conflict" && /call the spa/.test(late.error.message), short(late));
  const [pageStatus, pageBody] = await http("GET", d.customer_url);
  check("GET /b/<token> serves the booking page", pageStatus === 200 && pageBody.includes("booking.js"), short(pageBody, 120));
}

// Over HTTPS: the handshake verifies against the generated CA only; a
// client that trusts only the public CAs is refused; staff pages refuse
// plain HTTP (redirect) while a customer's ticket page stays reachable.
async function tlsChecks() {
  check("the URL is https", URL_.startsWith("https://"), URL_);
  const trusting = io(URL_, { transports: ["websocket"], reconnection: false, forceNew: true, timeout: TIMEOUT, auth: { token: ADMIN_TOKEN }, ca: CA, rejectUnauthorized: true });
  const snap = await new Promise((resolve) => {
    const t = setTimeout(() => resolve(null), TIMEOUT);
    trusting.once("snapshot", (s) => { clearTimeout(t); resolve(s); });
    trusting.once("connect_error", (e) => { clearTimeout(t); resolve(e); });
  });
  check("wss: socket.io-client with the generated CA connects and gets its snapshot", snap && typeof snap.seq === "number", short(snap && snap.message ? snap.message : snap));
  trusting.disconnect();
  const stranger = io(URL_, { transports: ["websocket"], reconnection: false, forceNew: true, timeout: TIMEOUT, auth: { token: ADMIN_TOKEN }, ca: [], rejectUnauthorized: true });
  const refused = await new Promise((resolve) => {
    const t = setTimeout(() => resolve("timeout"), TIMEOUT);
    stranger.once("connect", () => { clearTimeout(t); resolve("connected"); });
    stranger.once("connect_error", (e) => { clearTimeout(t); resolve(e); });
  });
  check("wss: a client without the CA is refused by its TLS check", refused instanceof Error, short(String(refused)));
  stranger.disconnect();
  const plain = URL_.replace(/^https:/, "http:");
  const admin = await fetch(plain + "/admin", { redirect: "manual", signal: AbortSignal.timeout(TIMEOUT) });
  check("plain http /admin redirects to https", admin.status === 308 && (admin.headers.get("location") || "").startsWith("https://"), String(admin.status));
  const ticket = await fetch(plain + "/t/not-a-real-token", { signal: AbortSignal.timeout(TIMEOUT) });
  check("plain http /t/<token> still serves the ticket page", ticket.status === 200, String(ticket.status));
}

async function main() {
  if (!URL_ || !ADMIN_TOKEN) {
    console.error("set SPA_URL (or pass the URL) and SPA_ADMIN_TOKEN");
    return 2;
  }
  const version = createRequire(import.meta.url)("socket.io-client/package.json").version;
  console.log(`socket.io-client ${version} against ${URL_} (run ${RUN})`);
  const peers = [];
  try {
    if (CA) await tlsChecks();
    await run(peers);
  } catch (err) {
    check("test ran to the end without an exception", false, err && err.stack ? err.stack : String(err));
  } finally {
    for (const p of peers) p.close();
    if (process.env.SPA_CLIENT_DEBUG) {
      for (const p of peers) for (const [n, x] of p.events) console.log(`  [${p.label}] ${n} ${short(x, 300)}`);
    }
  }
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}

process.exitCode = await main();
