package e2e

// Browser tests for issue 13 points 2-5: the worklist a clinician reads at a
// glance, actions that match the release rule, the released state, the
// override confirmation that names the statute, the compliance audit trail
// and the admin token page; the phone layout and keyboard use; and axe-core
// (the accessibility engine, from e2e/node_modules: cd e2e && npm ci) on every
// page with no serious or critical violation.
//
// go test -run 'TestWeb(Worklist|Texas|Release|Audit|Tokens)' -screenshots
// also writes the guides' screenshots (docs/guides/img, synthetic data only).

import (
	"context"
	"encoding/csv"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/hold"
	"github.com/resultgate/resultgate/router/holdview"
)

var screenshots = flag.Bool("screenshots", false, "write the guides' screenshots to ../docs/guides/img")

// axeSource is axe-core's browser build, installed by npm ci in e2e/.
func axeSource(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("node_modules", "axe-core", "axe.min.js"))
	testutil.Require(t, err == nil, "axe-core (cd e2e && npm ci)")
	return string(b)
}

// axeCheck runs axe-core on the page as it is now and fails the test for
// every serious or critical violation, naming the rule and the elements.
func axeCheck(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	// DevTools evaluation is not subject to the page's CSP (script-src 'self').
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](axeSource(t)+";true")); err != nil {
		t.Fatalf("%s: loading axe-core: %v", page, err)
	}
	const run = `axe.run(document, {resultTypes: ["violations"]}).then(r => JSON.stringify({
  checked: r.passes.length + r.violations.length + r.incomplete.length,
  bad: r.violations.filter(v => v.impact === "serious" || v.impact === "critical")
    .map(v => v.impact + " " + v.id + " (" + v.help + "): " + v.nodes.map(n => n.target.join(" ")).join(", "))}))`
	out, err := chromedp.Run(ctx, chromedp.Evaluate[string](run, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: axe.run: %v", page, err)
	}
	if !strings.Contains(out, `"checked":`) || strings.Contains(out, `"checked":0`) {
		t.Fatalf("%s: axe checked nothing: %s", page, out)
	}
	if !strings.Contains(out, `"bad":[]`) {
		t.Errorf("%s: axe-core serious/critical violations: %s", page, out)
	} else {
		t.Logf("%s: axe-core: no serious or critical violation (%s)", page, out)
	}
}

// shot writes the viewport as docs/guides/img/name.png at a desktop size
// when -screenshots is set, scrolled to the top or to the element sel, then
// restores the phone viewport.
func shot(t *testing.T, ctx context.Context, name, sel string) {
	t.Helper()
	if !*screenshots {
		return
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1100, 760)); err != nil {
		t.Fatal(err)
	}
	scroll := `window.scrollTo(0, 0); true`
	if sel != "" {
		scroll = fmt.Sprintf(`document.querySelector(%q).scrollIntoView({block: "start"}); true`, sel)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](scroll)); err != nil {
		t.Fatal(err)
	}
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("..", "docs", "guides", "img", name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844)); err != nil {
		t.Fatal(err)
	}
}

// signIn signs in to the page as who (a token of e) and waits for sel.
func signIn(t *testing.T, ctx context.Context, e *apiEnv, who, sel string) {
	t.Helper()
	if err := chromedp.Do(ctx,
		chromedp.Navigate(e.base+"/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), e.tokens[who]),
		chromedp.Click(chromedp.CSS(`#signin-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(sel)),
	); err != nil {
		st, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("status")))
		t.Fatalf("sign in as %s: %v (status %q)", who, err, st)
	}
}

// text returns the text of the element sel ("" when it has none).
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {}).innerText || ""`, sel)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// visible reports whether sel is rendered (not hidden by an ancestor).
func visible(t *testing.T, ctx context.Context, sel string) bool {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`(() => { const n = document.querySelector(%q); return !!n && !n.closest("[hidden]") && n.getClientRects().length > 0; })()`, sel)))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// column returns the texts of the worklist's (or table sel's) cells labelled label, row by row.
func column(t *testing.T, ctx context.Context, table, label string) []string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(
		`Array.from(document.querySelectorAll(%q)).map(td => td.innerText.trim()).join("\n\x1f")`, table+` tbody td[data-label="`+label+`"]`)))
	if err != nil {
		t.Fatal(err)
	}
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n\x1f")
}

