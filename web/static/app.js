// resultgate worklist. Plain DOM, no framework: every value is inserted as text
// (never as HTML), the token lives in this tab's sessionStorage, and no
// identifier ever goes into the URL.
//
// Sign-in is with a pasted token, or, when the server has OIDC configured,
// with the organisation's identity provider: Authorization Code with PKCE
// (S256) as a public client, state and nonce checked, the code removed from
// the address bar as soon as it is read; the ID token is then kept and used
// exactly like a pasted token.
"use strict";

const $ = (id) => document.getElementById(id);
let me = null;
let current = null;
let authConfig = {};     // GET /api/auth/config: {oidc: {...}} or {}
let expiryTimer = null;  // signs out when an OIDC ID token expires
let pinned = false;      // a sign-out notice stays until the user acts

const CALLBACK_PATH = "/oidc/callback";
// The answer from the identity provider, read (and removed from the address
// bar) before anything else runs.
const callback = readCallback();

function token() { return sessionStorage.getItem("rg-token") || ""; }

function status(msg, isError, force) {
  if (pinned && !force) return;
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
    if (res.status === 401 && me) {
      // Signed in a moment ago, refused now: the token expired or was revoked.
      endSession("Your sign-in has expired or is no longer accepted. Please sign in again.");
    }
    throw err;
  }
  return data;
}

// base64url without padding (RFC 4648 §5), as PKCE and JWTs use it.
function b64url(bytes) {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomString() {
  const a = new Uint8Array(32);
  crypto.getRandomValues(a);
  return b64url(a);
}

// jwtClaims decodes a JWT's payload without checking it: the server verifies
// the signature on every request; the page only reads nonce, exp and names.
function jwtClaims(tok) {
  try {
    const p = tok.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(p), (c) => c.charCodeAt(0))));
  } catch (e) {
    return null;
  }
}

function oidc() { return authConfig && authConfig.oidc ? authConfig.oidc : null; }

function redirectURI() { return location.origin + (oidc() ? oidc().redirect_path : CALLBACK_PATH); }

async function loadAuthConfig() {
  try {
    const res = await fetch("/api/auth/config", { cache: "no-store" });
    authConfig = res.ok ? await res.json() : {};
  } catch (e) {
    authConfig = {};
  }
  $("oidc").hidden = !oidc();
}

// startOIDC sends the browser to the identity provider's authorization
// endpoint with a fresh PKCE verifier, state and nonce kept in this tab.
async function startOIDC() {
  pinned = false;
  const o = oidc();
  if (!o) return;
  if (!window.isSecureContext || !crypto.subtle) {
    status("Sign-in with your organisation needs this page to be served over HTTPS.", true);
    return;
  }
  const pending = { verifier: randomString(), state: randomString(), nonce: randomString() };
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(pending.verifier));
  sessionStorage.setItem("rg-oidc", JSON.stringify(pending));
  const u = new URL(o.authorization_endpoint);
  const q = {
    response_type: "code", client_id: o.client_id, redirect_uri: redirectURI(), scope: o.scopes.join(" "),
    state: pending.state, nonce: pending.nonce, code_challenge: b64url(new Uint8Array(digest)), code_challenge_method: "S256",
  };
  for (const [k, v] of Object.entries(q)) u.searchParams.set(k, v);
  status("Going to your organisation's sign-in page…");
  location.assign(u.toString());
}

// readCallback takes the identity provider's answer out of the URL and
// replaces the address with "/" so that the code stays out of the history.
function readCallback() {
  if (location.pathname !== CALLBACK_PATH) return null;
  const q = new URLSearchParams(location.search);
  history.replaceState(null, "", "/");
  return { code: q.get("code"), state: q.get("state"), error: q.get("error"), errorDescription: q.get("error_description") };
}

// finishOIDC redeems the code at the token endpoint with the PKCE verifier,
// checks state and nonce, and signs in with the ID token.
async function finishOIDC(cb) {
  const pending = JSON.parse(sessionStorage.getItem("rg-oidc") || "null");
  sessionStorage.removeItem("rg-oidc"); // one attempt per verifier
  show("signin");
  const fail = (msg) => status("Sign-in with your organisation failed: " + msg, true);
  const o = oidc();
  if (cb.error) return fail(cb.errorDescription || cb.error);
  if (!o) return fail("it is not configured on this server.");
  if (!pending || !cb.state || cb.state !== pending.state) return fail("the answer does not match a sign-in started in this tab. Please try again.");
  if (!cb.code) return fail("the identity provider sent no authorization code.");
  status("Signing in…");
  let data = null;
  try {
    const res = await fetch(o.token_endpoint, {
      method: "POST", credentials: "omit", cache: "no-store",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "authorization_code", code: cb.code, redirect_uri: redirectURI(), client_id: o.client_id, code_verifier: pending.verifier }),
    });
    try { data = await res.json(); } catch (e) { data = null; }
    if (!res.ok) return fail((data && (data.error_description || data.error)) || ("the token endpoint answered " + res.status));
  } catch (e) {
    return fail("the identity provider's token endpoint could not be reached (" + e.message + ").");
  }
  const idt = data && data.id_token;
  const claims = idt ? jwtClaims(idt) : null;
  if (!claims) return fail("the identity provider returned no ID token.");
  if (claims.nonce !== pending.nonce) return fail("the ID token does not belong to this sign-in (nonce). Please try again.");
  await signIn(idt, "oidc");
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

