package e2e

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/resultgate/resultgate/router/audit"

	"github.com/chromedp/chromedp"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/resultgate/resultgate/app"
	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/bus"
)

// The OIDC client resultgate's page signs in as, and the synthetic user.
const (
	oidcClientID = "resultgate-web"
	oidcUserName = "Dr Delta Synthetic"
)

// oidcIssuer is a real OIDC issuer on loopback for the browser tests:
// discovery, JWKS, an /authorize that approves at once by redirecting back with
// a code, and a /token that checks the code, client, redirect URI and PKCE
// verifier (S256) and answers a public client with CORS headers for the page's
// origin and an RS256 ID token.
type oidcIssuer struct {
	srv *httptest.Server
	key *rsa.PrivateKey

	mu       sync.Mutex
	origin   string        // the page's origin (CORS and redirect URI)
	roles    any           // the roles claim; nil leaves it out
	lifetime time.Duration // ID token lifetime
	codes    map[string]oidcCode
	authzQ   url.Values     // the last /authorize query
	tokenReq []oidcTokenReq // every /token request
}

type oidcCode struct {
	challenge, nonce, redirectURI string
}

type oidcTokenReq struct {
	origin string
	status int
	err    string
}

func newOIDCIssuer(t *testing.T) *oidcIssuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	iss := &oidcIssuer{key: key, roles: []string{"offline_access", "clinician"}, lifetime: 10 * time.Minute, codes: map[string]oidcCode{}}
	mux := http.NewServeMux()
	iss.srv = httptest.NewServer(mux)
	t.Cleanup(iss.srv.Close)
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{
			"issuer": iss.srv.URL, "jwks_uri": iss.srv.URL + "/keys",
			"authorization_endpoint": iss.srv.URL + "/authorize", "token_endpoint": iss.srv.URL + "/token",
			"response_types_supported": []string{"code"}, "code_challenge_methods_supported": []string{"S256"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	mux.HandleFunc("GET /authorize", iss.authorize)
	mux.HandleFunc("/token", iss.token)
	return iss
}

func (iss *oidcIssuer) setPage(origin string) {
	iss.mu.Lock()
	iss.origin = origin
	iss.mu.Unlock()
}

func (iss *oidcIssuer) redirectURI() string { return iss.origin + "/oidc/callback" }

// authorize approves every well-formed request from the registered client.
func (iss *oidcIssuer) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	iss.mu.Lock()
	defer iss.mu.Unlock()
	iss.authzQ = q
	switch {
	case q.Get("client_id") != oidcClientID:
		http.Error(w, "unknown client", http.StatusBadRequest)
		return
	case q.Get("redirect_uri") != iss.redirectURI():
		http.Error(w, "redirect_uri not registered", http.StatusBadRequest)
		return
	case q.Get("response_type") != "code", q.Get("code_challenge_method") != "S256", len(q.Get("code_challenge")) != 43,
		q.Get("state") == "", q.Get("nonce") == "", !strings.Contains(" "+q.Get("scope")+" ", " openid "):
		http.Error(w, "bad authorization request", http.StatusBadRequest)
		return
	}
	code := rand.Text()
	iss.codes[code] = oidcCode{challenge: q.Get("code_challenge"), nonce: q.Get("nonce"), redirectURI: q.Get("redirect_uri")}
	back, _ := url.Parse(q.Get("redirect_uri"))
	back.RawQuery = url.Values{"code": {code}, "state": {q.Get("state")}}.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

// token redeems a code once, for the client that asked for it, with the PKCE
// verifier whose S256 hash is the challenge.
func (iss *oidcIssuer) token(w http.ResponseWriter, r *http.Request) {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	if o := r.Header.Get("Origin"); o != "" && o == iss.origin {
		w.Header().Set("Access-Control-Allow-Origin", o)
		w.Header().Set("Vary", "Origin")
	}
	if r.Method == http.MethodOptions {
		w.Header().Set("Access-Control-Allow-Methods", "POST")
		w.Header().Set("Access-Control-Allow-Headers", "Content-Type")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	fail := func(code string) {
		iss.tokenReq = append(iss.tokenReq, oidcTokenReq{origin: r.Header.Get("Origin"), status: 400, err: code})
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"error": code})
	}
	if r.Method != http.MethodPost || r.ParseForm() != nil {
		fail("invalid_request")
		return
	}
	c, ok := iss.codes[r.PostForm.Get("code")]
	delete(iss.codes, r.PostForm.Get("code")) // single use
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	switch {
	case r.PostForm.Get("grant_type") != "authorization_code":
		fail("unsupported_grant_type")
		return
	case !ok, r.PostForm.Get("redirect_uri") != c.redirectURI, r.PostForm.Get("client_id") != oidcClientID,
		base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge:
		fail("invalid_grant")
		return
	}
	now := time.Now()
	claims := map[string]any{
		"iss": iss.srv.URL, "aud": oidcClientID, "sub": "u-0001", "name": oidcUserName, "npi": "D001",
		"nonce": c.nonce, "iat": now.Unix(), "exp": now.Add(iss.lifetime).Unix(),
	}
	if iss.roles != nil {
		claims["roles"] = iss.roles
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: iss.key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
	if err != nil {
		fail("server_error")
		return
	}
	idt, err := jwt.Signed(sig).Claims(claims).Serialize()
	if err != nil {
		fail("server_error")
		return
	}
	iss.tokenReq = append(iss.tokenReq, oidcTokenReq{origin: r.Header.Get("Origin"), status: 200})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(map[string]any{"access_token": "opaque-" + rand.Text(), "token_type": "Bearer", "id_token": idt, "expires_in": int(iss.lifetime.Seconds())})
}

// newOIDCEnv is newAPIEnv's resultgate (Kentucky preset) with auth.oidc pointing
// at iss, and no tokens.
func newOIDCEnv(t *testing.T, iss *oidcIssuer) *apiEnv {
	t.Helper()
	cfg := kentuckyConfigWith(t, t.TempDir(), `
auth:
  oidc:
    issuer: `+iss.srv.URL+`
    audience: `+oidcClientID+`
    roles_claim: roles
    provider_claim: npi
    name_claim: name
    scopes: [openid, profile]
`)
	if _, err := app.AuthConfig(cfg); err != nil {
		t.Fatal(err)
	}
	e := startAPIEnv(t, cfg, map[string]string{})
	iss.setPage(e.base)
	return e
}

// orError waits until the element xpath names is visible or the page shows an
// error in its status line, so that a failed step fails at once with the
// page's own explanation rather than at the browser's time limit.
func orError(xpath string) chromedp.Action[chromedp.Void] {
	return chromedp.WaitVisible(chromedp.Search(xpath + ` | //p[@id="status" and contains(@class, "error")]`))
}

// pageError returns the status line when it shows an error, else "".
func pageError(ctx context.Context) string {
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("status").className === "error" ? document.getElementById("status").textContent : ""`))
	return s
}

// statusShows waits until the page's status line contains text.
func statusShows(text string) chromedp.Action[chromedp.Void] {
	return chromedp.WaitVisible(chromedp.Search(`//p[@id="status" and contains(., "` + text + `")]`))
}

func TestWebOIDCSignInAndRelease(t *testing.T) {
	ctx := browser(t)
	iss := newOIDCIssuer(t)
	e := newOIDCEnv(t, iss)
	holdID := e.heldPathology(t, "OIDC1")
	const note = "Dr Delta will phone you tomorrow morning about this result."

	// The page's CSP lets it reach the token endpoint and nothing else.
	resp, err := http.Get(e.base + "/oidc/callback")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self' "+iss.srv.URL+";") {
		t.Errorf("callback CSP = %q, want connect-src with the issuer's origin", csp)
	}
	if cc := resp.Header.Get("Cache-Control"); resp.StatusCode != 200 || cc != "no-store" {
		t.Errorf("GET /oidc/callback: %d, Cache-Control %q", resp.StatusCode, cc)
	}

	err = chromedp.Do(ctx,
		chromedp.Navigate(e.base+"/"),
		chromedp.WaitVisible(chromedp.ID("oidc-signin")),
		chromedp.Click(chromedp.ID("oidc-signin")),
		orError(`//table[@id="holds"]/tbody/tr`),
	)
	if msg := pageError(ctx); err != nil || msg != "" {
		t.Fatalf("OIDC sign-in: %v %q", err, msg)
	}
	who, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("who")))
	if err != nil || who != oidcUserName+" (clinician)" {
		t.Errorf("signed in as %q (%v), want %q", who, err, oidcUserName+" (clinician)")
	}
	// The code left the address bar; the PKCE secrets left the tab's storage;
	// the ID token is the bearer, as a pasted token would be.
	href, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href`))
	if err != nil || href != e.base+"/" {
		t.Errorf("address after sign-in %q (%v), want %q", href, err, e.base+"/")
	}
	stored, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[sessionStorage.getItem("rg-oidc") === null ? "" : "pending", sessionStorage.getItem("rg-method"), (sessionStorage.getItem("rg-token") || "").split(".").length.toString()]`))
	if err != nil || stored[0] != "" || stored[1] != "oidc" || stored[2] != "3" {
		t.Errorf("session storage after sign-in: %q %v (want no pending request, method oidc, a JWT)", stored, err)
	}
	iss.mu.Lock()
	q, reqs := iss.authzQ, append([]oidcTokenReq(nil), iss.tokenReq...)
	iss.mu.Unlock()
	if q.Get("scope") != "openid profile" || q.Get("code_challenge_method") != "S256" {
		t.Errorf("authorization request: %v", q)
	}
	if len(reqs) != 1 || reqs[0].status != 200 || reqs[0].origin != e.base {
		t.Errorf("token requests: %+v, want one cross-origin success from %s", reqs, e.base)
	}

	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#holds tbody tr button`)),
		chromedp.WaitVisible(chromedp.CSS(`#report mark`)),
		chromedp.WaitVisible(chromedp.ID("note")),
		chromedp.SendKeys(chromedp.ID("note"), note),
		chromedp.Click(chromedp.CSS(`#release-form button[type="submit"]`)),
		orError(`//p[@id="status" and contains(., "Released to the patient portal")]`),
	)
	if msg := pageError(ctx); err != nil || msg != "" {
		t.Fatalf("release: %v %q", err, msg)
	}
	testutil.Eventually(t, 15*time.Second, "released result in the portal feed", func() bool {
		n, _, _ := feed(t, e.app.JetStream(), "portal.hl7.", "OIDC1")
		return n == 1
	})

	// The audit trail names the person who signed in with the identity provider.
	evs, err := e.app.Service().Audit(context.Background(), audit.Query{HoldID: holdID})
	if err != nil {
		t.Fatal(err)
	}
	var released, read bool
	var seen []string
	for _, ev := range evs {
		seen = append(seen, ev.Kind+"/"+ev.Action+" by "+ev.Actor)
		if ev.Kind == bus.AuditAccess && ev.Action == "hold.release" && ev.Actor == oidcUserName && ev.Role == "clinician" {
			released = true
		}
		if ev.Kind == bus.AuditAccess && ev.Action == "hold.read" && ev.Actor == oidcUserName {
			read = true
		}
	}
	if !released || !read {
		t.Errorf("audit for hold %s: release by %q recorded %v, read recorded %v; events %q", holdID, oidcUserName, released, read, seen)
	}

	// Sign-out forgets the ID token.
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("signout")),
		chromedp.WaitVisible(chromedp.ID("oidc-signin")),
	)
	if err != nil {
		t.Fatal(err)
	}
	left, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(sessionStorage.getItem("rg-token") || "") + (sessionStorage.getItem("rg-method") || "") + document.getElementById("who").textContent`))
	if err != nil || left != "" {
		t.Errorf("after sign-out the tab still holds %q (%v)", left, err)
	}
}

// A signed, valid ID token whose roles claim names no resultgate role, or
// none at all, ends on the sign-in screen with the reason shown, and an answer
// that does not match the sign-in this tab started is refused.
func TestWebOIDCRefused(t *testing.T) {
	ctx := browser(t)
	iss := newOIDCIssuer(t)
	e := newOIDCEnv(t, iss)
	e.heldPathology(t, "OIDC2")

	for _, tc := range []struct {
		name  string
		roles any
	}{
		{"unknown role", []string{"nurse", "offline_access"}},
		{"no roles claim", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			iss.mu.Lock()
			iss.roles = tc.roles
			iss.mu.Unlock()
			err := chromedp.Do(ctx,
				chromedp.Navigate(e.base+"/"),
				chromedp.WaitVisible(chromedp.ID("oidc-signin")),
				chromedp.Click(chromedp.ID("oidc-signin")),
				statusShows("resultgate did not accept it"),
			)
			if err != nil {
				st, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("status")))
				t.Fatalf("refused sign-in: %v (status %q)", err, st)
			}
			st, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("status")))
			if err != nil || !strings.Contains(st, "no resultgate role") {
				t.Errorf("status %q (%v), want the reason (no resultgate role)", st, err)
			}
			state, err := chromedp.Run(ctx, chromedp.Evaluate[[]bool](`[document.getElementById("signin").hidden, document.getElementById("worklist").hidden,
				sessionStorage.getItem("rg-token") === null, document.getElementById("signout").hidden, location.pathname === "/" && location.search === ""]`))
			if err != nil || len(state) != 5 || state[0] || !state[1] || !state[2] || !state[3] || !state[4] {
				t.Errorf("after a refused sign-in [signin hidden, worklist hidden, no token, sign-out hidden, clean URL] = %v (%v)", state, err)
			}
		})
	}

	t.Run("forged state", func(t *testing.T) {
		iss.mu.Lock()
		iss.roles = []string{"clinician"}
		before := len(iss.tokenReq)
		iss.mu.Unlock()
		err := chromedp.Do(ctx,
			chromedp.Navigate(e.base+"/oidc/callback?code=stolen&state=forged"),
			statusShows("does not match a sign-in started in this tab"),
		)
		if err != nil {
			st, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("status")))
			t.Fatalf("forged callback: %v (status %q)", err, st)
		}
		href, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href`))
		if err != nil || href != e.base+"/" {
			t.Errorf("address after a forged callback %q (%v)", href, err)
		}
		iss.mu.Lock()
		after := len(iss.tokenReq)
		iss.mu.Unlock()
		if after != before {
			t.Errorf("the page redeemed a code it did not ask for (%d token requests)", after-before)
		}
	})
}

