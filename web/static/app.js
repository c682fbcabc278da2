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
    // message: the refusal in words (no IDs, no UTC), when the API has them.
    err.words = data && data.message ? data.message : "";
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

// fmtTime formats an instant in the site's zone (policy.time_zone, from
// /api/me), naming the zone, as the server's texts do: "Mon 7 Dec, 14:05 EST".
function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const opts = { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZoneName: "short" };
  if (me && me.time_zone) opts.timeZone = me.time_zone;
  try {
    const p = {};
    for (const x of new Intl.DateTimeFormat("en-US", opts).formatToParts(d)) p[x.type] = x.value;
    return p.weekday + " " + p.day + " " + p.month + ", " + p.hour + ":" + p.minute + " " + p.timeZoneName;
  } catch (e) {
    return d.toISOString();
  }
}

// refusal returns what to show for a refused request: the API's words when
// it has them, else a sentence for the status (never the raw server text).
function refusal(e) {
  if (e.words) return e.words;
  switch (e.status) {
    case 403: return "You may not do this.";
    case 404: return "It no longer exists.";
    case 409: return "It cannot be done now; reload and look again.";
    case 422: return "Something required is missing.";
  }
  return "Something went wrong (" + (e.status || "no answer") + "). Please try again.";
}

const SECTIONS = ["signin", "worklist", "detail", "report-section", "audit-section", "tokens-section"];

function show(section) {
  for (const id of SECTIONS) $(id).hidden = id !== section;
  const nav = { worklist: "worklist-open", detail: "worklist-open", "report-section": "report-open", "audit-section": "audit-open", "tokens-section": "tokens-open" };
  for (const b of ["worklist-open", "audit-open", "tokens-open", "report-open"]) {
    if (nav[section] === b) $(b).setAttribute("aria-current", "page"); else $(b).removeAttribute("aria-current");
  }
}

// pages shows the navigation for me's role.
function pages() {
  const r = me ? me.role : "";
  $("pages").hidden = !me;
  $("worklist-open").hidden = !(r === "clinician" || r === "oncall" || r === "compliance");
  $("audit-open").hidden = !(r === "compliance" || r === "admin");
  $("tokens-open").hidden = r !== "admin";
  for (const z of document.querySelectorAll(".zone-name, #zone-name")) z.textContent = me && me.time_zone ? me.time_zone : "UTC";
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
  pages();
  status("");
  const claims = method === "oidc" ? jwtClaims(tok) : null;
  if (claims && typeof claims.exp === "number") {
    // setTimeout holds at most 2^31-1 ms; an ID token lives minutes to hours.
    const ms = Math.min(claims.exp * 1000 - Date.now(), 2147483647);
    expiryTimer = setTimeout(() => endSession("Your sign-in has expired. Please sign in again."), Math.max(ms, 0));
  }
  if (rgReport.start(me)) return;
  await loadWorklist();
  // A notification's link names one hold (#hold=<id>): open it once signed
  // in. It was kept across the identity provider's redirect.
  const linked = sessionStorage.getItem("rg-open-hold");
  if (linked) {
    sessionStorage.removeItem("rg-open-hold");
    await openHold(linked);
  }
}

