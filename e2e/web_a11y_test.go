package e2e

// Browser tests for issue 5 §3: the worklist works with the keyboard alone,
// stays usable at 200% zoom and on a phone, keeps PHI out of URLs, and a page
// on another origin cannot change a hold.

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/resultgate/resultgate/router/holdview"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
)

// focusProblem describes why the focused element's focus is not visible, or
// returns "" when it has a visible outline or box-shadow.
const focusProblem = `(() => {
  const a = document.activeElement;
  if (!a || a === document.body) return "nothing is focused";
  const s = getComputedStyle(a);
  const outline = s.outlineStyle !== "none" && parseFloat(s.outlineWidth) > 0;
  const shadow = s.boxShadow && s.boxShadow !== "none";
  return outline || shadow ? "" : "no visible focus on " + a.tagName + "#" + a.id + " (outline " + s.outlineStyle + " " + s.outlineWidth + ")";
})()`

// describeFocus names the focused element for failure messages.
const describeFocus = `(() => { const a = document.activeElement; return a ? a.tagName + "#" + a.id + " " + (a.getAttribute("aria-label") || a.textContent || "").trim().slice(0, 40) : "none"; })()`

// tabTo presses Tab (at most max times) until the focused element matches the
// CSS selector sel, then checks that the focus is visible.
func tabTo(t *testing.T, ctx context.Context, sel string, max int) {
	t.Helper()
	match := fmt.Sprintf(`document.activeElement !== null && document.activeElement.matches(%q)`, sel)
	var seen []string
	for i := 0; i < max; i++ {
		if err := chromedp.Do(ctx, chromedp.KeyEvent(kb.Tab)); err != nil {
			t.Fatalf("Tab: %v", err)
		}
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](match))
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			t.Logf("%s reached with %d Tab(s) (via %q)", sel, i+1, seen)
			if p, err := chromedp.Run(ctx, chromedp.Evaluate[string](focusProblem)); err != nil || p != "" {
				t.Errorf("focus on %s: %s %v", sel, p, err)
			}
			return
		}
		d, _ := chromedp.Run(ctx, chromedp.Evaluate[string](describeFocus))
		seen = append(seen, d)
	}
	t.Fatalf("%s not reached with %d Tabs; focus went %q", sel, max, seen)
}

// focusIs checks that the element matching sel has the focus, visibly.
func focusIs(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`document.activeElement !== null && document.activeElement.matches(%q)`, sel)))
	if err != nil || !ok {
		d, _ := chromedp.Run(ctx, chromedp.Evaluate[string](describeFocus))
		t.Fatalf("focus is on %q, want %s (%v)", d, sel, err)
	}
	if p, err := chromedp.Run(ctx, chromedp.Evaluate[string](focusProblem)); err != nil || p != "" {
		t.Errorf("focus on %s: %s %v", sel, p, err)
	}
}

