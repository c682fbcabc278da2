package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
)

func TestWebClinicianReleasesWithNote(t *testing.T) {
	ctx := browser(t)
	e := newAPIEnv(t)
	holdID := e.heldPathology(t, "WEB1")
	const note = "Dr Delta will call you this afternoon to talk about this result."

	err := chromedp.Do(ctx,
		chromedp.Navigate(e.base+"/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), e.tokens["clinician"]),
		chromedp.Click(chromedp.CSS(`#signin-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#holds tbody tr`)),
	)
	if err != nil {
		t.Fatalf("sign in: %v", err)
	}
	remaining, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#holds tbody tr td[data-label="Time left"]`)))
	if err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#holds tbody tr button`)),
		chromedp.WaitVisible(chromedp.CSS(`#report mark`)),
	)
	if err != nil {
		t.Fatalf("open the hold: %v", err)
	}
	report, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("report")))
	if err != nil {
		t.Fatal(err)
	}
	marked, err := chromedp.Run(ctx, chromedp.Evaluate[string](`Array.from(document.querySelectorAll("#report mark")).map(m => m.textContent).join("|")`))
	if err != nil || !strings.Contains(strings.ToLower(marked), "carcinoma") {
		t.Errorf("evidence not highlighted: %q %v", marked, err)
	}
	err = chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.ID("note")),
		chromedp.SendKeys(chromedp.ID("note"), note),
		chromedp.Click(chromedp.CSS(`#release-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.Search(`//p[@id="status" and contains(., "Released to the patient portal")]`)),
	)
	if err != nil {
		st, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("status")))
		t.Fatalf("release: %v (status %q)", err, st)
	}
	if !strings.Contains(strings.ToLower(report), "invasive ductal carcinoma") {
		t.Errorf("report text shown: %q", report)
	}
	if remaining == "" || remaining == "due" {
		t.Errorf("time left shown as %q", remaining)
	}
	testutil.Eventually(t, 15*time.Second, "released result in the portal feed", func() bool {
		n, _, _ := feed(t, e.app.JetStream(), "portal.hl7.", "WEB1")
		return n == 1
	})
	_, hdr, _ := feed(t, e.app.JetStream(), "portal.hl7.", "WEB1")
	if hdr[bus.HeaderHoldID] != holdID || unescape(hdr[bus.HeaderNote]) != note {
		t.Errorf("feed headers: hold %q note %q", hdr[bus.HeaderHoldID], unescape(hdr[bus.HeaderNote]))
	}
	_, _, fhir := feed(t, e.app.JetStream(), "portal.fhir.", "WEB1")
	if !strings.Contains(string(fhir), "call you this afternoon") {
		t.Errorf("FHIR Bundle lacks the note to the patient")
	}
}

func TestWebClinicianCannotReleaseAnothersHold(t *testing.T) {
	ctx := browser(t)
	e := newAPIEnv(t)
	holdID := e.heldPathology(t, "WEB2")
	err := chromedp.Do(ctx,
		chromedp.Navigate(e.base+"/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), e.tokens["other"]),
		chromedp.Click(chromedp.CSS(`#signin-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("empty")),
	)
	if err != nil {
		t.Fatalf("sign in: %v", err)
	}
	empty, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelectorAll("#holds tbody tr").length === 0`))
	if err != nil {
		t.Fatal(err)
	}
	// Even a hand-made request from the signed-in page is refused.
	code, err := chromedp.Run(ctx, chromedp.Evaluate[int](`fetch("/api/holds/`+holdID+`/release", {method: "POST",
		headers: {"Authorization": "Bearer " + sessionStorage.getItem("rg-token"), "Content-Type": "application/json"},
		body: "{}"}).then(r => r.status)`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if !empty {
		t.Error("another provider's hold is on this clinician's worklist")
	}
	if code != 403 {
		t.Errorf("release of another provider's hold answered %d, want 403", code)
	}
	h, err := e.app.Service().GetHold(context.Background(), holdID)
	if err != nil || h.State != hold.StateHeld {
		t.Errorf("hold state after the attempt: %v %v", h, err)
	}
	if n, _, _ := feed(t, e.app.JetStream(), "portal.hl7.", "WEB2"); n != 0 {
		t.Error("the hold reached the feed")
	}
}
