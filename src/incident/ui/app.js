// kuzet operator page: open incidents by nearest deadline, live countdowns, actions, health.
// Plain DOM; everything from the API goes through textContent (evidence is attacker data).
"use strict";

const $ = (id) => document.getElementById(id);
const openDetails = new Set();
let lastEvents = null;

for (const [id, store] of [["actor", localStorage], ["token", sessionStorage]]) {
  const el = $(id);
  el.value = store.getItem("kuzet." + id) || "";
  el.addEventListener("change", () => { store.setItem("kuzet." + id, el.value); refresh(); });
}

function headers() {
  const h = {};
  const t = $("token").value.trim();
  if (t) h["Authorization"] = "Bearer " + t;
  return h;
}

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k.startsWith("data-")) e.setAttribute(k, v); else e[k] = v;
  }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(k == null ? "" : String(k)));
  return e;
}

/// The earliest deadline whose step is not done (null: none).
function nextDeadline(inc) {
  const open = inc.deadlines.filter((d) => !d.done_at);
  open.sort((a, b) => Date.parse(a.due) - Date.parse(b.due));
  return open[0] || null;
}

function fmtLeft(ms) {
  const s = Math.floor(Math.abs(ms) / 1000);
  const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60), x = s % 60;
  const hms = [h, m, x].map((n) => String(n).padStart(2, "0")).join(":");
  return (d ? d + "d " : "") + hms;
}

function tick() {
  const now = Date.now();
  for (const c of document.querySelectorAll(".countdown")) {
    const left = Number(c.dataset.due) - now;
    c.textContent = left >= 0 ? "in " + fmtLeft(left) : "overdue by " + fmtLeft(left);
    c.classList.toggle("overdue", left < 0);
    c.closest("article").classList.toggle("overdue", left < 0);
  }
}

function party(p) {
  const a = p.asset;
  if (!a) return p.value;
  const where = [a.organisation, a.department, a.floor && "floor " + a.floor, a.room && "room " + a.room].filter(Boolean).join(", ");
  const who = [a.responsible, a.contact].filter(Boolean).join(", ");
  return `${p.value} (${a.class || "no class"}) — ${where}${who ? "; responsible: " + who : ""}`;
}

/// The first affected object and its responsible person, for the summary line.
function owner(inc) {
  const p = inc.data_list.affected_objects.find((o) => o.asset) || inc.data_list.affected_objects[0];
  if (!p) return "";
  const a = p.asset;
  return el("span", { class: "owner" }, p.value + (a && a.responsible ? " — " + a.responsible + (a.contact ? " (" + a.contact + ")" : "") : ""));
}

function list(items) {
  const ul = el("ul");
  for (const i of items) ul.append(el("li", {}, i));
  return items.length ? ul : el("span", {}, "–");
}

async function act(id, verb, body) {
  const actor = $("actor").value.trim();
  if (!actor) { showError("Enter your name first: every change is recorded with its actor."); $("actor").focus(); return; }
  const r = await fetch(`/incidents/${encodeURIComponent(id)}/${verb}`, {
    method: "POST",
    headers: { ...headers(), "X-Kuzet-Actor": actor, "Content-Type": "application/json" },
    body: JSON.stringify(body || {}),
  });
  if (!r.ok) { showError(`${verb}: ${(await r.json().catch(() => ({}))).error || r.status}`); return; }
  showError("");
  await refresh();
}

function showError(msg) { $("error").hidden = !msg; $("error").textContent = msg; }