// heldPathologyNow is e.heldPathology with the report finalised (OBR-22) an
// hour ago instead of on the fixture's fixed date, so that the 72-hour
// state-law deadline lies ahead whenever the test runs and the scheduler does
// not release the hold under the test.
func heldPathologyNow(t *testing.T, e *apiEnv, id string) string {
	t.Helper()
	at := time.Now().Add(-time.Hour).Format("20060102150405-0700")
	m := strings.ReplaceAll(string(msg(pathORU, id)), "||"+obr22Text+"||", "||"+at+"||")
	if !strings.Contains(m, at) {
		t.Fatal("pathORU no longer carries the OBR-22 this helper replaces")
	}
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

func TestWebKeyboardOnlyRelease(t *testing.T) {
	ctx := browser(t)
	e := newAPIEnv(t)
	holdID := heldPathologyNow(t, e, "KBD1")
	const note = "Dr Delta will phone you on Monday to go through this result."

	if err := chromedp.Do(ctx,
		chromedp.Navigate(e.base+"/"),
		chromedp.WaitVisible(chromedp.ID("token")),
	); err != nil {
		t.Fatal(err)
	}
	// Keys only from here on: no clicks, no element.click(), no focus() from the test.
	tabTo(t, ctx, "#token", 10)
	if err := chromedp.Do(ctx,
		chromedp.KeyEvent(e.tokens["clinician"]),
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(chromedp.CSS(`#holds tbody tr`)),
	); err != nil {
		st, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("status")))
		t.Fatalf("sign in with the keyboard: %v (status %q)", err, st)
	}
	tabTo(t, ctx, `#holds tbody tr button`, 10)
	if err := chromedp.Do(ctx,
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(chromedp.CSS(`#report mark`)),
	); err != nil {
		t.Fatalf("open the hold with Enter: %v", err)
	}
	// Opening a hold moves the focus to its heading, so a keyboard or screen
	// reader user starts reading at the top of the result.
	focusIs(t, ctx, "#detail-title")
	tabTo(t, ctx, "#note", 10)
	if err := chromedp.Do(ctx, chromedp.KeyEvent(note)); err != nil {
		t.Fatal(err)
	}
	typed, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("note").value`))
	if err != nil || typed != note {
		t.Fatalf("note field holds %q (%v)", typed, err)
	}
	tabTo(t, ctx, `#release-form button[type="submit"]`, 5)
	if err := chromedp.Do(ctx,
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(chromedp.Search(`//p[@id="status" and contains(., "Released to the patient portal")]`)),
	); err != nil {
		st, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("status")))
		t.Fatalf("release with Enter: %v (status %q)", err, st)
	}
	testutil.Eventually(t, 15*time.Second, "released result in the portal feed", func() bool {
		n, _, _ := feed(t, e.app.JetStream(), "portal.hl7.", "KBD1")
		return n == 1
	})
	_, hdr, _ := feed(t, e.app.JetStream(), "portal.hl7.", "KBD1")
	if hdr[bus.HeaderHoldID] != holdID || unescape(hdr[bus.HeaderNote]) != note {
		t.Errorf("feed headers: hold %q note %q", hdr[bus.HeaderHoldID], unescape(hdr[bus.HeaderNote]))
	}
}

// layoutProblems lists what breaks the layout at the current viewport: a
// horizontal scroll bar, or a control (CSS selectors in the array) that is not
// rendered or does not fit the viewport's width.
const layoutProblems = `((sels) => {
  const p = [];
  const de = document.documentElement;
  if (de.scrollWidth > de.clientWidth + 1) p.push("page scrolls sideways: scrollWidth " + de.scrollWidth + " > clientWidth " + de.clientWidth);
  for (const sel of sels) {
    const n = document.querySelector(sel);
    if (!n) { p.push(sel + " missing"); continue; }
    n.scrollIntoView({block: "center"});
    const r = n.getBoundingClientRect();
    const s = getComputedStyle(n);
    if (r.width < 1 || r.height < 1 || s.visibility === "hidden" || s.display === "none" || n.closest("[hidden]")) p.push(sel + " not shown");
    if (r.left < -1 || r.right > de.clientWidth + 1) p.push(sel + " outside the viewport: " + r.left + ".." + r.right + " of " + de.clientWidth);
    if (r.bottom < 0 || r.top > window.innerHeight) p.push(sel + " cannot be scrolled into view");
  }
  return p.join("; ");
})`

