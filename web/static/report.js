// resultgate compliance report: GET /api/report rendered as tables and two SVG
// charts built with DOM APIs (no HTML parsing, no inline styles: the page's CSP
// allows neither). Uses the helpers of app.js ($, api, el, show, status, token).
"use strict";

const rgReport = (() => {
  const SVG = "http://www.w3.org/2000/svg";
  let last = null;

  function svgEl(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function pct(v) { return v === null || v === undefined ? "–" : (v * 100).toFixed(1) + "%"; }

  function dur(secs) {
    if (secs === null || secs === undefined) return "–";
    const d = Math.floor(secs / 86400), h = Math.floor(secs / 3600) % 24, m = Math.floor(secs / 60) % 60;
    if (d > 0) return d + "d " + h + "h";
    if (h > 0) return h + "h " + m + "m";
    if (m > 0) return m + "m";
    return secs + "s";
  }

  function cell(v) { return v === null || v === undefined ? "n/a" : String(v); }

  // barChart draws horizontal bars: rows [{label, values:[{v, cls, text}]}].
  function barChart(title, desc, rows, legend) {
    const labelW = 200, barW = 340, rowH = 20, gap = 10, valueW = 140;
    const perRow = Math.max(1, ...rows.map((r) => r.values.length));
    const groupH = perRow * rowH + gap;
    const legendH = legend ? 22 : 0;
    const height = legendH + Math.max(1, rows.length) * groupH + 4;
    const width = labelW + barW + valueW;
    const svg = svgEl("svg", { viewBox: "0 0 " + width + " " + height, role: "img", class: "rep-chart" });
    const id = "rep-" + Math.random().toString(36).slice(2);
    const t = svgEl("title", { id: id + "-t" }, title);
    const d = svgEl("desc", { id: id + "-d" }, desc);
    svg.setAttribute("aria-labelledby", id + "-t " + id + "-d");
    svg.append(t, d);
    if (legend) {
      let x = labelW;
      for (const l of legend) {
        svg.append(svgEl("rect", { x, y: 4, width: 12, height: 12, class: l.cls }));
        svg.append(svgEl("text", { x: x + 16, y: 14, class: "rep-axis" }, l.text));
        x += 120;
      }
    }
    const max = Math.max(1, ...rows.flatMap((r) => r.values.map((v) => v.v || 0)));
    rows.forEach((r, i) => {
      const y0 = legendH + i * groupH;
      svg.append(svgEl("text", { x: labelW - 6, y: y0 + rowH - 5, "text-anchor": "end", class: "rep-label" }, r.label));
      r.values.forEach((v, j) => {
        const y = y0 + j * rowH;
        const w = v.v ? Math.max(2, (v.v / max) * barW) : 0;
        svg.append(svgEl("rect", { x: labelW, y: y + 2, width: w, height: rowH - 4, class: v.cls }));
        svg.append(svgEl("text", { x: labelW + w + 4, y: y + rowH - 5, class: "rep-value" }, v.text));
      });
    });
    if (rows.length === 0) svg.append(svgEl("text", { x: labelW, y: legendH + rowH, class: "rep-axis" }, "Nothing in this period."));
    const fig = el("figure", null, "rep-figure");
    fig.append(el("figcaption", title), svg);
    return fig;
  }

  function table(caption, head, rows) {
    const wrap = el("div", null, "table-wrap");
    const tb = el("table");
    tb.append(el("caption", caption));
    const thead = el("thead"), tr = el("tr");
    for (const h of head) { const th = el("th", h); th.scope = "col"; tr.append(th); }
    thead.append(tr);
    const tbody = el("tbody");
    for (const r of rows) {
      const row = el("tr");
      r.forEach((v, i) => { const td = el("td", v); td.dataset.label = head[i]; row.append(td); });
      tbody.append(row);
    }
    if (rows.length === 0) {
      const row = el("tr"), td = el("td", "None.");
      td.colSpan = head.length;
      row.append(td);
      tbody.append(row);
    }
    tb.append(thead, tbody);
    wrap.append(tb);
    return wrap;
  }

  function render(r) {
    const out = $("rep-output");
    out.replaceChildren();
    const t = r.totals;
    out.append(el("p", "Period " + fmtTime(r.period.since) + " to " + fmtTime(r.period.until) +
      " (generated " + fmtTime(r.period.generated_at) + ")."));
    out.append(el("p", "Results decided: " + cell(t.results) + ". Holds: " + t.holds + " (hold rate " + pct(t.hold_rate) +
      "). Released: " + t.released + ", still held: " + t.still_held + ", closed by the sender: " + t.closed + "."));

    const charts = el("div", null, "rep-charts");
    charts.append(barChart("Holds by basis",
      "Number of holds resting on each lawful basis; a hold with several bases counts under each.",
      r.by_basis.map((b) => ({ label: (b.label || b.basis) + (b.compliance_risk && b.basis !== "organisational-policy" ? " (risk)" : ""),
        values: [{ v: b.holds, cls: b.compliance_risk ? "rep-bar-risk" : "rep-bar", text: b.holds + " (" + pct(b.share) + ")" }] }))));
    charts.append(barChart("Time from finalisation to release by basis",
      "Median and 90th percentile time from the result's finalisation (OBR-22) to its release, per basis.",
      r.time_to_release.by_basis.filter((b) => b.count > 0).map((b) => ({ label: (b.label || b.basis) + " (n=" + b.count + ")",
        values: [{ v: b.median_seconds, cls: "rep-bar", text: "median " + dur(b.median_seconds) },
          { v: b.p90_seconds, cls: "rep-bar-p90", text: "p90 " + dur(b.p90_seconds) }] })),
      [{ cls: "rep-bar", text: "median" }, { cls: "rep-bar-p90", text: "90th percentile" }]));
    out.append(charts);

    out.append(table("Holds by basis", ["Basis", "Holds", "Share", "Compliance risk"],
      r.by_basis.map((b) => [b.label || b.basis, String(b.holds), pct(b.share), b.compliance_risk ? "yes" : ""])));
    out.append(table("Holds by tag", ["Tag", "Holds", "Share"], r.by_tag.map((x) => [x.tag, String(x.holds), pct(x.share)])));
    const tt = r.time_to_release;
    const st = (label, s) => [label, String(s.count), dur(s.median_seconds), dur(s.p90_seconds), dur(s.max_seconds)];
    out.append(table("Time to release (" + tt.clock + ")" + (tt.fallback_holds ? "; " + tt.fallback_holds + " timed from hold creation (no OBR-22)" : ""),
      ["By", "Released", "Median", "P90", "Max"],
      [st("all", tt.overall)].concat(tt.by_basis.map((b) => st(b.label || b.basis, b)), tt.by_outcome.map((o) => st("ended by " + o.outcome, o)))));
    out.append(table("How holds ended", ["Outcome", "Holds", "Share"], r.outcomes.map((o) => [o.outcome, String(o.holds), pct(o.share)])));
    out.append(table("On-call overrides", ["When", "Who", "Reason", "Hold"],
      r.overrides.map((o) => [fmtTime(o.at), o.actor, o.reason, o.hold_id])));
    out.append(table("Compliance risk: holds under organisational policy (" + r.compliance_risk.holds + ")", ["Written policy", "Holds"],
      r.compliance_risk.citations.map((c) => [c.citation, String(c.holds)])));
    if (r.compliance_risk.hold_ids.length) out.append(el("p", "Hold IDs: " + r.compliance_risk.hold_ids.join(" ")));

    out.append(el("h3", "Consistency by patient group"));
    out.append(el("p", "Groups under " + r.min_cell + " are shown as <" + r.min_cell + "; * marks a count withheld so a small one cannot be worked out from the total.", "hint"));
    const dims = [["Age band at result time", r.breakdown.age_band], ["Sex (PID-8)", r.breakdown.sex], ["Preferred language (PID-15)", r.breakdown.language]];
    for (const [name, groups] of dims) {
      out.append(table(name, ["Group", "Results", "Holds", "Hold rate", "Released", "Median", "P90", "Max"],
        groups.map((g) => {
          const s = g.time_to_release || {};
          return [g.group, cell(g.results), cell(g.holds), pct(g.hold_rate), cell(g.released), dur(s.median_seconds), dur(s.p90_seconds), dur(s.max_seconds)];
        })));
    }
    if (r.notes.length) {
      const ul = el("ul", null, "rep-notes");
      for (const n of r.notes) ul.append(el("li", n));
      out.append(ul);
    }
  }

  function query() {
    const q = new URLSearchParams();
    if ($("rep-since").value) q.set("since", $("rep-since").value);
    if ($("rep-until").value) q.set("until", $("rep-until").value);
    return q;
  }

  async function load() {
    show("report-section");
    status("Loading the report…");
    try {
      last = await api("GET", "/api/report?" + query().toString());
    } catch (e) {
      status("Could not load the report: " + e.message, true);
      return;
    }
    render(last);
    status("");
    $("rep-title").focus();
  }

  async function downloadCSV() {
    const q = query();
    q.set("format", "csv");
    let res;
    try {
      res = await fetch("/api/report?" + q.toString(), { headers: { "Authorization": "Bearer " + token() } });
    } catch (e) {
      status("Could not download the CSV: " + e.message, true);
      return;
    }
    if (!res.ok) { status("Could not download the CSV: " + res.statusText, true); return; }
    const url = URL.createObjectURL(await res.blob());
    const a = el("a");
    a.href = url;
    a.download = "resultgate-report.csv";
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  // start shows the report button to compliance and admin users; it returns
  // true when the report is the user's start page (admin has no worklist).
  function start(me) {
    const may = me.role === "compliance" || me.role === "admin";
    $("report-open").hidden = !may;
    if (me.role === "admin") { load(); return true; }
    return false;
  }

  function stop() {
    $("report-open").hidden = true;
    $("rep-output").replaceChildren();
    last = null;
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("rep-title").tabIndex = -1;
    $("report-open").addEventListener("click", load);
    $("rep-form").addEventListener("submit", (e) => { e.preventDefault(); load(); });
    $("rep-csv").addEventListener("click", downloadCSV);
  });

  return { start, stop, load, render };
})();
