package e2e

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/resultgate/resultgate/app"
	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/audit"
	"github.com/resultgate/resultgate/router/bus"
)

// The tests in this file sign in to resultgate's page against a real OpenID
// Provider (testOP: zitadel/oidc's op package) rather than the hand-written
// issuer of web_oidc_test.go: the OP's own authorization, token (PKCE
// verification included), keys and end_session endpoints decide.

// The people who can sign in at the OP (synthetic; passwords fresh per run).
var (
	opDelta = opUser{id: "u-delta", username: "delta", password: rand.Text(), name: "Dr Delta Synthetic", npi: "D001",
		roles: []string{"offline_access", "clinician"}}
	opCompliance = opUser{id: "u-compliance", username: "compliance", password: rand.Text(), name: "Compliance Officer Synthetic",
		roles: []string{"compliance"}}
)

// otherClientID is a second application registered at the same OP; its ID
// tokens are valid, signed by the same keys, but not for resultgate.
const otherClientID = "reporting-app"

// newOPEnv starts the OP, then resultgate (Kentucky preset) with auth.oidc
// pointing at it, then registers resultgate's page (client oidcClientID,
// redirect URI <page>/oidc/callback) and the other application at the OP.
// It returns the other application's redirect URI too.
func newOPEnv(t *testing.T) (*testOP, *apiEnv, string) {
	t.Helper()
	o := newTestOP(t, []opUser{opDelta, opCompliance}, nil)
	cfg := kentuckyConfigWith(t, t.TempDir(), `
auth:
  oidc:
    issuer: `+o.srv.URL+`
    audience: `+oidcClientID+`
    roles_claim: roles
    provider_claim: npi
    name_claim: name
`)
	if _, err := app.AuthConfig(cfg); err != nil {
		t.Fatal(err)
	}
	e := startAPIEnv(t, cfg, map[string]string{})
	o.setClient(oidcClientID, e.base+"/oidc/callback", 10*time.Minute)
	other := httptest.NewServer(http.NotFoundHandler()) // the other application's address
	t.Cleanup(other.Close)
	o.setClient(otherClientID, other.URL+"/callback", 10*time.Minute)
	return o, e, other.URL + "/callback"
}

// opFormSignIn clicks "Sign in with your organisation" on a fresh page, signs
// in as u on the OP's form, and waits for the element xpath names (or the
// page's error).
func opFormSignIn(ctx context.Context, e *apiEnv, u opUser, xpath string) error {
	return chromedp.Do(ctx,
		chromedp.Navigate(e.base+"/"),
		chromedp.WaitVisible(chromedp.ID("oidc-signin")),
		chromedp.Click(chromedp.ID("oidc-signin")),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), u.username),
		chromedp.SendKeys(chromedp.ID("password"), u.password),
		chromedp.Click(chromedp.ID("login-submit")),
		orError(xpath),
	)
}

// opSessionSignIn clicks "Sign in with your organisation" while the OP
// session lives: no form, straight back to the page.
func opSessionSignIn(ctx context.Context, e *apiEnv, xpath string) error {
	return chromedp.Do(ctx,
		chromedp.Navigate(e.base+"/"),
		chromedp.WaitVisible(chromedp.ID("oidc-signin")),
		chromedp.Click(chromedp.ID("oidc-signin")),
		orError(xpath),
	)
}

// idToken is the bearer the page keeps after an OIDC sign-in.
func idToken(t *testing.T, ctx context.Context) string {
	t.Helper()
	tok, err := chromedp.Run(ctx, chromedp.Evaluate[string](`sessionStorage.getItem("rg-method") === "oidc" ? sessionStorage.getItem("rg-token") : ""`))
	if err != nil || strings.Count(tok, ".") != 2 {
		t.Fatalf("the page keeps no OIDC ID token (%q, %v)", tok, err)
	}
	return tok
}