func TestWebZoomAndPhoneLayout(t *testing.T) {
	ctx := browser(t)
	e := newAPIEnv(t)
	heldPathologyNow(t, e, "ZOOM1")

	for _, vp := range []struct {
		name   string
		w, h   int64
		mobile bool
	}{
		{"1280x800 at 200%", 640, 400, false},
		{"phone 375x667", 375, 667, true},
	} {
		t.Run(vp.name, func(t *testing.T) {
			opts := []chromedp.EmulateViewportOption{chromedp.EmulateScale(2)}
			if vp.mobile {
				opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait)
			}
			if err := chromedp.Do(ctx,
				chromedp.EmulateViewport(vp.w, vp.h, opts...),
				chromedp.Navigate(e.base+"/"),
			); err != nil {
				t.Fatal(err)
			}
			// The token stays in this tab's sessionStorage: sign in only once.
			signedIn, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`sessionStorage.getItem("rg-token") !== null`))
			if err != nil {
				t.Fatal(err)
			}
			if !signedIn {
				if err := chromedp.Do(ctx,
					chromedp.WaitVisible(chromedp.ID("token")),
					chromedp.SendKeys(chromedp.ID("token"), e.tokens["clinician"]),
					chromedp.Click(chromedp.CSS(`#signin-form button[type="submit"]`)),
				); err != nil {
					t.Fatal(err)
				}
			}
			if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`#holds tbody tr`))); err != nil {
				t.Fatalf("worklist: %v", err)
			}
			cw, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.clientWidth`))
			if err != nil || int64(cw) != vp.w {
				t.Fatalf("CSS viewport width %d, want %d (%v)", cw, vp.w, err)
			}
			if p, err := chromedp.Run(ctx, chromedp.Evaluate[string](layoutProblems+`(["#holds tbody tr button", "#refresh"])`)); err != nil || p != "" {
				t.Errorf("worklist: %s %v", p, err)
			}
			if err := chromedp.Do(ctx,
				chromedp.Click(chromedp.CSS(`#holds tbody tr button`)),
				chromedp.WaitVisible(chromedp.CSS(`#report mark`)),
			); err != nil {
				t.Fatalf("open the hold: %v", err)
			}
			if p, err := chromedp.Run(ctx, chromedp.Evaluate[string](layoutProblems+`(["#note", "#release-reason", "#release-form button[type=submit]", "#back"])`)); err != nil || p != "" {
				t.Errorf("held result: %s %v", p, err)
			}
			if vp.mobile {
				px, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`parseFloat(getComputedStyle(document.body).fontSize)`))
				if err != nil || px < 16 {
					t.Errorf("base font size on a phone %vpx, want at least 16 (%v)", px, err)
				}
				// Inputs below 16px make mobile browsers zoom in on focus.
				px, err = chromedp.Run(ctx, chromedp.Evaluate[float64](`parseFloat(getComputedStyle(document.getElementById("note")).fontSize)`))
				if err != nil || px < 16 {
					t.Errorf("note field font size on a phone %vpx, want at least 16 (%v)", px, err)
				}
			}
		})
	}
}

// netLog records every request the page makes and the status it got, from
// the DevTools protocol, so that nothing the page's own APIs hide is missed.
type netLog struct {
	mu     sync.Mutex
	urls   []string
	method map[network.RequestID]string
	url    map[network.RequestID]string
	status map[network.RequestID]int64
	failed map[network.RequestID]string
}