async function signIn(tok, method) {
  pinned = false;
  sessionStorage.setItem("rg-token", tok);
  sessionStorage.setItem("rg-method", method);
  try {
    me = await api("GET", "/api/me");
  } catch (e) {
    sessionStorage.removeItem("rg-token");
    sessionStorage.removeItem("rg-method");
    show("signin");
    if (method !== "oidc") {
      status(e.status === 401 ? "That token was not accepted." : "Sign-in failed: " + e.message, true);
    } else if (e.status === 401 && /expired/i.test(e.message)) {
      status("Your sign-in has expired. Please sign in again.", true);
    } else if (e.status === 401) {
      status("Your organisation signed you in, but resultgate did not accept it: " + e.message +
        ". Ask your administrator for a resultgate role (clinician, oncall, compliance or admin).", true);
    } else {
      status("Sign-in failed: " + e.message, true);
    }
    return;
  }
  $("who").textContent = me.name + " (" + me.role + ")";
  $("signout").hidden = false;
  status("");
  const claims = method === "oidc" ? jwtClaims(tok) : null;
  if (claims && typeof claims.exp === "number") {
    // setTimeout holds at most 2^31-1 ms; an ID token lives minutes to hours.
    const ms = Math.min(claims.exp * 1000 - Date.now(), 2147483647);
    expiryTimer = setTimeout(() => endSession("Your sign-in has expired. Please sign in again."), Math.max(ms, 0));
  }
  if (rgReport.start(me)) return;
  await loadWorklist();
}

function signOut() {
  sessionStorage.removeItem("rg-token");
  sessionStorage.removeItem("rg-method");
  sessionStorage.removeItem("rg-oidc");
  if (expiryTimer) { clearTimeout(expiryTimer); expiryTimer = null; }
  me = null; current = null;
  $("who").textContent = "";
  $("signout").hidden = true;
  rgReport.stop();
  $("token").value = "";
  pinned = false;
  status("");
  show("signin");
  $("token").focus();
}

// userSignOut is the Sign out button. After an OIDC sign-in it also ends the
// session at the identity provider when the provider offers RP-initiated
// logout (OpenID Connect RP-Initiated Logout 1.0): without that, the next
// "Sign in with your organisation" would sign the same person in again at once.
// The provider sends the browser back to this page, which then shows sign-in.
function userSignOut() {
  const o = oidc();
  const idt = sessionStorage.getItem("rg-method") === "oidc" ? token() : "";
  signOut();
  if (!idt || !o || !o.end_session_endpoint) return;
  const u = new URL(o.end_session_endpoint);
  const q = { id_token_hint: idt, client_id: o.client_id, post_logout_redirect_uri: location.origin + (o.post_logout_path || "/") };
  for (const [k, v] of Object.entries(q)) u.searchParams.set(k, v);
  status("Signing you out of your organisation…");
  location.assign(u.toString());
}

// endSession signs out and keeps msg on screen until the user signs in again.
function endSession(msg) {
  signOut();
  status(msg, true, true);
  pinned = true;
}

async function loadWorklist() {
  show("worklist");
  loadTriage();
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

// loadTriage shows on-call (and administrators) the results that name no
// patient: dead letters with reason unattributed that nobody discarded yet.
async function loadTriage() {
  const box = $("triage");
  box.hidden = !(me && (me.role === "oncall" || me.role === "admin"));
  if (box.hidden) return;
  const tbody = $("triage-list").querySelector("tbody");
  tbody.replaceChildren();
  let recs;
  try {
    recs = await api("GET", "/api/triage");
  } catch (e) {
    status("Could not load the triage list: " + e.message, true);
    return;
  }
  $("triage-empty").hidden = recs.length > 0;
  for (const r of recs) {
    const tr = document.createElement("tr");
    const cell = (label, content) => {
      const td = el("td");
      td.dataset.label = label;
      if (content instanceof Node) td.append(content); else td.textContent = content;
      tr.append(td);
    };
    cell("Received", fmtTime(r.at));
    const from = [r.sending_application, r.sending_facility].filter(Boolean).join(" at ");
    cell("Message", "control ID " + (r.control_id || "?") + (from ? " from " + from : "") + " (dead letter " + r.seq + ")");
    cell("Problem", r.detail);
    const form = el("form", null, "inline");
    const reason = el("input");
    reason.type = "text";
    reason.maxLength = 500;
    reason.required = true;
    reason.placeholder = "Reason, e.g. resent with the MRN";
    reason.setAttribute("aria-label", "Reason for discarding dead letter " + r.seq);
    const btn = el("button", "Discard");
    btn.type = "submit";
    form.append(reason, btn);
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      discardTriage(r.seq, reason.value.trim());
    });
    cell("Discard", form);
    tbody.append(tr);
  }
}

async function discardTriage(seq, reason) {
  if (!reason) { status("A discard needs a reason.", true); return; }
  try {
    await api("POST", "/api/triage/" + encodeURIComponent(seq) + "/discard", { reason });
  } catch (e) {
    status("Discard refused: " + e.message, true);
    return;
  }
  status("Dead letter " + seq + " discarded.");
  await loadTriage();
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
  $("signin-form").addEventListener("submit", (e) => { e.preventDefault(); signIn($("token").value.trim(), "token"); });
  $("oidc-signin").addEventListener("click", startOIDC);
  $("signout").addEventListener("click", userSignOut);
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
  loadAuthConfig().then(() => {
    if (callback) return finishOIDC(callback);
    if (token()) return signIn(token(), sessionStorage.getItem("rg-method") || "token");
    show("signin");
  });
});