// A clinician signs in at the OP with Authorization Code + PKCE (S256), the
// OP checks the verifier, the roles claim makes them a clinician who can
// release their patient's hold; Sign out ends the OP's session too (RP-
// initiated logout), so the next sign-in asks for the password again.
func TestWebOIDCProviderClinician(t *testing.T) {
	ctx := browser(t)
	o, e, _ := newOPEnv(t)
	holdID := e.heldPathology(t, "OP1")

	// The page learns the OP's endpoints, end_session included, from discovery.
	r := e.do(t, "", "GET", "/api/auth/config", "", nil)
	oc, _ := r.body["oidc"].(map[string]any)
	for k, want := range map[string]string{
		"authorization_endpoint": o.srv.URL + o.authorizePath(), "token_endpoint": o.srv.URL + o.tokenPath(),
		"end_session_endpoint": o.srv.URL + o.endSessionPath(), "post_logout_path": "/", "client_id": oidcClientID,
	} {
		if got, _ := oc[k].(string); got != want {
			t.Errorf("GET /api/auth/config %s = %q, want %q (answer %s)", k, got, want, r.raw)
		}
	}

	if err := opFormSignIn(ctx, e, opDelta, `//table[@id="holds"]/tbody/tr`); err != nil || pageError(ctx) != "" {
		t.Fatalf("sign-in at the OP: %v %q", err, pageError(ctx))
	}
	who, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("who")))
	if err != nil || who != opDelta.name+" (clinician)" {
		t.Errorf("signed in as %q (%v), want %q", who, err, opDelta.name+" (clinician)")
	}

	// PKCE: the page sent an S256 challenge, redeemed the code with its
	// verifier, and the OP (which requires PKCE of a public client) accepted.
	authz, tokens := o.requests(o.authorizePath()), o.requests(o.tokenPath())
	if len(authz) != 1 || len(tokens) != 1 {
		t.Fatalf("%d authorization and %d token requests, want one each", len(authz), len(tokens))
	}
	q, f := authz[0].query, tokens[0].form
	if q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43 || q.Get("client_id") != oidcClientID ||
		q.Get("redirect_uri") != e.base+"/oidc/callback" || q.Get("scope") != "openid profile" || q.Get("response_type") != "code" {
		t.Errorf("authorization request %v, want code flow with an S256 challenge for %s", q, oidcClientID)
	}
	if v := f.Get("code_verifier"); len(v) < 43 || oidc.NewSHACodeChallenge(v) != q.Get("code_challenge") {
		t.Errorf("code_verifier %q does not hash (S256) to the challenge %q", v, q.Get("code_challenge"))
	}
	if f.Get("client_secret") != "" || tokens[0].status != http.StatusOK || tokens[0].origin != e.base {
		t.Errorf("token request: status %d from %q, secret sent %v; want 200 from the page's origin, no secret", tokens[0].status, tokens[0].origin, f.Get("client_secret") != "")
	}

	// The role claim: a clinician releases the hold of their patient (npi D001).
	const note = "Dr Delta will phone you tomorrow morning about this result."
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#holds tbody tr button`)),
		chromedp.WaitVisible(chromedp.ID("note")),
		chromedp.SendKeys(chromedp.ID("note"), note),
		chromedp.Click(chromedp.CSS(`#release-form button[type="submit"]`)),
		orError(`//p[@id="status" and contains(., "Released to the patient portal")]`),
	)
	if msg := pageError(ctx); err != nil || msg != "" {
		t.Fatalf("release: %v %q", err, msg)
	}
	testutil.Eventually(t, 15*time.Second, "released result in the portal feed", func() bool {
		n, _, _ := feed(t, e.app.JetStream(), "portal.hl7.", "OP1")
		return n == 1
	})
	evs, err := e.app.Service().Audit(context.Background(), audit.Query{HoldID: holdID})
	if err != nil {
		t.Fatal(err)
	}
	released := slices.ContainsFunc(evs, func(ev audit.Event) bool {
		return ev.Kind == bus.AuditAccess && ev.Action == "hold.release" && ev.Actor == opDelta.name && ev.Role == "clinician"
	})
	if !released {
		t.Errorf("the audit trail of hold %s does not name %q releasing as a clinician", holdID, opDelta.name)
	}

	// Signed in: the worklist, with holds or (the only one released) without.
	const signedIn = `//table[@id="holds"]/tbody/tr | //p[@id="empty" and not(@hidden)]`

	// Forgetting the token in the tab alone (sign-out before RP-initiated
	// logout) leaves the OP session: the next sign-in needs no password.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`sessionStorage.clear(); true`)); err != nil {
		t.Fatal(err)
	}
	if err := opSessionSignIn(ctx, e, signedIn); err != nil || pageError(ctx) != "" {
		t.Fatalf("second sign-in on the OP session: %v %q", err, pageError(ctx))
	}
	if got := o.logins(); !slices.Equal(got, []string{"form u-delta", "session u-delta"}) {
		t.Errorf("OP sign-ins %q, want the form then the session", got)
	}

	// Sign out: the page sends the browser to the OP's end_session endpoint
	// with the ID token as hint; the OP ends its session and sends the browser
	// back to the page, which shows sign-in.
	idt := idToken(t, ctx)
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.rgBeforeSignOut = true; true`)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("signout"))); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 20*time.Second, "the page back from the OP's end_session", func() bool {
		back, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.rgBeforeSignOut === undefined && document.readyState === "complete" &&
			location.href === `+jsString(e.base+"/")+` && !document.getElementById("oidc").hidden && !document.getElementById("signin").hidden`))
		return err == nil && back
	})
	ends := o.requests(o.endSessionPath())
	if len(ends) != 1 {
		t.Fatalf("%d end_session requests, want 1", len(ends))
	}
	eq := ends[0].query
	if eq.Get("id_token_hint") != idt || eq.Get("client_id") != oidcClientID || eq.Get("post_logout_redirect_uri") != e.base+"/" || ends[0].status != http.StatusFound {
		t.Errorf("end_session request %v answered %d; want the ID token as hint, client %s, back to %s/, a redirect", eq, ends[0].status, oidcClientID, e.base)
	}
	if got := o.ended(); !slices.Equal(got, []string{"u-delta " + oidcClientID}) || o.sessions() != 0 {
		t.Errorf("OP sessions ended %q, %d live; want u-delta's ended, none live", got, o.sessions())
	}
	left, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(sessionStorage.getItem("rg-token") || "") + (sessionStorage.getItem("rg-method") || "") + document.getElementById("who").textContent`))
	if err != nil || left != "" {
		t.Errorf("after sign-out the tab still holds %q (%v)", left, err)
	}
	// The OP session is gone: signing in again asks for the password.
	if err := opFormSignIn(ctx, e, opDelta, signedIn); err != nil || pageError(ctx) != "" {
		t.Fatalf("sign-in after sign-out: %v %q", err, pageError(ctx))
	}
	if got := o.logins(); len(got) != 3 || got[2] != "form u-delta" {
		t.Errorf("OP sign-ins %q, want the third through the form", got)
	}
}

// jsString quotes s for a JavaScript expression.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// A compliance officer signed in at the OP sees the holds and the report,
// and no release: the page offers none and the API refuses one.
func TestWebOIDCProviderCompliance(t *testing.T) {
	ctx := browser(t)
	o, e, _ := newOPEnv(t)
	holdID := e.heldPathology(t, "OP2")

	if err := opFormSignIn(ctx, e, opCompliance, `//table[@id="holds"]/tbody/tr`); err != nil || pageError(ctx) != "" {
		t.Fatalf("sign-in at the OP: %v %q", err, pageError(ctx))
	}
	who, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("who")))
	if err != nil || who != opCompliance.name+" (compliance)" {
		t.Errorf("signed in as %q (%v), want %q", who, err, opCompliance.name+" (compliance)")
	}
	err = chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.ID("report-open")),
		chromedp.Click(chromedp.CSS(`#holds tbody tr button`)),
		chromedp.WaitVisible(chromedp.CSS(`#report mark`)),
	)
	if err != nil {
		t.Fatalf("open the hold: %v (%q)", err, pageError(ctx))
	}
	forms, err := chromedp.Run(ctx, chromedp.Evaluate[[]bool](`[document.getElementById("release-form").hidden, document.getElementById("override-form").hidden]`))
	if err != nil || len(forms) != 2 || !forms[0] || !forms[1] {
		t.Errorf("[release form hidden, override form hidden] = %v (%v), want both hidden for compliance", forms, err)
	}
	idt := idToken(t, ctx)
	if r := e.do(t, idt, "POST", "/api/holds/"+holdID+"/release", "application/json", []byte(`{"reason":"reviewed"}`)); r.status != http.StatusForbidden {
		t.Errorf("release with a compliance ID token: %d %s, want 403", r.status, r.raw)
	}
	if r := e.do(t, idt, "GET", "/api/me", "", nil); r.status != http.StatusOK || r.body["role"] != "compliance" || r.body["method"] != "oidc" {
		t.Errorf("GET /api/me: %d %s, want compliance by oidc", r.status, r.raw)
	}
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("back")),
		chromedp.WaitVisible(chromedp.ID("report-open")),
		chromedp.Click(chromedp.ID("report-open")),
		chromedp.WaitVisible(chromedp.CSS(`#rep-output svg.rep-chart`)),
	)
	if err != nil {
		t.Fatalf("open the report: %v (%q)", err, pageError(ctx))
	}
	if n, _, _ := feed(t, e.app.JetStream(), "portal.hl7.", "OP2"); n != 0 {
		t.Errorf("%d OP2 results reached the portal feed after compliance's attempt, want 0", n)
	}
	if len(o.requests(o.tokenPath())) != 1 {
		t.Errorf("token requests %d, want 1", len(o.requests(o.tokenPath())))
	}
}

