// resultgate audit trail (compliance, admin) and token management (admin).
// Uses the helpers of app.js ($, api, el, show, status, fmtTime, refusal,
// token). Every value is inserted as text; filters go in the API's query
// string (hold IDs and patient keys are opaque hashes, never PHI).
"use strict";

const rgAdmin = (() => {
  const PAGE = 100;
  let offset = 0;
  let asked = 0; // the latest audit request: an older answer arriving later is dropped

  const KINDS = {
    decision: "Decision", transition: "Release or state change", override: "Override", consent: "Consent",
    determination: "Determination", reevaluation: "Re-evaluation", access: "Access", denied: "Refused request",
    dead: "Dead letter", replay: "Replay", discard: "Discard",
  };

  function auditQuery() {
    const q = new URLSearchParams();
    const set = (k, id) => { const v = $(id).value.trim(); if (v) q.set(k, v); };
    set("hold", "a-hold"); set("patient", "a-patient"); set("actor", "a-actor"); set("kind", "a-kind");
    set("since", "a-since"); set("until", "a-until");
    return q;
  }

  // what says an event in a line: action, state change, path, reason.
  function what(e) {
    const parts = [];
    if (e.action) parts.push(e.action);
    if (e.from || e.to) parts.push((e.from || "new") + " → " + e.to);
    if (e.path) parts.push("(" + e.path + ")");
    if (e.bases && e.bases.length) parts.push("bases: " + e.bases.map((b) => b.kind).join(", "));
    if (e.reason) parts.push("— " + e.reason);
    return parts.join(" ");
  }

  async function audit(at) {
    show("audit-section");
    offset = at || 0;
    const q = auditQuery();
    q.set("limit", String(PAGE));
    q.set("offset", String(offset));
    const tbody = $("audit-list").querySelector("tbody");
    tbody.replaceChildren();
    const mine = ++asked;
    let data;
    try {
      data = await api("GET", "/api/audit?" + q.toString());
    } catch (e) {
      if (mine === asked) status("Could not read the audit trail: " + refusal(e), true);
      return;
    }
    if (mine !== asked) return;
    status("");
    for (const e of data.events) {
      const tr = el("tr");
      const cell = (label, v) => { const td = el("td", v); td.dataset.label = label; tr.append(td); };
      cell("When", fmtTime(e.at));
      cell("Kind", KINDS[e.kind] || e.kind);
      cell("Hold", e.hold_id || "");
      cell("Patient key", e.patient_key || "");
      cell("Actor", (e.actor || "resultgate") + (e.role ? " (" + e.role + ")" : ""));
      cell("What", what(e));
      tbody.append(tr);
    }
    const shown = data.events.length;
    $("audit-count").textContent = shown === 0 ? "No events match." :
      "Events " + (offset + 1) + "–" + (offset + shown) + " of " + data.total + (data.truncated ? " (the read stopped at its limit: narrow the dates to see the rest)" : "") + ".";
    $("audit-prev").hidden = offset === 0;
    $("audit-next").hidden = data.next_offset === undefined;
  }

  async function auditCSV() {
    let res;
    try {
      res = await fetch("/api/audit.csv?" + auditQuery().toString(), { headers: { "Authorization": "Bearer " + token() } });
    } catch (e) {
      status("Could not download the CSV: " + e.message, true);
      return;
    }
    if (!res.ok) { status("Could not download the CSV (" + res.status + ").", true); return; }
    const url = URL.createObjectURL(await res.blob());
    const a = el("a");
    a.href = url;
    a.download = "resultgate-audit.csv";
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
    status("Audit trail downloaded as CSV.");
  }

  const ROLES = { clinician: "Clinician", oncall: "On-call", compliance: "Compliance", admin: "Administrator" };

  async function tokens() {
    show("tokens-section");
    const tbody = $("token-list").querySelector("tbody");
    tbody.replaceChildren();
    let data;
    try {
      data = await api("GET", "/api/tokens");
    } catch (e) {
      status("Could not list the tokens: " + refusal(e), true);
      return;
    }
    for (const t of data.tokens) {
      const tr = el("tr");
      const cell = (label, v) => {
        const td = el("td");
        if (label) td.dataset.label = label;
        if (v instanceof Node) td.append(v); else td.textContent = v;
        tr.append(td);
      };
      cell("Name", t.name);
      cell("Role", ROLES[t.role] || t.role);
      cell("Provider ID", t.provider_id || "");
      cell("Issued", fmtTime(t.created));
      cell("Status", t.disabled ? "Revoked" : "Active");
      if (t.disabled) {
        cell("", "");
      } else {
        const b = el("button", "Revoke", "secondary");
        b.type = "button";
        b.setAttribute("aria-label", "Revoke the token of " + t.name);
        b.addEventListener("click", () => revoke(t.name));
        cell("", b);
      }
      tbody.append(tr);
    }
  }

  async function issue() {
    const name = $("t-name").value.trim();
    if (!name) { status("A token needs a name.", true); $("t-name").focus(); return; }
    let res;
    try {
      res = await api("POST", "/api/tokens", { name, role: $("t-role").value, provider_id: $("t-provider").value.trim() });
    } catch (e) {
      status("Token not issued: " + (e.words || e.message), true);
      return;
    }
    $("token-new-name").textContent = res.name + " (" + (ROLES[res.role] || res.role) + ")";
    $("token-new-value").value = res.token;
    $("token-new").hidden = false;
    $("t-name").value = "";
    $("t-provider").value = "";
    status("Token issued for " + res.name + ".");
    await tokens();
    $("token-new-title").focus();
  }

  // forget removes the shown token from the page: it is shown once.
  function forget() {
    $("token-new-value").value = "";
    $("token-new").hidden = true;
    $("t-name").focus();
  }

  async function revoke(name) {
    try {
      await api("DELETE", "/api/tokens/" + encodeURIComponent(name));
    } catch (e) {
      status("Not revoked: " + refusal(e), true);
      return;
    }
    status("The token of " + name + " is revoked.");
    await tokens();
  }

  function stop() {
    $("audit-list").querySelector("tbody").replaceChildren();
    $("token-list").querySelector("tbody").replaceChildren();
    $("token-new-value").value = "";
    $("token-new").hidden = true;
    $("audit-count").textContent = "";
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("audit-open").addEventListener("click", () => audit(0));
    $("audit-form").addEventListener("submit", (e) => { e.preventDefault(); audit(0); });
    $("audit-csv").addEventListener("click", auditCSV);
    $("audit-prev").addEventListener("click", () => audit(Math.max(0, offset - PAGE)));
    $("audit-next").addEventListener("click", () => audit(offset + PAGE));
    $("tokens-open").addEventListener("click", tokens);
    $("token-form").addEventListener("submit", (e) => { e.preventDefault(); issue(); });
    $("token-new-done").addEventListener("click", forget);
  });

  return { audit, tokens, stop };
})();
