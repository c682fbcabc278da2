package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestWebReport signs in as compliance, opens the report and checks the SVG
// chart and the tables; an admin lands on the report (no worklist).
func TestWebReport(t *testing.T) {
	ctx := browser(t)
	e := newAPIEnv(t)
	h := e.heldPathology(t, "WEBREP1")
	if r := e.do(t, "oncall", "POST", "/api/holds/"+h+"/override", "application/json", []byte(`{"reason":"discussed with the patient by phone"}`)); r.status != 200 {
		t.Fatalf("override: %d %s", r.status, r.raw)
	}
	err := chromedp.Do(ctx,
		chromedp.Navigate(e.base+"/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), e.tokens["compliance"]),
		chromedp.Click(chromedp.CSS(`#signin-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("report-open")),
		chromedp.Click(chromedp.ID("report-open")),
		chromedp.WaitVisible(chromedp.CSS(`#rep-output svg.rep-chart rect`)),
	)
	if err != nil {
		st, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("status")))
		t.Fatalf("open the report: %v (status %q)", err, st)
	}
	charts, err := chromedp.Run(ctx, chromedp.Evaluate[string](`Array.from(document.querySelectorAll("#rep-output svg")).map(s =>
		s.querySelector("title").textContent + ":" + s.querySelectorAll("rect").length).join("|")`))
	if err != nil || charts != "Holds by basis:1|Time from finalisation to release by basis:4" {
		t.Errorf("charts = %q, %v (want one bar for state-law; median and p90 bars plus a two-entry legend)", charts, err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("rep-output")))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"State law", "Dr Night", "discussed with the patient by phone", "40-64", "<5"} {
		if !strings.Contains(text, want) {
			t.Errorf("report page lacks %q", want)
		}
	}
	js, err := os.ReadFile(filepath.Join("..", "web", "static", "report.js"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(js), "innerHTML") || strings.Contains(string(js), ".style.") {
		t.Error("report.js writes HTML or inline styles")
	}

	// An admin has no worklist: the report is the start page.
	ctx2 := browser(t)
	err = chromedp.Do(ctx2,
		chromedp.Navigate(e.base+"/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), e.tokens["admin"]),
		chromedp.Click(chromedp.CSS(`#signin-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#rep-output svg`)),
	)
	if err != nil {
		t.Fatalf("admin: %v", err)
	}
}
