// The sign-in page: pick a role; staff sign in by name and PIN; the admin may
// paste the admin token; a stored token goes straight to its page.
(function () {
  "use strict";
  const { $, $$ } = Spa;
  const params = new URLSearchParams(location.search);
  // Where to go after signing in: only one of the hub's own pages. The value
  // is resolved as the browser would (a backslash, a tab or a newline can
  // turn "/…" into "//other-host/…") and must stay on this origin.
  const PAGES = ["/admin", "/cashier", "/therapist", "/monitor"];
  const safeNext = (raw) => {
    if (!raw || /[\\\u0000-\u001f\u007f]/.test(raw) || !raw.startsWith("/") || raw.startsWith("//")) return null;
    let url;
    try {
      url = new URL(raw, location.origin);
    } catch (_) {
      return null;
    }
    if (url.origin !== location.origin || !PAGES.includes(url.pathname)) return null;
    return url.pathname;
  };
  const next = safeNext(params.get("next"));
  const notice = $("#notice");
  const say = (text, error) => {
    notice.hidden = !text;
    notice.textContent = text || "";
    notice.classList.toggle("error", !!error);
  };
  if (params.has("expired")) say("Your sign-in is no longer valid (it expired, was signed out or the hub refused it). Please sign in again.", true);

  // A stored sign-in goes straight to its page.
  const stored = Spa.store.staff();
  if (stored && !params.has("expired") && !params.has("switch")) {
    location.replace(next || Spa.pageFor(stored.role));
    return;
  }
  if (!stored && Spa.store.monitor() && !params.has("switch")) {
    location.replace("/monitor");
    return;
  }

  let role = "therapist";
  const pick = (r) => {
    role = r;
    for (const b of $$("[data-role]")) b.classList.toggle("on", b.dataset.role === r);
    $("#login-card").hidden = r === "monitor";
    $("#admin-card").hidden = r !== "admin";
    $("#monitor-card").hidden = r !== "monitor";
    $("#login-title").textContent = { therapist: "Therapist sign-in", cashier: "Front desk sign-in", admin: "Admin sign-in (name and PIN)" }[r] || "Staff sign-in";
    $("#monitor-go").hidden = !Spa.store.monitor();
  };
  for (const b of $$("[data-role]")) b.addEventListener("click", () => pick(b.dataset.role));
  pick(next === "/admin" ? "admin" : next === "/cashier" ? "cashier" : next === "/monitor" ? "monitor" : "therapist");

  const go = (r) => {
    const wanted = next;
    location.href = wanted && (wanted === Spa.pageFor(r) || (r === "admin" && wanted === "/cashier")) ? wanted : Spa.pageFor(r);
  };

  $("#login").addEventListener("submit", async (e) => {
    e.preventDefault();
    const btn = $("#login-btn");
    const ack = $("#login-ack");
    const name = $("#name").value.trim();
    const pin = $("#pin").value;
    if (!name || !pin) {
      ack.textContent = "Enter your name and PIN.";
      ack.className = "ack error";
      return;
    }
    btn.disabled = true;
    ack.textContent = "…";
    ack.className = "ack";
    let res, body;
    try {
      res = await fetch("/api/login", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ name, pin }) });
      body = await res.json().catch(() => ({}));
    } catch (err) {
      res = null;
    }
    btn.disabled = false;
    if (!res) {
      ack.textContent = "The hub cannot be reached. Check the network and try again.";
      ack.className = "ack error";
      return;
    }
    if (!res.ok || !body.token) {
      ack.textContent = (body && body.error && body.error.message) || "Sign-in refused (" + res.status + ").";
      ack.className = "ack error";
      $("#pin").value = "";
      return;
    }
    Spa.store.setStaff({ token: body.token, role: body.role, staff_id: body.staff_id, name, expires_at: body.expires_at, kind: "session" });
    ack.textContent = "";
    go(body.role);
  });

  $("#admin-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const token = $("#admin-token").value.trim();
    const ack = $("#admin-ack");
    if (token.length < 16) {
      ack.textContent = "The admin token has at least 16 characters.";
      ack.className = "ack error";
      return;
    }
    // Checked by the hub when the admin page connects; refused → back here.
    Spa.store.setStaff({ token, role: "admin", name: "Admin", kind: "admin-token" });
    location.href = "/admin";
  });

  fetch("/healthz").then((r) => r.json()).then((h) => {
    $("#version").textContent = "spa-hub " + h.version;
  }).catch(() => {});
})();