// sendResult sends a pathology result for patient family^given, finalised
// (OBR-22) at fin, and returns its hold's ID once it is held.
func sendResult(t *testing.T, e *apiEnv, id, family, given string, fin time.Time) string {
	t.Helper()
	m := strings.ReplaceAll(string(msg(pathORU, id)), "||"+obr22Text+"||", "||"+fin.Format("20060102150405-0700")+"||")
	m = strings.Replace(m, "TESTPATIENT^E2E", family+"^"+given, 1)
	sendAll(t, e.app.MLLPAddr().String(), []byte(m))
	var holdID string
	testutil.Eventually(t, 15*time.Second, "hold for "+id, func() bool {
		hs, _ := e.app.Service().ListHolds(context.Background(), holdview.Filter{Provider: "D001"})
		for _, h := range hs {
			if h.Inbound.ControlID == id && h.State == hold.StateHeld {
				holdID = h.ID
				return true
			}
		}
		return false
	})
	return holdID
}

// texasEnv is a running resultgate under the Texas statute preset (Tex.
// Occ. Code § 159.0062: not released before the third day after
// finalisation, days counted in Central time; no earlier release by the
// provider), the site's zone New York, with one token per role.
func texasEnv(t *testing.T) *apiEnv {
	t.Helper()
	cfg, err := config.Parse([]byte(`
policy:
  time_zone: America/New_York
  jurisdiction: US-TX
  jurisdictions:
    US-TX:
      statute: US-TX-OCC-159.0062
`))
	if err != nil {
		t.Fatal(err)
	}
	base := testConfig(t, t.TempDir())
	cfg.DataDir, cfg.Durability, cfg.MLLP, cfg.HTTP, cfg.NATS = base.DataDir, base.Durability, base.MLLP, base.HTTP, base.NATS
	return newAPIEnvConfig(t, cfg)
}

var (
	leftPattern     = regexp.MustCompile(`^(\d+ d( \d+ h)?|\d+ h( \d+ min)?|\d+ min|under a minute)$`)
	deadlinePattern = regexp.MustCompile(`^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d{1,2} [A-Z][a-z]{2}, \d{2}:\d{2} E[SD]T$`)
)