func listenNet(t *testing.T, ctx context.Context) *netLog {
	t.Helper()
	l := &netLog{method: map[network.RequestID]string{}, url: map[network.RequestID]string{}, status: map[network.RequestID]int64{}, failed: map[network.RequestID]string{}}
	err := chromedp.Listen(ctx, func(ev any) {
		l.mu.Lock()
		defer l.mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			l.urls = append(l.urls, ev.Request.URL)
			l.method[ev.RequestID] = ev.Request.Method
			l.url[ev.RequestID] = ev.Request.URL
		case *network.EventResponseReceived:
			l.status[ev.RequestID] = ev.Response.Status
		case *network.EventResponseReceivedExtraInfo:
			// Also sent when CORS hides the answer from the page and
			// no responseReceived follows.
			l.status[ev.RequestID] = ev.StatusCode
		case *network.EventLoadingFailed:
			why := ev.ErrorText
			if ev.CorsErrorStatus != nil {
				why += " " + string(ev.CorsErrorStatus.CorsError)
			}
			l.failed[ev.RequestID] = why
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// statuses returns the statuses of the requests with method m to URL u that
// got an answer from the server.
func (l *netLog) statuses(m, u string) []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []int64
	for id, x := range l.url {
		if s, ok := l.status[id]; ok && x == u && l.method[id] == m {
			out = append(out, s)
		}
	}
	return out
}

func TestWebNoPHIInURLs(t *testing.T) {
	ctx := browser(t)
	e := newAPIEnv(t)
	holdID := heldPathologyNow(t, e, "URL1")
	net := listenNet(t, ctx)

	var hrefs []string
	href := func() {
		t.Helper()
		u, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		hrefs = append(hrefs, u)
	}
	if err := chromedp.Do(ctx,
		chromedp.Navigate(e.base+"/"),
		chromedp.WaitVisible(chromedp.ID("token")),
	); err != nil {
		t.Fatal(err)
	}
	href()
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("token"), e.tokens["clinician"]),
		chromedp.Click(chromedp.CSS(`#signin-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#holds tbody tr`)),
	); err != nil {
		t.Fatal(err)
	}
	href()
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#holds tbody tr button`)),
		chromedp.WaitVisible(chromedp.CSS(`#report mark`)),
	); err != nil {
		t.Fatal(err)
	}
	href()
	// The page shows the identifiers, so the check below is not vacuous.
	facts, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("facts")))
	if err != nil || !strings.Contains(facts, "MRN-E2E-URL1") || !strings.Contains(facts, "TESTPATIENT") {
		t.Fatalf("the held result does not show the patient: %q %v", facts, err)
	}
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("note"), "Dr Delta will call you."),
		chromedp.Click(chromedp.CSS(`#release-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.Search(`//p[@id="status" and contains(., "Released to the patient portal")]`)),
	); err != nil {
		t.Fatal(err)
	}
	href()

	perf, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`performance.getEntriesByType("navigation").concat(performance.getEntriesByType("resource")).map(x => x.name)`))
	if err != nil {
		t.Fatal(err)
	}
	hist, err := chromedp.Run(ctx, chromedp.NavigationEntries())
	if err != nil {
		t.Fatal(err)
	}
	all := append(append([]string{}, hrefs...), perf...)
	for _, h := range hist.Entries {
		all = append(all, h.URL)
	}
	net.mu.Lock()
	all = append(all, net.urls...)
	net.mu.Unlock()

	// Case-sensitive where a short identifier could occur by chance in the
	// lowercase hex of a hold ID.
	phi := []string{"MRN-E2E-URL1", "E2E", "TESTPATIENT", "testpatient", "19700101", "1970-01-01", "carcinoma", "ductal", "biopsy", "Two cores", e.tokens["clinician"]}
	sawRelease := false
	for _, u := range all {
		dec, err := url.PathUnescape(u)
		if err != nil {
			dec = u
		}
		dec = strings.ReplaceAll(dec, "+", " ")
		for _, s := range phi {
			if strings.Contains(u, s) || strings.Contains(dec, s) {
				t.Errorf("URL %q carries %q", u, s)
			}
		}
		if strings.HasSuffix(u, "/api/holds/"+holdID+"/release") {
			sawRelease = true
		}
		if u != "about:blank" && !strings.HasPrefix(u, e.base+"/") {
			t.Errorf("the page talked to another origin: %q", u)
		}
	}
	if !sawRelease || len(perf) < 5 {
		t.Errorf("the request log is incomplete: release seen %v, %d performance entries: %q", sawRelease, len(perf), all)
	}
	for _, h := range hrefs {
		if h != e.base+"/" {
			t.Errorf("the address changed to %q", h)
		}
	}
}

// attackerPage is served from another origin. It tries the three ways a page
// can send a POST to the API: a simple fetch (text/plain, with credentials),
// a fetch with the victim's bearer token (which needs a CORS preflight), and
// a plain HTML form, which navigates the tab to the API's answer.
const attackerPage = `<!doctype html><html><head><title>win a prize</title></head><body>
<form id="f" method="post" enctype="text/plain"><input type="hidden" name='{"note_to_patient":"x","a":"' value='"}'></form>
<script>
const target = new URLSearchParams(location.search).get("target");
const token = new URLSearchParams(location.search).get("token");
document.getElementById("f").action = target;
window.results = {};
window.done = (async () => {
  try {
    const r = await fetch(target, {method: "POST", credentials: "include", headers: {"Content-Type": "text/plain"}, body: '{"note_to_patient":"pwned"}'});
    window.results.simple = "status " + r.status;
  } catch (e) { window.results.simple = "rejected: " + e.name; }
  try {
    const r = await fetch(target, {method: "POST", credentials: "include", headers: {"Content-Type": "application/json", "Authorization": "Bearer " + token}, body: '{"note_to_patient":"pwned"}'});
    window.results.bearer = "status " + r.status;
  } catch (e) { window.results.bearer = "rejected: " + e.name; }
  return JSON.stringify(window.results);
})();
</script></body></html>`