// The OP's refusals and resultgate's: a code redeemed without the right PKCE
// verifier, an ID token already expired, one that expires while in use, and a
// valid ID token the same OP issued for another application.
func TestWebOIDCProviderRefused(t *testing.T) {
	ctx := browser(t)
	o, e, otherRedirect := newOPEnv(t)
	e.heldPathology(t, "OP3")
	signedIn := `//table[@id="holds"]/tbody/tr`

	t.Run("PKCE verifier mismatch", func(t *testing.T) {
		// Someone who holds the code but not the verifier: the OP refuses.
		o.mu.Lock()
		o.tamperVerifier = rand.Text() + rand.Text()
		o.mu.Unlock()
		err := opFormSignIn(ctx, e, opDelta, `//p[@id="status" and contains(., "invalid code_verifier")]`)
		if err != nil {
			t.Fatalf("sign-in with a replaced verifier: %v (status %q)", err, pageError(ctx))
		}
		if !strings.HasPrefix(pageError(ctx), "Sign-in with your organisation failed") {
			t.Errorf("status %q", pageError(ctx))
		}
		toks := o.requests(o.tokenPath())
		if len(toks) != 1 || toks[0].status != http.StatusBadRequest {
			t.Errorf("token requests %+v, want one refused", toks)
		}
		stored, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`sessionStorage.getItem("rg-token") === null && document.getElementById("worklist").hidden`))
		if err != nil || !stored {
			t.Errorf("after a refused code the page keeps a token or shows the worklist (%v)", err)
		}
		// The same outside the browser: the wrong verifier is refused, the right
		// one accepted, and no verifier at all is refused.
		if st, body := o.codeFlow(t, oidcClientID, e.base+"/oidc/callback", opDelta, rand.Text()+rand.Text()); st != 400 || body["error"] != "invalid_grant" {
			t.Errorf("wrong verifier: %d %v, want 400 invalid_grant", st, body)
		}
		if st, body := o.codeFlow(t, oidcClientID, e.base+"/oidc/callback", opDelta, ""); st != 200 || body["id_token"] == nil {
			t.Errorf("right verifier: %d %v, want 200 with an ID token", st, body)
		}
	})

	t.Run("expired on arrival", func(t *testing.T) {
		o.setIDTokenLifetime(oidcClientID, -time.Minute)
		defer o.setIDTokenLifetime(oidcClientID, 10*time.Minute)
		// The browser keeps the OP session from the sign-in above.
		if err := opSessionSignIn(ctx, e, `//p[@id="status" and contains(., "Your sign-in has expired")]`); err != nil {
			t.Fatalf("sign-in with an expired ID token: %v (status %q)", err, pageError(ctx))
		}
		st, body := o.codeFlow(t, oidcClientID, e.base+"/oidc/callback", opDelta, "")
		idt, _ := body["id_token"].(string)
		if st != 200 || idt == "" {
			t.Fatalf("code flow: %d %v", st, body)
		}
		if r := e.do(t, idt, "GET", "/api/me", "", nil); r.status != http.StatusUnauthorized || !strings.Contains(r.raw, "expired") {
			t.Errorf("GET /api/me with an expired ID token: %d %s, want 401 naming the expiry", r.status, r.raw)
		}
	})

	t.Run("expires while signed in", func(t *testing.T) {
		o.setIDTokenLifetime(oidcClientID, 8*time.Second) // long enough to sign in and call the API on a loaded machine
		defer o.setIDTokenLifetime(oidcClientID, 10*time.Minute)
		if err := opSessionSignIn(ctx, e, signedIn); err != nil || pageError(ctx) != "" {
			t.Fatalf("sign-in with a short-lived ID token: %v %q", err, pageError(ctx))
		}
		idt := idToken(t, ctx)
		if r := e.do(t, idt, "GET", "/api/me", "", nil); r.status != http.StatusOK {
			t.Fatalf("GET /api/me while the token lives: %d %s", r.status, r.raw)
		}
		if err := chromedp.Do(ctx, statusShows("Your sign-in has expired"), chromedp.WaitVisible(chromedp.ID("oidc-signin"))); err != nil {
			t.Fatalf("the page did not end the session at expiry: %v", err)
		}
		// The page's timer is a courtesy: the server refuses the token itself.
		if r := e.do(t, idt, "GET", "/api/me", "", nil); r.status != http.StatusUnauthorized || !strings.Contains(r.raw, "expired") {
			t.Errorf("GET /api/me after expiry: %d %s, want 401 naming the expiry", r.status, r.raw)
		}
	})

	t.Run("wrong audience", func(t *testing.T) {
		st, body := o.codeFlow(t, otherClientID, otherRedirect, opDelta, "")
		idt, _ := body["id_token"].(string)
		if st != 200 || idt == "" {
			t.Fatalf("code flow for %s: %d %v", otherClientID, st, body)
		}
		r := e.do(t, idt, "GET", "/api/me", "", nil)
		if r.status != http.StatusUnauthorized || !strings.Contains(r.raw, "audience") {
			t.Errorf("GET /api/me with an ID token for %s: %d %s, want 401 naming the audience", otherClientID, r.status, r.raw)
		}
		// Planted in the tab as if the page had received it: refused, with the reason.
		_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`sessionStorage.setItem("rg-token", `+jsString(idt)+`); sessionStorage.setItem("rg-method", "oidc"); true`))
		if err != nil {
			t.Fatal(err)
		}
		err = chromedp.Do(ctx, chromedp.Navigate(e.base+"/"), statusShows("resultgate did not accept it"))
		if err != nil {
			t.Fatalf("planted token: %v (status %q)", err, pageError(ctx))
		}
		if msg := pageError(ctx); !strings.Contains(msg, "audience") {
			t.Errorf("status %q, want the audience named", msg)
		}
		left, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`sessionStorage.getItem("rg-token") === null && document.getElementById("worklist").hidden`))
		if err != nil || !left {
			t.Errorf("after a wrong-audience token the page keeps it or shows the worklist (%v)", err)
		}
	})
}
