// resultgate worklist. Plain DOM, no framework: every value is inserted as text
// (never as HTML), the token lives in this tab's sessionStorage, and no
// identifier ever goes into the URL.
"use strict";

const $ = (id) => document.getElementById(id);
let me = null;
let current = null;

function token() { return sessionStorage.getItem("rg-token") || ""; }

function status(msg, isError) {
  const s = $("status");
  s.textContent = msg || "";
  s.className = isError ? "error" : "";
}

async function api(method, path, body) {
  const opts = { method, headers: { "Authorization": "Bearer " + token() } };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const res = await fetch(path, opts);
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  if (!res.ok) {
    const reason = data && data.reason ? data.reason : res.statusText;
    const err = new Error(reason);
    err.status = res.status;
    throw err;
  }
  return data;
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

function show(section) {
  for (const id of ["signin", "worklist", "detail", "report-section"]) $(id).hidden = id !== section;
}

async function signIn(tok) {
  sessionStorage.setItem("rg-token", tok);
  try {
    me = await api("GET", "/api/me");
  } catch (e) {
    sessionStorage.removeItem("rg-token");
    status(e.status === 401 ? "That token was not accepted." : "Sign-in failed: " + e.message, true);
    return;
  }
  $("who").textContent = me.name + " (" + me.role + ")";
  $("signout").hidden = false;
  status("");
  if (rgReport.start(me)) return;
  await loadWorklist();
}

function signOut() {
  sessionStorage.removeItem("rg-token");
  me = null; current = null;
  $("who").textContent = "";
  $("signout").hidden = true;
  rgReport.stop();
  $("token").value = "";
  show("signin");
  $("token").focus();
}

async function loadWorklist() {
  show("worklist");
  const tbody = $("holds").querySelector("tbody");
  tbody.replaceChildren();
  let data;
  try {
    data = await api("GET", "/api/holds?limit=500");
  } catch (e) {
    status("Could not load the worklist: " + e.message, true);
    return;
  }
  $("empty").hidden = data.holds.length > 0;
  for (const h of data.holds) {
    const tr = document.createElement("tr");
    const cell = (label, content) => {
      const td = el("td");
      td.dataset.label = label;
      if (content instanceof Node) td.append(content); else td.textContent = content;
      tr.append(td);
    };
    cell("Deadline", fmtTime(h.deadline));
    const left = el("span", h.remaining === "0s" ? "due" : h.remaining, h.remaining === "0s" ? "late" : "");
    cell("Time left", left);
    const tags = el("span");
    for (const t of h.tags) tags.append(el("span", t, "tag " + t));
    cell("Tags", tags);
    cell("Basis", h.bases.join(", "));
    cell("Message", h.control_id || "");
    const open = el("button", "Open", "link");
    open.type = "button";
    open.setAttribute("aria-label", "Open held result " + (h.control_id || h.id));
    open.addEventListener("click", () => openHold(h.id));
    cell("", open);
    tbody.append(tr);
  }
}

// highlight appends text to parent with every match wrapped in <mark>.
function highlight(parent, text, matches) {
  const lower = text.toLowerCase();
  const spans = [];
  for (const m of matches) {
    if (!m) continue;
    let i = lower.indexOf(m.toLowerCase());
    while (i >= 0) {
      spans.push([i, i + m.length]);
      i = lower.indexOf(m.toLowerCase(), i + m.length);
    }
  }
  spans.sort((a, b) => a[0] - b[0]);
  let pos = 0;
  for (const [s, e] of spans) {
    if (s < pos) continue;
    parent.append(document.createTextNode(text.slice(pos, s)));
    parent.append(el("mark", text.slice(s, e)));
    pos = e;
  }
  parent.append(document.createTextNode(text.slice(pos)));
}

async function openHold(id) {
  let h;
  try {
    h = await api("GET", "/api/holds/" + encodeURIComponent(id));
  } catch (e) {
    status("Could not open the held result: " + e.message, true);
    return;
  }
  current = h;
  status("");
  show("detail");
  const facts = $("facts");
  facts.replaceChildren();
  const fact = (k, v) => { if (v) { facts.append(el("dt", k), el("dd", v)); } };
  const r = h.result || {};
  const p = r.patient || {};
  fact("Patient", [p.name, p.id].filter(Boolean).join(" — "));
  fact("Born", p.dob);
  fact("Message", r.control_id || (h.inbound && h.inbound.control_id));
  fact("Ordering provider", h.provider_id);
  fact("State", h.state);
  fact("Deadline", fmtTime(h.deadline) + (h.remaining ? " (" + h.remaining + " left)" : ""));
  fact("Notification", h.notify);
  fact("Note for the patient", h.note);

  const bases = $("bases");
  bases.replaceChildren();
  for (const b of h.bases || []) {
    let d = {};
    try { d = typeof b.detail === "string" ? JSON.parse(b.detail) : (b.detail || {}); } catch (e) { d = {}; }
    const parts = [b.kind];
    if (d.until) parts.push("until " + d.until);
    if (d.deadline) parts.push("deadline " + fmtTime(d.deadline));
    if (d.citation) parts.push(d.citation);
    if (d.compliance_risk) parts.push("COMPLIANCE RISK");
    bases.append(el("li", parts.join(" · ")));
  }

  // Evidence by segment occurrence, for highlighting in the report.
  const byOBX = {}, byOBR = {};
  const tags = $("tags");
  tags.replaceChildren();
  for (const t of h.tags || []) {
    const li = el("li");
    li.append(el("span", t.tag, "tag " + t.tag));
    const ul = el("ul");
    for (const ev of t.evidence || []) {
      ul.append(el("li", ev.segment + "(" + ev.occurrence + ") " + ev.field + ": “" + ev.match + "” — rule " + ev.rule));
      const map = ev.segment === "OBX" ? byOBX : ev.segment === "OBR" ? byOBR : null;
      if (map) (map[ev.occurrence] = map[ev.occurrence] || []).push(ev.match);
    }
    li.append(ul);
    tags.append(li);
  }

  const report = $("report");
  report.replaceChildren();
  for (const o of r.orders || []) {
    const h4 = el("h4");
    highlight(h4, o.service + (o.section ? " [" + o.section + "]" : "") + (o.status ? " — status " + o.status : ""), byOBR[o.occurrence] || []);
    report.append(h4);
    for (const n of o.notes || []) report.append(el("p", n, "obs"));
    for (const x of o.observations || []) {
      const div = el("div", null, "obs");
      div.append(el("strong", (x.name || x.code) + ": "));
      highlight(div, (x.values || []).join("\n") + (x.units ? " " + x.units : ""), byOBX[x.occurrence] || []);
      if (x.range) div.append(document.createTextNode(" (ref " + x.range + ")"));
      if (x.flags) div.append(document.createTextNode(" [" + x.flags + "]"));
      for (const n of x.notes || []) div.append(el("div", n));
      report.append(div);
    }
  }

  const open = h.state === "held";
  $("release-form").hidden = !(open && me.role === "clinician");
  $("override-form").hidden = !(open && me.role === "oncall");
  $("note").value = "";
  $("release-reason").value = "";
  $("override-reason").value = "";
  $("override-note").value = "";

  const hist = $("history");
  hist.replaceChildren();
  for (const t of h.transitions || []) {
    hist.append(el("li", fmtTime(t.at) + ": " + (t.from || "new") + " → " + t.to + " by " + (t.actor || "resultgate") +
      (t.role ? " (" + t.role + ")" : "") + (t.reason ? " — " + t.reason : "")));
  }
  $("detail-title").focus();
}

async function act(kind, body) {
  try {
    await api("POST", "/api/holds/" + encodeURIComponent(current.id) + "/" + kind, body);
  } catch (e) {
    status((kind === "release" ? "Release" : "Override") + " refused: " + e.message, true);
    return;
  }
  await openHold(current.id);
  status(kind === "release" ? "Released to the patient portal." : "Overridden and released to the patient portal.");
}

document.addEventListener("DOMContentLoaded", () => {
  $("detail-title").tabIndex = -1;
  $("signin-form").addEventListener("submit", (e) => { e.preventDefault(); signIn($("token").value.trim()); });
  $("signout").addEventListener("click", signOut);
  $("refresh").addEventListener("click", loadWorklist);
  $("back").addEventListener("click", loadWorklist);
  $("release-form").addEventListener("submit", (e) => {
    e.preventDefault();
    act("release", { reason: $("release-reason").value.trim(), note_to_patient: $("note").value.trim() });
  });
  $("override-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const reason = $("override-reason").value.trim();
    if (!reason) { status("An override needs a reason.", true); return; }
    act("override", { reason, note_to_patient: $("override-note").value.trim() });
  });
  if (token()) signIn(token()); else show("signin");
});