// TestWebWorklist: each row shows the patient, the test, the tags, the basis
// in words, the deadline in the site's zone and the time left in words; rows
// come soonest deadline first; the filters narrow them; the phone layout
// prints no stray ": Open" label; axe-core finds nothing serious.
func TestWebWorklist(t *testing.T) {
	ctx := browser(t)
	e := newAPIEnv(t)
	now := time.Now()
	// Kentucky holds 72 h after finalisation: these fall due in about 71 h,
	// 2 h and 42 h, sent in that order.
	sendResult(t, e, "WL-A", "ALPHA", "ANNA", now.Add(-time.Hour))
	sendResult(t, e, "WL-B", "BRAVO", "BEN", now.Add(-70*time.Hour))
	sendResult(t, e, "WL-C", "CHARLIE", "CORA", now.Add(-30*time.Hour))

	if err := chromedp.Do(ctx, chromedp.Navigate(e.base+"/"), chromedp.WaitVisible(chromedp.ID("token"))); err != nil {
		t.Fatal(err)
	}
	axeCheck(t, ctx, "sign-in")
	signIn(t, ctx, e, "clinician", "#holds tbody tr")
	testutil.Eventually(t, 10*time.Second, "three rows", func() bool { return len(column(t, ctx, "#holds", "Patient")) == 3 })
	patients := column(t, ctx, "#holds", "Patient")
	for i, want := range []string{"BEN BRAVO", "CORA CHARLIE", "ANNA ALPHA"} {
		if !strings.HasPrefix(patients[i], want) || !strings.Contains(patients[i], "MRN MRN-E2E-WL-") || !strings.Contains(patients[i], "born 1 Jan 1970") {
			t.Errorf("row %d patient = %q, want %s with MRN and date of birth, soonest deadline first", i, patients[i], want)
		}
	}
	for i, s := range column(t, ctx, "#holds", "Test") {
		if s != "Comprehensive pathology report panel" {
			t.Errorf("row %d test = %q", i, s)
		}
	}
	for i, s := range column(t, ctx, "#holds", "Why held") {
		if !strings.HasPrefix(s, "Kentucky law (Ky. Rev. Stat. § 333.152(2)): held until ") || !strings.Contains(s, "unless you release it sooner") || strings.Contains(s, "state-law") {
			t.Errorf("row %d basis = %q, want it in words", i, s)
		}
	}
	for i, s := range column(t, ctx, "#holds", "Tags") {
		if !strings.Contains(s, "malignancy") {
			t.Errorf("row %d tags = %q", i, s)
		}
	}
	for i, s := range column(t, ctx, "#holds", "Deadline") {
		if !deadlinePattern.MatchString(s) {
			t.Errorf("row %d deadline = %q, want e.g. Thu 10 Dec, 09:00 EST", i, s)
		}
	}
	left := column(t, ctx, "#holds", "Time left")
	for i, s := range left {
		if !leftPattern.MatchString(s) {
			t.Errorf("row %d time left = %q, want e.g. 2 d 3 h", i, s)
		}
	}
	if len(left) == 3 && (!strings.HasPrefix(left[0], "1 h") || !strings.HasPrefix(left[1], "1 d 17 h") && !strings.HasPrefix(left[1], "1 d 18 h")) {
		t.Errorf("time left = %q, want about 2 h, 1 d 18 h, 2 d 23 h", left)
	}
	if z := text(t, ctx, "#zone-name"); z != "America/New_York" {
		t.Errorf("the page names the zone %q", z)
	}

	// The phone layout (390 px): labels before values, none before the Open
	// button, and the button fits the screen.
	stray, err := chromedp.Run(ctx, chromedp.Evaluate[string](`Array.from(document.querySelectorAll("#holds tbody td")).map(td => getComputedStyle(td, "::before").content).filter(c => c !== "none" && !/^"[A-Z][a-z]+( [a-z]+)?: "$/.test(c)).join("|")`))
	if err != nil || stray != "" {
		t.Errorf("cells with a stray label before them: %q %v", stray, err)
	}
	if p, err := chromedp.Run(ctx, chromedp.Evaluate[string](layoutProblems+`(["#holds tbody tr button", "#f-basis", "#f-due"])`)); err != nil || p != "" {
		t.Errorf("phone layout: %s %v", p, err)
	}
	axeCheck(t, ctx, "worklist")
	shot(t, ctx, "worklist", "")

	// Filters: due within 4 hours keeps BRAVO; a patient request none; the
	// tag filter offers the rows' tags.
	apply := func(basis, tag, due string) {
		t.Helper()
		if err := chromedp.Do(ctx,
			chromedp.SetValue(chromedp.ID("f-basis"), basis),
			chromedp.SetValue(chromedp.ID("f-tag"), tag),
			chromedp.SetValue(chromedp.ID("f-due"), due),
			chromedp.Click(chromedp.CSS(`#filters button[type="submit"]`)),
		); err != nil {
			t.Fatal(err)
		}
	}
	apply("", "", "4")
	testutil.Eventually(t, 10*time.Second, "due within 4 hours", func() bool {
		p := column(t, ctx, "#holds", "Patient")
		return len(p) == 1 && strings.HasPrefix(p[0], "BEN BRAVO")
	})
	apply("patient-request", "", "")
	testutil.Eventually(t, 10*time.Second, "no patient-request holds", func() bool {
		return len(column(t, ctx, "#holds", "Patient")) == 0 && visible(t, ctx, "#empty")
	})
	opts := text(t, ctx, "#f-tag")
	if !strings.Contains(opts, "malignancy") || !strings.Contains(opts, "pathology") {
		t.Errorf("tag filter offers %q", opts)
	}
	apply("state-law", "malignancy", "168")
	testutil.Eventually(t, 10*time.Second, "state-law, malignancy, due within 7 days", func() bool {
		return len(column(t, ctx, "#holds", "Patient")) == 3
	})

	// A sender's flag on two observations is one reason, with the sender's
	// detail, in words.
	sendAll(t, e.app.MLLPAddr().String(), []byte(senderFlagORU))
	apply("sender-flag", "", "")
	testutil.Eventually(t, 15*time.Second, "the sender-flag hold", func() bool {
		p := column(t, ctx, "#holds", "Patient")
		return len(p) == 1 && strings.HasPrefix(p[0], "DANA DELTA")
	})
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#holds tbody td[data-label="Why held"] li').length`))
	why := column(t, ctx, "#holds", "Why held")
	if err != nil || n != 1 || !strings.HasPrefix(why[0], "Sender withheld it: SWTH: withheld until physician release (at the latest ") {
		t.Errorf("sender-flag reasons (%d, %v): %q", n, err, why)
	}
}