// rememberLinkedHold keeps the hold a notification's link names (#hold=<id>)
// until sign-in has finished, and clears it from the address bar.
function rememberLinkedHold() {
  const m = /^#hold=([^&]+)$/.exec(location.hash);
  if (!m) return;
  sessionStorage.setItem("rg-open-hold", decodeURIComponent(m[1]));
  history.replaceState(null, "", location.pathname + location.search);
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
  rgAdmin.stop();
  pages();
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

// worklistQuery builds GET /api/holds from the filters.
function worklistQuery() {
  const q = new URLSearchParams({ limit: "200" });
  if ($("f-basis").value) q.set("basis", $("f-basis").value);
  if ($("f-tag").value) q.set("tag", $("f-tag").value);
  if ($("f-due").value) q.set("deadline_before", new Date(Date.now() + Number($("f-due").value) * 3600e3).toISOString());
  return q;
}

// knownTags fills the tag filter with the tags seen so far.
const knownTags = new Set();
function addTagOptions(holds) {
  let added = false;
  for (const h of holds) for (const t of h.tags) if (!knownTags.has(t)) { knownTags.add(t); added = true; }
  if (!added) return;
  const sel = $("f-tag"), keep = sel.value;
  sel.replaceChildren(el("option", "Any tag"));
  sel.firstChild.value = "";
  for (const t of [...knownTags].sort()) { const o = el("option", t); o.value = t; sel.append(o); }
  sel.value = keep;
}

let worklistAsked = 0;

async function loadWorklist() {
  show("worklist");
  loadTriage();
  const tbody = $("holds").querySelector("tbody");
  tbody.replaceChildren();
  const mine = ++worklistAsked;
  let data;
  try {
    data = await api("GET", "/api/holds?" + worklistQuery().toString());
  } catch (e) {
    if (mine === worklistAsked) status("Could not load the worklist: " + refusal(e), true);
    return;
  }
  if (mine !== worklistAsked) return; // a newer request (filters, refresh) answers instead
  addTagOptions(data.holds);
  $("empty").hidden = data.holds.length > 0;
  for (const h of data.holds) {
    const tr = document.createElement("tr");
    const cell = (label, content) => {
      const td = el("td");
      if (label) td.dataset.label = label;
      if (content instanceof Node) td.append(content); else td.textContent = content;
      tr.append(td);
    };
    const pt = el("span");
    const p = h.patient || {};
    pt.append(el("strong", p.name || "Patient not readable"));
    const sub = [p.id ? "MRN " + p.id : "", p.born ? "born " + p.born : ""].filter(Boolean).join(" · ");
    if (sub) pt.append(el("span", sub, "sub"));
    cell("Patient", pt);
    cell("Test", h.test || h.control_id || "");
    const tags = el("span");
    for (const t of h.tags) tags.append(el("span", t, "tag " + t));
    cell("Tags", tags);
    const why = el("ul", null, "plain");
    for (const b of h.basis_text || []) why.append(el("li", b));
    cell("Why held", why);
    cell("Deadline", h.deadline_text);
    cell("Time left", el("span", h.left, h.left === "due" ? "late" : ""));
    const open = el("button", "Open", "link");
    open.type = "button";
    open.setAttribute("aria-label", "Open " + (h.test || "held result") + (p.name ? " for " + p.name : ""));
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
    status("Discard refused: " + refusal(e), true);
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

const STATES = { held: "Held", released: "Released to the patient portal", superseded: "Replaced by a correction", withdrawn: "Withdrawn by the sender" };
const PATHS = {
  acknowledged: "released by a clinician", override: "on-call override", deadline: "its deadline passed",
  "patient-revoked": "the patient changed their request", correction: "a correction from the sender",
  reevaluated: "no lawful basis was left", "patient-delay-ended": "the delay the patient asked for ended",
};

async function openHold(id) {
  let h;
  try {
    h = await api("GET", "/api/holds/" + encodeURIComponent(id));
  } catch (e) {
    status("Could not open the held result: " + refusal(e), true);
    return;
  }
  current = h;
  status("");
  show("detail");
  const held = h.state === "held";
  $("detail-title").textContent = held ? "Held result" : h.state === "released" ? "Released result" : "Closed result";
  $("bases-title").textContent = held ? "Why it is held" : "Why it was held";
  const facts = $("facts");
  facts.replaceChildren();
  const fact = (dl, k, v) => { if (v) { dl.append(el("dt", k), el("dd", v)); } };
  const r = h.result || {};
  const p = r.patient || {};
  fact(facts, "Patient", [p.name, p.id ? "MRN " + p.id : ""].filter(Boolean).join(" — "));
  fact(facts, "Born", p.born || p.dob);
  fact(facts, "Test", (r.orders || []).map((o) => o.service).filter(Boolean).join(", "));
  fact(facts, "Message", r.control_id || (h.inbound && h.inbound.control_id));
  fact(facts, "Ordering provider", h.provider_id);
  fact(facts, "State", STATES[h.state] || h.state);
  if (held) fact(facts, "Deadline", h.deadline_text + " (" + h.left + (h.left === "due" ? ")" : " left)"));
  fact(facts, "Notification", h.notify === "quiet" ? "quiet (no push message)" : h.notify);
  if (held) fact(facts, "Note for the patient", h.note);

  const rel = h.release;
  $("released").hidden = !rel;
  const rf = $("released-facts");
  rf.replaceChildren();
  if (rel) {
    $("released-title").textContent = h.state === "released" ? "Released to the patient portal" : "Closed";
    fact(rf, "By", rel.actor + (rel.role ? " (" + rel.role + ")" : ""));
    fact(rf, "When", h.released_text || fmtTime(rel.at));
    fact(rf, "How", PATHS[rel.path] || rel.path);
    fact(rf, "Reason", rel.reason);
    fact(rf, "Note sent to the patient", rel.note || "none");
  }

  const bases = $("bases");
  bases.replaceChildren();
  for (const b of h.basis_text || []) bases.append(el("li", b));

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

  // What this user may do now, as the server's release rule says.
  const a = h.actions || {};
  $("release-form").hidden = !a.release;
  $("override-form").hidden = !a.override;
  $("override-confirm").hidden = true;
  // A released result says so in the box above; the reason is for the rest.
  $("action-why").hidden = !a.why || h.state === "released";
  $("action-why").textContent = a.why || "";
  $("note").value = "";
  $("release-reason").value = "";
  $("override-reason").value = "";
  $("override-note").value = "";

  const hist = $("history");
  hist.replaceChildren();
  for (const t of h.transitions || []) {
    hist.append(el("li", fmtTime(t.at) + ": " + (STATES[t.to] || t.to) + (t.path && PATHS[t.path] ? " (" + PATHS[t.path] + ")" : "") +
      " by " + (t.actor || "resultgate") + (t.role ? " (" + t.role + ")" : "") + (t.reason ? " — " + t.reason : "")));
  }
  $("detail-title").focus();
}

async function act(kind, body) {
  try {
    await api("POST", "/api/holds/" + encodeURIComponent(current.id) + "/" + kind, body);
  } catch (e) {
    status((kind === "release" ? "Not released: " : "Not overridden: ") + refusal(e), true);
    return;
  }
  await openHold(current.id);
  status(kind === "release" ? "Released to the patient portal." : "Overridden and released to the patient portal.");
}

// override asks, when the hold rests on a statute or a clinician's
// determination, for a confirmation that names it before releasing.
function override() {
  const reason = $("override-reason").value.trim();
  if (!reason) { status("An override needs a reason.", true); $("override-reason").focus(); return; }
  const body = { reason, note_to_patient: $("override-note").value.trim() };
  const confirm = (current.actions && current.actions.confirm) || [];
  if (confirm.length === 0) { act("override", body); return; }
  const list = $("confirm-list");
  list.replaceChildren();
  for (const c of confirm) list.append(el("li", c));
  pendingOverride = body;
  $("override-confirm").hidden = false;
  $("confirm-title").focus();
}
let pendingOverride = null;

document.addEventListener("DOMContentLoaded", () => {
  $("detail-title").tabIndex = -1;
  $("signin-form").addEventListener("submit", (e) => { e.preventDefault(); signIn($("token").value.trim(), "token"); });
  $("oidc-signin").addEventListener("click", startOIDC);
  $("signout").addEventListener("click", userSignOut);
  $("refresh").addEventListener("click", loadWorklist);
  $("back").addEventListener("click", loadWorklist);
  $("worklist-open").addEventListener("click", loadWorklist);
  $("filters").addEventListener("submit", (e) => { e.preventDefault(); loadWorklist(); });
  $("confirm-yes").addEventListener("click", () => {
    const body = pendingOverride;
    pendingOverride = null;
    $("override-confirm").hidden = true;
    if (body) act("override", body);
  });
  $("confirm-no").addEventListener("click", () => {
    pendingOverride = null;
    $("override-confirm").hidden = true;
    status("Override cancelled: the result stays held.");
    $("override-reason").focus();
  });
  $("release-form").addEventListener("submit", (e) => {
    e.preventDefault();
    act("release", { reason: $("release-reason").value.trim(), note_to_patient: $("note").value.trim() });
  });
  $("override-form").addEventListener("submit", (e) => {
    e.preventDefault();
    override();
  });
  rememberLinkedHold();
  loadAuthConfig().then(() => {
    if (callback) return finishOIDC(callback);
    if (token()) return signIn(token(), sessionStorage.getItem("rg-method") || "token");
    show("signin");
  });
});