function render(incidents) {
  const box = $("incidents");
  box.replaceChildren();
  $("empty").hidden = incidents.length > 0;
  for (const inc of incidents) {
    const t = inc.data_list.incident_type;
    const next = nextDeadline(inc);
    const art = el("article", { "data-incident": inc.id, "data-status": inc.status });
    const actions = el("span", { class: "actions" });
    if (inc.status === "open") {
      actions.append(el("button", { class: "ack", onclick: () => act(inc.id, "ack", { step: "notify_owner" }) }, "Acknowledge notification"));
    }
    actions.append(
      el("button", { class: "resolve", onclick: () => act(inc.id, "resolve") }, "Resolve"),
      el("button", { class: "fp", onclick: () => act(inc.id, "false_positive") }, "False positive"),
    );
    art.append(el("div", { class: "row" },
      el("span", { class: "title" }, t.title),
      el("span", { class: "tag level-" + t.level }, t.level),
      el("span", { class: "tag" }, inc.object_class || "unknown object"),
      el("span", { class: "tag status" }, inc.status),
      el("span", {}, inc.organisation),
      owner(inc),
      next ? el("span", {}, next.step + " ", el("span", { class: "countdown", "data-due": String(Date.parse(next.due)) })) : el("span", {}, "no deadline pending"),
      actions));
    const det = el("details", { ontoggle: () => det.open ? openDetails.add(inc.id) : openDetails.delete(inc.id) });
    det.open = openDetails.has(inc.id);
    const dl = inc.data_list;
    const deadlines = el("table", {}, el("tr", {}, el("th", {}, "step"), el("th", {}, "due"), el("th", {}, "done"), el("th", {}, "escalated")));
    for (const d of inc.deadlines) deadlines.append(el("tr", {}, el("td", {}, d.step), el("td", {}, d.due), el("td", {}, d.done_at || "–"), el("td", {}, d.escalated_at || "–")));
    det.append(el("summary", {}, `Data list and evidence (${inc.alerts} alerts, ${inc.events} events, id ${inc.id})`),
      el("dl", {},
        el("dt", {}, "Detected"), el("dd", {}, dl.detected_at),
        el("dt", {}, "Events"), el("dd", {}, `${dl.first_event} … ${dl.last_event}`),
        el("dt", {}, "Tags"), el("dd", {}, t.tags.join(", ") || "–"),
        el("dt", {}, "Affected objects"), el("dd", {}, list(dl.affected_objects.map(party))),
        el("dt", {}, "Sources"), el("dd", {}, list(dl.sources.map(party))),
        el("dt", {}, "Accounts"), el("dd", {}, dl.accounts.join(", ") || "–"),
        el("dt", {}, "Recommendations"), el("dd", {}, list(dl.recommendations)),
        el("dt", {}, "Deadlines"), el("dd", {}, deadlines),
        el("dt", {}, "History"), el("dd", {}, list(inc.history.map((h) => `${h.at} ${h.actor}: ${h.action}${h.step ? " " + h.step : ""} (${h.from} → ${h.to})${h.note ? " — " + h.note : ""}`)))),
      el("pre", { class: "evidence" }, dl.evidence.map((e) => JSON.stringify(e)).join("\n") + (dl.evidence_dropped ? `\n… ${dl.evidence_dropped} more not kept` : "")));
    art.append(det);
    box.append(art);
  }
  tick();
}

async function refresh() {
  try {
    const lists = await Promise.all(["open", "notified"].map(async (s) => {
      const r = await fetch(`/incidents?status=${s}&limit=500`, { headers: headers() });
      if (!r.ok) throw new Error(r.status === 401 ? "the admin listener needs its token" : "incidents: HTTP " + r.status);
      return (await r.json()).incidents;
    }));
    const all = lists.flat();
    const key = (i) => { const d = nextDeadline(i); return d ? Date.parse(d.due) : Infinity; };
    all.sort((a, b) => key(a) - key(b));
    render(all);
    if (!$("error").textContent.startsWith("Enter")) showError("");
  } catch (e) {
    showError(String(e.message || e));
  }
}

function metric(text, name, labels) {
  let sum = 0, found = false;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name) || !(line[name.length] === " " || line[name.length] === "{")) continue;
    if (labels && !line.includes(labels)) continue;
    const v = Number(line.slice(line.lastIndexOf(" ") + 1));
    if (!Number.isNaN(v)) { sum += v; found = true; }
  }
  return found ? sum : null;
}

async function health() {
  try {
    const text = await (await fetch("/metrics")).text();
    const now = Date.now();
    const events = metric(text, "kuzet_events_total");
    if (lastEvents && events != null) $("h-rate").textContent = Math.max(0, (events - lastEvents.n) / ((now - lastEvents.t) / 1000)).toFixed(0);
    lastEvents = { n: events, t: now };
    const drops = ["kuzet_input_udp_dropped_queue_full_total", "kuzet_input_udp_dropped_kernel_total", "kuzet_input_oversize_dropped_total", "kuzet_sink_dropped_total"]
      .reduce((s, n) => s + (metric(text, n) || 0), 0);
    $("h-drops").textContent = drops;
    const ms = (v) => v == null ? "–" : (v * 1000).toFixed(1) + " ms";
    $("h-p99").textContent = ms(metric(text, "kuzet_ingest_latency_seconds", 'quantile="0.99"'));
    $("h-alert-p99").textContent = ms(metric(text, "kuzet_alert_latency_seconds", 'quantile="0.99"'));
    $("h-alerts").textContent = metric(text, "kuzet_alerts_total") ?? "–";
    const hits = [];
    for (const line of text.split("\n")) {
      const m = line.match(/^kuzet_alerts_by_rule_total\{.*title="((?:[^"\\]|\\.)*)".*\} (\d+)/);
      if (m) hits.push([m[1], Number(m[2])]);
    }
    hits.sort((a, b) => b[1] - a[1]);
    $("h-hits").textContent = hits.slice(0, 5).map(([t, n]) => `${t} ${n}`).join(" · ") || "none";
  } catch (e) {
    $("h-rate").textContent = "–";
  }
}

refresh();
health();
setInterval(tick, 1000);
setInterval(refresh, 3000);
setInterval(health, 5000);