// senderFlagORU is a synthetic glucose result whose two observations the
// sender flags SWTH (withhold until physician release, OBX-26).
const senderFlagORU = "MSH|^~\\&|LIS|CHEMLAB|PORTAL|GENHOSP|20261201090000||ORU^R01^ORU_R01|SWTH-1|P|2.5.1\r" +
	"PID|1||MRN-E2E-SW1^^^GENHOSP^MR||DELTA^DANA||19650505|F\r" +
	"ORC|RE|PL-SW1|FL-SW1||CM||||20261201080000|||D001^DOCTOR^DELTA\r" +
	"OBR|1|PL-SW1|FL-SW1|2345-7^Glucose^LN|||20261201070000|||||||||D001^DOCTOR^DELTA||||||20261201085500||CH|F\r" +
	"OBX|1|NM|2345-7^Glucose^LN||250|mg/dL|70-99|H|||F|||||||||||||||SWTH\r" +
	"OBX|2|NM|2345-7^Glucose^LN||260|mg/dL|70-99|H|||F|||||||||||||||SWTH\r"

// TestWebTexasHoldReasonAndOverride: a clinician sees no Release button on a
// Texas not-before hold but the reason and when, in words and Central time;
// the API's refusal says the same; on-call's override asks for a
// confirmation naming the statute, Cancel keeps the hold, Yes releases it and
// the page shows who, when, how and the note sent.
func TestWebTexasHoldReasonAndOverride(t *testing.T) {
	ctx := browser(t)
	e := texasEnv(t)
	id := sendResult(t, e, "TX-1", "TEXAS", "TOM", time.Now().Add(-time.Hour))

	signIn(t, ctx, e, "clinician", "#holds tbody tr")
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#holds tbody tr button`)),
		chromedp.WaitVisible(chromedp.ID("action-why")),
	); err != nil {
		t.Fatal(err)
	}
	if visible(t, ctx, "#release-form") || visible(t, ctx, "#override-form") {
		t.Error("the clinician is offered an action the rule refuses")
	}
	why := text(t, ctx, "#action-why")
	if !strings.HasPrefix(why, "Texas law (Tex. Occ. Code § 159.0062): not before ") || !regexp.MustCompile(`00:00 C[SD]T`).MatchString(why) ||
		!strings.Contains(why, "You can release it from ") || strings.Contains(why, "UTC") || strings.Contains(why, id) {
		t.Errorf("why the clinician cannot release: %q", why)
	}
	if b := text(t, ctx, "#bases"); !strings.Contains(b, "Texas law") || strings.Contains(b, "state-law") {
		t.Errorf("bases: %q", b)
	}
	axeCheck(t, ctx, "hold detail (Texas, clinician)")
	shot(t, ctx, "hold-texas-clinician", "#facts")

	// The API's answer to a release anyway: the same words, no IDs, no UTC.
	r := e.do(t, "clinician", "POST", "/api/holds/"+id+"/release", "application/json", []byte(`{}`))
	words, _ := r.body["message"].(string)
	if r.status != 409 || !strings.HasPrefix(words, "Texas law (Tex. Occ. Code § 159.0062): not before ") || strings.Contains(words, id) || strings.Contains(words, "UTC") || strings.Contains(words, "T00:00:00") {
		t.Errorf("release refused: %d %s", r.status, r.raw)
	}

	// On-call: override, which names the statute before it releases.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("signout"))); err != nil {
		t.Fatal(err)
	}
	signIn(t, ctx, e, "oncall", "#holds tbody tr")
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("triage-empty"))); err != nil {
		t.Fatal(err)
	}
	axeCheck(t, ctx, "on-call worklist with triage")
	const note = "Dr Night will call you tonight about this result."
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#holds tbody tr button`)),
		chromedp.WaitVisible(chromedp.ID("override-form")),
		chromedp.SendKeys(chromedp.ID("override-reason"), "patient asked in clinic; discussed in person"),
		chromedp.SendKeys(chromedp.ID("override-note"), note),
		chromedp.Click(chromedp.CSS(`#override-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("override-confirm")),
	); err != nil {
		t.Fatal(err)
	}
	if c := text(t, ctx, "#confirm-list"); !strings.HasPrefix(c, "Texas law (Tex. Occ. Code § 159.0062): not before ") {
		t.Errorf("the confirmation names %q, want the statute", c)
	}
	focusIs(t, ctx, "#confirm-title")
	axeCheck(t, ctx, "hold detail (override confirmation)")
	shot(t, ctx, "override-confirm", "#override-form")
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("confirm-no")),
		chromedp.WaitVisible(chromedp.Search(`//p[@id="status" and contains(., "Override cancelled")]`)),
	); err != nil {
		t.Fatal(err)
	}
	if h, _ := e.app.Service().GetHold(context.Background(), id); h == nil || h.State != hold.StateHeld {
		t.Fatalf("cancelled override left the hold %v", h)
	}
	// Keyboard: the confirmation's Yes with Enter.
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#override-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("override-confirm")),
	); err != nil {
		t.Fatal(err)
	}
	tabTo(t, ctx, "#confirm-yes", 3)
	if err := chromedp.Do(ctx,
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(chromedp.ID("released")),
	); err != nil {
		st, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("status")))
		t.Fatalf("override: %v (status %q)", err, st)
	}
	rel := text(t, ctx, "#released-facts")
	for _, want := range []string{"Dr Night (oncall)", "on-call override", note, "patient asked in clinic"} {
		if !strings.Contains(rel, want) {
			t.Errorf("released state lacks %q:\n%s", want, rel)
		}
	}
	if title := text(t, ctx, "#detail-title"); title != "Released result" {
		t.Errorf("title after the override: %q", title)
	}
	shot(t, ctx, "released", "")
}