func TestWebCrossOriginCannotRelease(t *testing.T) {
	ctx := browser(t)
	e := newAPIEnv(t)
	holdID := heldPathologyNow(t, e, "CSRF1")
	target := e.base + "/api/holds/" + holdID + "/release"

	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, attackerPage)
	}))
	t.Cleanup(evil.Close)
	// httptest listens on 127.0.0.1; name the attacker "localhost" when the
	// API is on 127.0.0.1 too, so the two differ in host as well as port.
	evilURL := strings.Replace(evil.URL, "127.0.0.1", "localhost", 1)
	if evilURL == evil.URL || !strings.Contains(e.base, "127.0.0.1") {
		evilURL = evil.URL
	}
	net := listenNet(t, ctx)

	// The clinician is signed in in this browser: the token is in the
	// resultgate tab's sessionStorage, as it is in real use.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(e.base+"/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), e.tokens["clinician"]),
		chromedp.Click(chromedp.CSS(`#signin-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#holds tbody tr`)),
	); err != nil {
		t.Fatal(err)
	}

	page := evilURL + "/?target=" + url.QueryEscape(target) + "&token=" + url.QueryEscape(e.tokens["clinician"])
	if err := chromedp.Do(ctx, chromedp.Navigate(page)); err != nil {
		t.Fatal(err)
	}
	res, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.done`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	// Neither fetch may read an answer: the API grants no CORS.
	if strings.Contains(res, "status") {
		t.Errorf("the attacker page read an answer from the API: %s", res)
	}
	// The simple request reaches the API (it needs no preflight) and is
	// refused. The API authenticates with a bearer header, never a cookie, so a
	// browser sends no credential cross-site and the answer is 401 before the
	// Origin (403) and Content-Type (415) checks are reached; those stay as a
	// second line for a future cookie session.
	st := net.statuses("POST", target)
	if len(st) == 0 {
		t.Fatalf("the simple cross-origin POST never reached the API: %s", res)
	}
	for _, s := range st {
		if s != 401 && s != 403 && s != 415 {
			t.Errorf("cross-origin fetch POST answered %d, want 401, 403 or 415", s)
		}
	}
	// The request carrying the bearer token needs a preflight, which the API
	// does not grant, so the POST itself is never sent: only one POST so far.
	if len(st) != 1 {
		t.Errorf("%d POSTs reached the API from the fetches, want only the simple one: %v (%s)", len(st), st, res)
	}

	// The form POST navigates the tab to the API's answer.
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`setTimeout(() => document.getElementById("f").submit(), 0)`)); err != nil {
		t.Fatalf("form POST: %v", err)
	}
	testutil.Eventually(t, 10*time.Second, "the tab to show the API's answer to the form", func() bool {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`location.href.includes("/api/holds/") && document.readyState === "complete"`))
		return err == nil && ok
	})
	code, err := chromedp.Run(ctx, chromedp.Evaluate[int](`performance.getEntriesByType("navigation")[0].responseStatus`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if code != 401 && code != 403 && code != 415 {
		t.Errorf("cross-origin form POST answered %d %q, want 401, 403 or 415", code, body)
	}
	t.Logf("fetches: %s; fetch POST statuses %v; form POST %d %s", res, st, code, strings.TrimSpace(body))

	h, err := e.app.Service().GetHold(context.Background(), holdID)
	if err != nil || h.State != hold.StateHeld || h.Release != nil || strings.Contains(h.Note, "pwned") {
		t.Errorf("hold after the attack: state %v release %+v note %q %v", h.State, h.Release, h.Note, err)
	}
	if n, _, _ := feed(t, e.app.JetStream(), "portal.hl7.", "CSRF1"); n != 0 {
		t.Error("the hold reached the portal feed")
	}
}
