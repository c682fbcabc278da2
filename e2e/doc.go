// Package e2e holds resultgate's browser tests: the web worklist, the OIDC
// sign-in, accessibility (keyboard only, zoom, phone) and the compliance
// report, driven in headless Chromium over the DevTools protocol (chromedp).
//
// It is a module of its own (github.com/resultgate/resultgate/e2e, which
// replaces the product module with ../), so that the product's module graph
// carries no browser automation. The tests use only resultgate's exported API:
// they start the daemon with app.New and app.Start on loopback ports, send
// synthetic ORU^R01 messages over MLLP, and read the portal feed and the
// audit trail through App.JetStream and App.Service.
//
// Run them with `cd e2e && go test ./...` (.ci/run does, after the product's
// tests). They need Debian's chromium (or RESULTGATE_CHROMIUM naming another
// binary): without it they skip, and under CI (CI=true) they fail.
package e2e