// TestWebReleaseShowsReleasedState: with the keyboard alone a clinician
// opens a hold, writes the note and releases; the page then says Released,
// by whom, when (site zone), how and the note sent, and offers no action.
func TestWebReleaseShowsReleasedState(t *testing.T) {
	ctx := browser(t)
	e := newAPIEnv(t)
	raced := sendResult(t, e, "REL-0", "RACE", "RUTH", time.Now().Add(-2*time.Hour))

	// A release refused because on-call released the result meanwhile reads
	// as words, not server text with the hold ID.
	signIn(t, ctx, e, "clinician", "#holds tbody tr")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#holds tbody tr button`)), chromedp.WaitVisible(chromedp.ID("release-form"))); err != nil {
		t.Fatal(err)
	}
	if r := e.do(t, "oncall", "POST", "/api/holds/"+raced+"/override", "application/json", []byte(`{"reason":"patient phoned"}`)); r.status != 200 {
		t.Fatalf("override: %d %s", r.status, r.raw)
	}
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#release-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.Search(`//p[@id="status" and contains(., "Not released")]`)),
	); err != nil {
		t.Fatal(err)
	}
	if st := text(t, ctx, "#status"); st != "Not released: This result has already been released to the patient portal." {
		t.Errorf("refusal shown as %q", st)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("signout"))); err != nil {
		t.Fatal(err)
	}

	sendResult(t, e, "REL-1", "RELEASE", "RITA", time.Now().Add(-time.Hour))
	const note = "Dr Delta will phone you on Monday to go through this result."
	if err := chromedp.Do(ctx, chromedp.Navigate(e.base+"/"), chromedp.WaitVisible(chromedp.ID("token"))); err != nil {
		t.Fatal(err)
	}
	tabTo(t, ctx, "#token", 10)
	if err := chromedp.Do(ctx,
		chromedp.KeyEvent(e.tokens["clinician"]),
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(chromedp.CSS(`#holds tbody tr`)),
	); err != nil {
		t.Fatal(err)
	}
	tabTo(t, ctx, `#holds tbody tr button`, 15)
	if err := chromedp.Do(ctx, chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.ID("release-form"))); err != nil {
		t.Fatal(err)
	}
	if visible(t, ctx, "#action-why") {
		t.Errorf("a releasable hold shows a reason not to: %q", text(t, ctx, "#action-why"))
	}
	if f := text(t, ctx, "#facts"); !strings.Contains(f, "born 1 Jan 1970") && !strings.Contains(f, "1 Jan 1970") || strings.Contains(f, "19700101") {
		t.Errorf("date of birth not formatted: %q", f)
	}
	axeCheck(t, ctx, "hold detail (clinician may release)")
	tabTo(t, ctx, "#note", 10)
	if err := chromedp.Do(ctx, chromedp.KeyEvent(note)); err != nil {
		t.Fatal(err)
	}
	tabTo(t, ctx, `#release-form button[type="submit"]`, 5)
	if err := chromedp.Do(ctx, chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.ID("released"))); err != nil {
		st, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("status")))
		t.Fatalf("release: %v (status %q)", err, st)
	}
	rel := text(t, ctx, "#released-facts")
	for _, want := range []string{"D001 (clinician)", "released by a clinician", note} {
		if !strings.Contains(rel, want) {
			t.Errorf("released state lacks %q:\n%s", want, rel)
		}
	}
	if !regexp.MustCompile(`When\s+(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d{1,2} [A-Z][a-z]{2}, \d{2}:\d{2} E[SD]T`).MatchString(rel) {
		t.Errorf("release time not in the site's zone:\n%s", rel)
	}
	if title, bases := text(t, ctx, "#detail-title"), text(t, ctx, "#bases-title"); title != "Released result" || bases != "Why it was held" {
		t.Errorf("headings after release: %q, %q", title, bases)
	}
	if f := text(t, ctx, "#facts"); strings.Contains(f, "left)") || strings.Contains(f, "Deadline") {
		t.Errorf("a released result still counts down: %q", f)
	}
	if visible(t, ctx, "#release-form") || visible(t, ctx, "#override-form") || visible(t, ctx, "#action-why") {
		t.Errorf("after release: form %v, why %q", visible(t, ctx, "#release-form"), text(t, ctx, "#action-why"))
	}
	if h := text(t, ctx, "#history"); !regexp.MustCompile(`(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d{1,2} [A-Z][a-z]{2}, \d{2}:\d{2} E[SD]T: Released to the patient portal \(released by a clinician\) by D001`).MatchString(h) {
		t.Errorf("history in the site's zone and words:\n%s", h)
	}
}

