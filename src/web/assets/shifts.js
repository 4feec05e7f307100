// The admin's shift planner: a week at a time, therapists as rows and days
// as columns, each cell a start and an end (empty: off). "Save the week"
// sends one schedule.set per changed cell and shows what the hub refused
// (a shift that would leave a booking outside it names the booking).
(function () {
  "use strict";
  const { h, $, fill } = Spa;
  let therapists = [];
  let monday = null;
  const known = new Map(); // "id|date" → {start, end}

  const iso = (d) => d.getFullYear() + "-" + String(d.getMonth() + 1).padStart(2, "0") + "-" + String(d.getDate()).padStart(2, "0");
  function days() {
    const out = [];
    const d = new Date(monday + "T12:00:00");
    for (let i = 0; i < 7; i++) {
      out.push(iso(d));
      d.setDate(d.getDate() + 1);
    }
    return out;
  }
  function thisMonday() {
    const d = new Date();
    d.setDate(d.getDate() - ((d.getDay() + 6) % 7));
    return iso(d);
  }

  function render() {
    const table = $("#shifts");
    if (!table) return;
    $("#sh-week").value = monday;
    const ds = days();
    const head = h("tr", {}, h("th", { text: "Therapist" }), ds.map((d) => h("th", { text: new Date(d + "T12:00:00").toLocaleDateString(undefined, { weekday: "short", day: "numeric" }) })));
    const rows = therapists.map((t) => h("tr", {}, h("td", { text: t.name }), ds.map((d) => {
      const s = known.get(t.id + "|" + d) || {};
      const cell = (part, v) => h("input", { class: "sh-" + part, "data-id": t.id, "data-date": d, value: v || "", placeholder: part === "start" ? "09:00" : "17:00", size: 5, maxlength: 5, "aria-label": t.name + " " + d + " " + part });
      return h("td", { class: "sh-cell" }, cell("start", s.start), "–", cell("end", s.end));
    })));
    fill(table, h("thead", {}, head), h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { class: "empty", text: "No therapists yet." }))));
  }

  async function load() {
    const ds = days();
    for (const d of ds) {
      const ack = await Spa.send("booking.list", { date: d });
      if (!ack.ok) continue;
      for (const t of therapists) known.delete(t.id + "|" + d);
      for (const s of ack.data.shifts || []) known.set(s.therapist_id + "|" + d, { start: s.start, end: s.end });
    }
    render();
  }

  async function save() {
    const msgs = [];
    let sent = 0;
    for (const start of Spa.$$(".sh-start")) {
      const id = Number(start.dataset.id);
      const date = start.dataset.date;
      const end = start.parentElement.querySelector(".sh-end");
      const a = start.value.trim();
      const b = end.value.trim();
      const before = known.get(id + "|" + date) || {};
      if ((before.start || "") === a && (before.end || "") === b) continue;
      const args = a || b ? { therapist_id: id, date, start: a, end: b } : { therapist_id: id, date, off: true };
      const ack = await Spa.send("schedule.set", args);
      sent++;
      if (ack.ok) {
        if (args.off) known.delete(id + "|" + date);
        else known.set(id + "|" + date, { start: a, end: b });
      } else {
        msgs.push(date + ": " + ((ack.error && ack.error.message) || "refused"));
      }
    }
    $("#sh-ack").textContent = msgs.length ? msgs.join(" · ") : sent ? "Saved." : "Nothing changed.";
    $("#sh-ack").classList.toggle("error", msgs.length > 0);
  }

  Spa.Shifts = {
    init() {
      monday = thisMonday();
      $("#sh-week").addEventListener("change", (ev) => {
        const d = new Date((ev.target.value || thisMonday()) + "T12:00:00");
        d.setDate(d.getDate() - ((d.getDay() + 6) % 7));
        monday = iso(d);
        load();
      });
      $("#sh-save").addEventListener("click", save);
    },
    onStaff(list) {
      therapists = list.filter((s) => s.role === "therapist" && s.active !== false).sort((a, b) => a.name.localeCompare(b.name));
      if (monday) load();
    },
  };
})();