// When the ID token expires the page returns to the sign-in screen and says so.
func TestWebOIDCExpiry(t *testing.T) {
	ctx := browser(t)
	iss := newOIDCIssuer(t)
	iss.lifetime = 6 * time.Second
	e := newOIDCEnv(t, iss)
	err := chromedp.Do(ctx,
		chromedp.Navigate(e.base+"/"),
		chromedp.WaitVisible(chromedp.ID("oidc-signin")),
		chromedp.Click(chromedp.ID("oidc-signin")),
		orError(`//p[@id="empty" and not(@hidden)]`), // signed in: an empty worklist
	)
	if msg := pageError(ctx); err != nil || msg != "" {
		t.Fatalf("OIDC sign-in: %v %q", err, msg)
	}
	err = chromedp.Do(ctx,
		statusShows("Your sign-in has expired"),
		chromedp.WaitVisible(chromedp.ID("oidc-signin")),
	)
	if err != nil {
		t.Fatalf("expiry: %v", err)
	}
	left, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`sessionStorage.getItem("rg-token") === null && document.getElementById("worklist").hidden`))
	if err != nil || !left {
		t.Errorf("after expiry the token is kept or the worklist shown (%v)", err)
	}
	// The server refuses the expired token too: the page's timer is a courtesy.
	iss.mu.Lock()
	iss.lifetime = -time.Minute
	iss.mu.Unlock()
	err = chromedp.Do(ctx,
		chromedp.Navigate(e.base+"/"),
		chromedp.WaitVisible(chromedp.ID("oidc-signin")),
		chromedp.Click(chromedp.ID("oidc-signin")),
		statusShows("Your sign-in has expired"),
	)
	if err != nil {
		st, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("status")))
		t.Fatalf("sign-in with an already expired token: %v (status %q)", err, st)
	}
}