// TestWebAuditTrail: compliance filters the trail by hold, patient key,
// actor, kind and time, and downloads the same filter as CSV; the CSV
// endpoint is for compliance and admin only.
func TestWebAuditTrail(t *testing.T) {
	ctx := browser(t)
	e := newAPIEnv(t)
	h1 := sendResult(t, e, "AUD-1", "AUDIT", "ADA", time.Now().Add(-time.Hour))
	h2 := sendResult(t, e, "AUD-2", "AUDIT", "ABE", time.Now().Add(-time.Hour))
	if r := e.do(t, "oncall", "POST", "/api/holds/"+h1+"/override", "application/json", []byte(`{"reason":"phoned the patient"}`)); r.status != 200 {
		t.Fatalf("override: %d %s", r.status, r.raw)
	}
	if r := e.do(t, "clinician", "POST", "/api/holds/"+h2+"/release", "application/json", []byte(`{}`)); r.status != 200 {
		t.Fatalf("release: %d %s", r.status, r.raw)
	}
	r := e.do(t, "compliance", "GET", "/api/holds/"+h2, "", nil)
	key, _ := r.body["patient_key"].(string)
	if key == "" {
		t.Fatalf("hold %s has no patient key: %s", h2, r.raw)
	}

	signIn(t, ctx, e, "compliance", "#audit-open")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("audit-open")), chromedp.WaitVisible(chromedp.ID("audit-form"))); err != nil {
		t.Fatal(err)
	}
	search := func(hold, patient, actor, kind, since string) {
		t.Helper()
		set := fmt.Sprintf(`(() => { const v = {"a-hold": %q, "a-patient": %q, "a-actor": %q, "a-kind": %q, "a-since": %q, "a-until": ""};
  for (const [id, x] of Object.entries(v)) document.getElementById(id).value = x; document.getElementById("audit-count").textContent = ""; return true; })()`, hold, patient, actor, kind, since)
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](set)); err != nil {
			t.Fatal(err)
		}
		if err := chromedp.Do(ctx,
			chromedp.Click(chromedp.CSS(`#audit-form button[type="submit"]`)),
			chromedp.WaitVisible(chromedp.Search(`//p[@id="audit-count" and normalize-space(.) != ""]`)),
		); err != nil {
			t.Fatal(err)
		}
	}
	all := func(label, want string) []string {
		t.Helper()
		var vals []string
		testutil.Eventually(t, 10*time.Second, label+" column", func() bool {
			vals = column(t, ctx, "#audit-list", label)
			return len(vals) > 0
		})
		for _, v := range vals {
			if !strings.Contains(v, want) {
				t.Errorf("%s cell %q, want %q in every row", label, v, want)
			}
		}
		return vals
	}
	search(h1, "", "", "", "")
	all("Hold", h1)
	axeCheck(t, ctx, "audit trail")
	shot(t, ctx, "audit", "")
	search("", "", "", "override", "")
	if k := all("Kind", "Override"); len(k) != 1 {
		t.Errorf("override events: %q", k)
	}
	search("", "", "Dr Night", "", "")
	all("Actor", "Dr Night")
	search("", key, "", "", "")
	all("Patient key", key)
	search("", "", "", "", time.Now().UTC().AddDate(0, 0, 2).Format("2006-01-02"))
	testutil.Eventually(t, 10*time.Second, "nothing after tomorrow", func() bool { return text(t, ctx, "#audit-count") == "No events match." })

	// The CSV button downloads what the filters select: capture the blob.
	search("", "", "", "override", "")
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { window.__csv = null; const o = URL.createObjectURL; URL.createObjectURL = (b) => { b.text().then(t => window.__csv = t); return o.call(URL, b); }; return true; })()`)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("audit-csv"))); err != nil {
		t.Fatal(err)
	}
	var body string
	testutil.Eventually(t, 10*time.Second, "CSV download", func() bool {
		body, _ = chromedp.Run(ctx, chromedp.Evaluate[string](`window.__csv || ""`))
		return body != ""
	})
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil || len(rows) != 2 || rows[0][0] != "seq" || rows[1][2] != "override" || rows[1][4] != h1 || rows[1][10] != "Dr Night" {
		t.Errorf("CSV (%v):\n%s", err, body)
	}
	if r := e.do(t, "clinician", "GET", "/api/audit.csv", "", nil); r.status != 403 {
		t.Errorf("a clinician's CSV export: %d", r.status)
	}
	if r := e.do(t, "compliance", "GET", "/api/audit.csv?hold="+h2+"&kind=transition", "", nil); r.status != 200 || !strings.HasPrefix(r.raw, "seq,at,kind,") || !strings.Contains(r.raw, ",transition,") || strings.Contains(r.raw, h1) {
		t.Errorf("CSV by hold and kind: %d\n%s", r.status, r.raw)
	}
	if r := e.do(t, "compliance", "GET", "/api/audit?limit=1", "", nil); r.status != 200 || len(r.body["events"].([]any)) != 1 || r.body["next_offset"] == nil {
		t.Errorf("a page of one: %d %s", r.status, r.raw)
	}
}

// TestWebTokens: an administrator issues a token (shown once, and it signs
// in), sees it listed, and revokes it (then refused).
func TestWebTokens(t *testing.T) {
	ctx := browser(t)
	e := newAPIEnv(t)
	signIn(t, ctx, e, "admin", "#tokens-open")
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("tokens-open")),
		chromedp.WaitVisible(chromedp.CSS(`#token-list tbody tr`)),
		chromedp.SendKeys(chromedp.ID("t-name"), "Dr Foxtrot"),
		chromedp.SetValue(chromedp.ID("t-role"), "clinician"),
		chromedp.SendKeys(chromedp.ID("t-provider"), "D003"),
		chromedp.Click(chromedp.CSS(`#token-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("token-new")),
	); err != nil {
		t.Fatal(err)
	}
	tok, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("token-new-value").value`))
	if err != nil || len(tok) < 20 {
		t.Fatalf("new token %q %v", tok, err)
	}
	if r := e.do(t, tok, "GET", "/api/me", "", nil); r.status != 200 || r.body["name"] != "Dr Foxtrot" || r.body["provider_id"] != "D003" {
		t.Errorf("the new token signs in: %d %s", r.status, r.raw)
	}
	testutil.Eventually(t, 10*time.Second, "listed", func() bool {
		return strings.Contains(strings.Join(column(t, ctx, "#token-list", "Name"), "|"), "Dr Foxtrot")
	})
	axeCheck(t, ctx, "tokens (new token shown)")
	if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.ID("token-new-value"), "SYNTHETIC-TOKEN-FOR-THE-GUIDE")); err != nil {
		t.Fatal(err)
	}
	shot(t, ctx, "tokens", "")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("token-new-done"))); err != nil {
		t.Fatal(err)
	}
	if v, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("token-new-value").value`)); v != "" || visible(t, ctx, "#token-new") {
		t.Errorf("the token stays on the page after 'I have copied it': %q", v)
	}
	if strings.Contains(text(t, ctx, "body"), tok) {
		t.Error("the token is shown again")
	}
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`button[aria-label="Revoke the token of Dr Foxtrot"]`)),
		chromedp.WaitVisible(chromedp.Search(`//p[@id="status" and contains(., "is revoked")]`)),
	); err != nil {
		t.Fatal(err)
	}
	names, states := column(t, ctx, "#token-list", "Name"), column(t, ctx, "#token-list", "Status")
	for i, n := range names {
		if n == "Dr Foxtrot" && states[i] != "Revoked" {
			t.Errorf("Dr Foxtrot's token is %q after revoking", states[i])
		}
	}
	if r := e.do(t, tok, "GET", "/api/me", "", nil); r.status != 401 {
		t.Errorf("the revoked token: %d", r.status)
	}
}

