// Head office page: the sites and a day's figures, from /hq/api and
// /hq/reports with the token kept for this tab only.
"use strict";
const $ = (id) => document.getElementById(id);
const money = (c) => (c / 100).toFixed(2);
let token = sessionStorage.getItem("hq-token") || "";

async function get(path) {
  const r = await fetch(path, { headers: { Authorization: "Bearer " + token } });
  if (r.status === 401) throw new Error("wrong token");
  if (!r.ok) throw new Error(path + ": " + r.status);
  return r;
}

function cells(row, values) {
  const tr = document.createElement("tr");
  for (const v of values) {
    const td = document.createElement("td");
    td.textContent = v;
    tr.appendChild(td);
  }
  row.appendChild(tr);
  return tr;
}

async function loadSites() {
  const { sites } = await (await get("/hq/api/sites")).json();
  const body = $("sites").tBodies[0];
  body.textContent = "";
  const select = $("site");
  const chosen = select.value;
  select.length = 1;
  for (const s of sites) {
    const tr = cells(body, [s.site, s.live ? "live" : "not heard from", new Date(s.last_event_at).toLocaleString(),
      s.lag_events, money(s.today.revenue_cents), money(s.today.tips_cents), s.today.visits_created]);
    tr.children[1].className = s.live ? "live" : "down";
    select.add(new Option(s.site, s.site));
  }
  select.value = chosen;
}

async function loadDay() {
  const q = "date=" + $("date").value + ($("site").value ? "&site=" + encodeURIComponent($("site").value) : "");
  const r = await (await get("/hq/reports/day.json?" + q)).json();
  const body = $("day").tBodies[0];
  body.textContent = "";
  const line = (name, s) => cells(body, [name, money(s.revenue_cents), money(s.tips_cents), s.no_shows,
    money(s.drawer_variance.cash), s.visits_created]);
  if (r.sites) {
    for (const s of r.sites) line(s.site, s.summary);
    line("all sites", r.total);
  } else {
    const variance = r.drawers.reduce((a, d) => a + d.variance.cash, 0);
    line($("site").value, { revenue_cents: r.revenue_cents, tips_cents: r.tips.cents,
      no_shows: r.bookings.no_shows, drawer_variance: { cash: variance }, visits_created: r.visits_created });
  }
}

async function downloadCsv() {
  const q = "date=" + $("date").value + ($("site").value ? "&site=" + encodeURIComponent($("site").value) : "");
  const blob = await (await get("/hq/reports/day.csv?" + q)).blob();
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = "day-" + $("date").value + ($("site").value ? "-" + $("site").value : "") + ".csv";
  a.click();
  URL.revokeObjectURL(a.href);
}

async function open() {
  try {
    await loadSites();
    $("error").textContent = "";
    $("login").hidden = true;
    $("main").hidden = false;
    await loadDay();
  } catch (e) {
    $("error").textContent = e.message;
  }
}

$("login").addEventListener("submit", (e) => {
  e.preventDefault();
  token = $("token").value;
  sessionStorage.setItem("hq-token", token);
  open();
});
$("dayform").addEventListener("submit", (e) => { e.preventDefault(); loadDay().catch((x) => { $("error").textContent = x.message; }); });
$("csv").addEventListener("click", () => downloadCsv().catch((x) => { $("error").textContent = x.message; }));
$("date").value = new Date().toLocaleDateString("en-CA");
if (token) open();
setInterval(() => { if (!$("main").hidden) loadSites().catch(() => {}); }, 10000);