// TestWebReportAccessible: axe-core on the compliance report page.
func TestWebReportAccessible(t *testing.T) {
	ctx := browser(t)
	e := newAPIEnv(t)
	h := sendResult(t, e, "REP-1", "REPORT", "RAY", time.Now().Add(-time.Hour))
	if r := e.do(t, "oncall", "POST", "/api/holds/"+h+"/override", "application/json", []byte(`{"reason":"discussed with the patient by phone"}`)); r.status != 200 {
		t.Fatalf("override: %d %s", r.status, r.raw)
	}
	signIn(t, ctx, e, "compliance", "#report-open")
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("report-open")),
		chromedp.WaitVisible(chromedp.CSS(`#rep-output svg.rep-chart rect`)),
	); err != nil {
		t.Fatal(err)
	}
	if out := text(t, ctx, "#rep-output"); !strings.Contains(out, "State law") || strings.Contains(out, "state-law") {
		t.Errorf("report bases not in words")
	}
	axeCheck(t, ctx, "compliance report")
	shot(t, ctx, "report", "")
}

// TestWebNotificationLinkOpensHold: a notification's link (/#hold=<hold ID>)
// opens that hold's page once the clinician has signed in, and the hold ID
// leaves the address bar.
func TestWebNotificationLinkOpensHold(t *testing.T) {
	ctx := browser(t)
	e := newAPIEnv(t)
	sendResult(t, e, "LINK-0", "OTHER", "OLGA", time.Now().Add(-2*time.Hour))
	linked := sendResult(t, e, "LINK-1", "LINKED", "LENA", time.Now().Add(-time.Hour))
	if err := chromedp.Do(ctx, chromedp.Navigate(e.base+"/#hold="+linked), chromedp.WaitVisible(chromedp.ID("token"))); err != nil {
		t.Fatal(err)
	}
	addr, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href`))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(addr, linked) {
		t.Errorf("the hold ID stays in the address bar: %s", addr)
	}
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("token"), e.tokens["clinician"]),
		chromedp.Click(chromedp.CSS(`#signin-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("release-form")),
	); err != nil {
		st, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("status")))
		t.Fatalf("sign in from the link: %v (status %q)", err, st)
	}
	if f := text(t, ctx, "#facts"); !strings.Contains(f, "LINKED") || strings.Contains(f, "OTHER") {
		t.Errorf("the linked hold's page shows %q, want patient LINKED", f)
	}
}
