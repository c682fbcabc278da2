package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// testOP is a real OpenID Provider on loopback: the authorization, token,
// userinfo, end_session, keys and discovery endpoints are zitadel/oidc's
// (github.com/zitadel/oidc/v3/pkg/op), the implementation behind ZITADEL's
// login, and the test supplies what that package leaves to its user: the
// storage (opStorage, in memory) and the login page, a username and password
// form that also keeps an OP session (a cookie), so that a second sign-in
// while that session lives needs no password, as at a real identity provider.
//
// zitadel/oidc ships an in-memory storage under example/server/storage, but
// it is example code with fixed users and clients (no role claim, a fixed ID
// token lifetime, a fixed login path), so the tests carry their own.
//
// Every request to the OP passes through record, which keeps the
// authorization, token and end_session requests for the tests to inspect.
type testOP struct {
	srv      *httptest.Server
	provider *op.Provider
	store    *opStorage

	mu        sync.Mutex
	exchanges []opExchange
	// tamperVerifier, when set, replaces the code_verifier of the next token
	// request before the OP sees it (a code redeemed by someone who does not
	// hold the verifier).
	tamperVerifier string
}

// opExchange is one request the OP answered.
type opExchange struct {
	path   string
	origin string     // the Origin header (a browser's cross-origin fetch)
	query  url.Values // the query (authorize, end_session)
	form   url.Values // the form as the client sent it (token)
	status int
}

// opUser is a person who can sign in at the OP.
type opUser struct {
	id, username, password, name, npi string
	roles                             []string
}

// opClient is a client registered at the OP: a public client (no secret,
// PKCE required by the OP) of type user agent, as a single-page app is.
type opClient struct {
	id             string
	redirectURIs   []string
	postLogoutURIs []string
	loginURL       string
	idTokenLife    time.Duration
}

// GetID implements op.Client.
func (c *opClient) GetID() string { return c.id }

// RedirectURIs implements op.Client.
func (c *opClient) RedirectURIs() []string { return c.redirectURIs }

// PostLogoutRedirectURIs implements op.Client.
func (c *opClient) PostLogoutRedirectURIs() []string { return c.postLogoutURIs }

// ApplicationType implements op.Client: a browser app.
func (c *opClient) ApplicationType() op.ApplicationType { return op.ApplicationTypeUserAgent }

// AuthMethod implements op.Client: a public client, so the OP requires PKCE
// at the token endpoint.
func (c *opClient) AuthMethod() oidc.AuthMethod { return oidc.AuthMethodNone }

// ResponseTypes implements op.Client.
func (c *opClient) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}

// GrantTypes implements op.Client.
func (c *opClient) GrantTypes() []oidc.GrantType { return []oidc.GrantType{oidc.GrantTypeCode} }

// LoginURL implements op.Client.
func (c *opClient) LoginURL(id string) string {
	return c.loginURL + "?authRequestID=" + url.QueryEscape(id)
}

// AccessTokenType implements op.Client.
func (c *opClient) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeBearer }

// IDTokenLifetime implements op.Client.
func (c *opClient) IDTokenLifetime() time.Duration { return c.idTokenLife }

// DevMode implements op.Client. zitadel/oidc refuses an http redirect URI for
// a user-agent client unless the client is in dev mode; resultgate's test
// instance listens on http://127.0.0.1, so its client is (a deployment's
// page is https and needs no such flag).
func (c *opClient) DevMode() bool { return true }

// RestrictAdditionalIdTokenScopes implements op.Client: no restriction.
func (c *opClient) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// RestrictAdditionalAccessTokenScopes implements op.Client: no restriction.
func (c *opClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// IsScopeAllowed implements op.Client: only the standard scopes.
func (c *opClient) IsScopeAllowed(string) bool { return false }

// IDTokenUserinfoClaimsAssertion implements op.Client: the ID token carries
// the profile claims (name), as resultgate's name_claim expects.
func (c *opClient) IDTokenUserinfoClaimsAssertion() bool { return true }

// ClockSkew implements op.Client.
func (c *opClient) ClockSkew() time.Duration { return 0 }

// opAuthRequest is an authorization request in progress, then the code's
// request until it is redeemed.
type opAuthRequest struct {
	id       string
	req      oidc.AuthRequest
	created  time.Time
	userID   string
	authTime time.Time
	amr      []string
	done     bool
}

// GetID implements op.AuthRequest.
func (a *opAuthRequest) GetID() string { return a.id }

// GetACR implements op.AuthRequest.
func (a *opAuthRequest) GetACR() string { return "" }

// GetAMR implements op.AuthRequest.
func (a *opAuthRequest) GetAMR() []string { return a.amr }

// GetAudience implements op.AuthRequest: the ID token is for the client.
func (a *opAuthRequest) GetAudience() []string { return []string{a.req.ClientID} }

// GetAuthTime implements op.AuthRequest.
func (a *opAuthRequest) GetAuthTime() time.Time { return a.authTime }

// GetClientID implements op.AuthRequest.
func (a *opAuthRequest) GetClientID() string { return a.req.ClientID }

// GetCodeChallenge implements op.AuthRequest.
func (a *opAuthRequest) GetCodeChallenge() *oidc.CodeChallenge {
	if a.req.CodeChallenge == "" {
		return nil
	}
	return &oidc.CodeChallenge{Challenge: a.req.CodeChallenge, Method: a.req.CodeChallengeMethod}
}

// GetNonce implements op.AuthRequest.
func (a *opAuthRequest) GetNonce() string { return a.req.Nonce }

// GetRedirectURI implements op.AuthRequest.
func (a *opAuthRequest) GetRedirectURI() string { return a.req.RedirectURI }

// GetResponseType implements op.AuthRequest.
func (a *opAuthRequest) GetResponseType() oidc.ResponseType { return a.req.ResponseType }

// GetResponseMode implements op.AuthRequest.
func (a *opAuthRequest) GetResponseMode() oidc.ResponseMode { return a.req.ResponseMode }

// GetScopes implements op.AuthRequest.
func (a *opAuthRequest) GetScopes() []string { return a.req.Scopes }

// GetState implements op.AuthRequest.
func (a *opAuthRequest) GetState() string { return a.req.State }

// GetSubject implements op.AuthRequest.
func (a *opAuthRequest) GetSubject() string { return a.userID }

// Done implements op.AuthRequest: the user has signed in.
func (a *opAuthRequest) Done() bool { return a.done }

// opToken is an issued access token.
type opToken struct {
	id, subject, clientID string
	audience, scopes      []string
	expires               time.Time
}

// opKey is the OP's RSA signing key, as both op.SigningKey and op.Key.
type opKey struct {
	id  string
	key *rsa.PrivateKey
}

// SignatureAlgorithm implements op.SigningKey.
func (k opKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }

// Algorithm implements op.Key.
func (k opKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }

// ID implements op.SigningKey and op.Key: the kid.
func (k opKey) ID() string { return k.id }

// Use implements op.Key.
func (k opKey) Use() string { return "sig" }

// opPublicKey is the signing key as the key set publishes it.
type opPublicKey struct{ opKey }

// Key returns the private key for signing.
func (k opKey) Key() any { return k.key }

// Key returns the public key for the key set.
func (k opPublicKey) Key() any { return &k.key.PublicKey }

// Lifetimes the OP applies: codes are redeemable for a minute (RFC 6749
// §4.1.2 recommends at most ten), an unfinished sign-in lasts ten minutes,
// access tokens five.
const (
	opCodeLife        = time.Minute
	opAuthRequestLife = 10 * time.Minute
	opAccessTokenLife = 5 * time.Minute
)

// errNotFound is what the storage answers for an unknown ID, code or token.
var errNotFound = errors.New("not found")

// opStorage implements op.Storage in memory.
type opStorage struct {
	key opKey

	mu         sync.Mutex
	clients    map[string]*opClient
	users      map[string]*opUser // by username
	authReqs   map[string]*opAuthRequest
	codes      map[string]string    // code -> auth request ID
	codeIssued map[string]time.Time // code -> when
	tokens     map[string]*opToken
	sessions   map[string]string // OP session cookie -> user ID
	logins     []string          // "form <user ID>" or "session <user ID>", per completed sign-in
	ended      []string          // "<user ID> <client ID>", per ended session
}

var _ op.Storage = (*opStorage)(nil)

func (s *opStorage) userByID(id string) *opUser {
	for _, u := range s.users {
		if u.id == id {
			return u
		}
	}
	return nil
}

// CreateAuthRequest implements op.AuthStorage.
func (s *opStorage) CreateAuthRequest(_ context.Context, req *oidc.AuthRequest, userID string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := &opAuthRequest{id: rand.Text(), req: *req, created: time.Now(), userID: userID}
	s.authReqs[a.id] = a
	return a, nil
}

// AuthRequestByID implements op.AuthStorage.
func (s *opStorage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.authReqs[id]
	if !ok || time.Since(a.created) > opAuthRequestLife {
		return nil, fmt.Errorf("auth request %q: %w", id, errNotFound)
	}
	return a, nil
}

// AuthRequestByCode implements op.AuthStorage.
func (s *opStorage) AuthRequestByCode(_ context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.codes[code]
	if !ok || time.Since(s.codeIssued[code]) > opCodeLife {
		return nil, fmt.Errorf("code: %w", errNotFound)
	}
	a, ok := s.authReqs[id]
	if !ok {
		return nil, fmt.Errorf("code's auth request: %w", errNotFound)
	}
	return a, nil
}

// SaveAuthCode implements op.AuthStorage.
func (s *opStorage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.authReqs[id]; !ok {
		return fmt.Errorf("auth request %q: %w", id, errNotFound)
	}
	s.codes[code], s.codeIssued[code] = id, time.Now()
	return nil
}

// DeleteAuthRequest implements op.AuthStorage: the OP calls it once a code is
// redeemed, so that a code works once.
func (s *opStorage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.authReqs, id)
	for code, rid := range s.codes {
		if rid == id {
			delete(s.codes, code)
			delete(s.codeIssued, code)
		}
	}
	return nil
}

// CreateAccessToken implements op.AuthStorage.
func (s *opStorage) CreateAccessToken(_ context.Context, req op.TokenRequest) (string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := &opToken{id: rand.Text(), subject: req.GetSubject(), audience: req.GetAudience(), scopes: req.GetScopes(), expires: time.Now().Add(opAccessTokenLife)}
	if a, ok := req.(op.AuthRequest); ok {
		t.clientID = a.GetClientID()
	}
	s.tokens[t.id] = t
	return t.id, t.expires, nil
}

// CreateAccessAndRefreshTokens implements op.AuthStorage. No client here is
// registered for the refresh_token grant, so the OP never issues one.
func (s *opStorage) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, oidc.ErrUnsupportedGrantType().WithDescription("this OP issues no refresh tokens")
}

// TokenRequestByRefreshToken implements op.AuthStorage (no refresh tokens).
func (s *opStorage) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, op.ErrInvalidRefreshToken
}

// TerminateSession implements op.AuthStorage: RP-initiated logout ends the
// user's OP sessions and revokes the client's access tokens for the user.
func (s *opStorage) TerminateSession(_ context.Context, userID, clientID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for sid, uid := range s.sessions {
		if uid == userID {
			delete(s.sessions, sid)
		}
	}
	for id, t := range s.tokens {
		if t.subject == userID && t.clientID == clientID {
			delete(s.tokens, id)
		}
	}
	s.ended = append(s.ended, userID+" "+clientID)
	return nil
}

// RevokeToken implements op.AuthStorage for access tokens.
func (s *opStorage) RevokeToken(_ context.Context, tokenID, userID, clientID string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[tokenID]
	if !ok {
		return nil // RFC 7009 §2.2: an unknown token is not an error
	}
	if t.clientID != clientID || (userID != "" && t.subject != userID) {
		return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
	}
	delete(s.tokens, tokenID)
	return nil
}

// GetRefreshTokenInfo implements op.AuthStorage (no refresh tokens).
func (s *opStorage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}

// SigningKey implements op.AuthStorage.
func (s *opStorage) SigningKey(context.Context) (op.SigningKey, error) { return s.key, nil }

// SignatureAlgorithms implements op.AuthStorage.
func (s *opStorage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

// KeySet implements op.AuthStorage: the public half of the signing key.
func (s *opStorage) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{opPublicKey{s.key}}, nil
}

// GetClientByClientID implements op.OPStorage.
func (s *opStorage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok {
		return nil, fmt.Errorf("client %q: %w", id, errNotFound)
	}
	cp := *c
	return &cp, nil
}

// AuthorizeClientIDSecret implements op.OPStorage: every client here is
// public, so no secret is ever right.
func (s *opStorage) AuthorizeClientIDSecret(_ context.Context, id, _ string) error {
	return fmt.Errorf("client %q is public and has no secret", id)
}

// SetUserinfoFromScopes implements op.OPStorage; zitadel/oidc asks for it to
// stay empty in favour of SetUserinfoFromRequest.
func (s *opStorage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest implements op.CanSetUserinfoFromRequest: the ID
// token's claims.
func (s *opStorage) SetUserinfoFromRequest(_ context.Context, ui *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.setUserinfo(ui, req.GetSubject(), scopes)
}

// setUserinfo fills the claims for the scopes: sub always; name and
// preferred_username with profile; and, like an identity provider's role
// mapper, the roles and the provider ID (npi) whenever openid is asked for.
func (s *opStorage) setUserinfo(ui *oidc.UserInfo, userID string, scopes []string) error {
	u := s.userByID(userID)
	if u == nil {
		return fmt.Errorf("user %q: %w", userID, errNotFound)
	}
	for _, sc := range scopes {
		switch sc {
		case oidc.ScopeOpenID:
			ui.Subject = u.id
			if u.roles != nil {
				ui.AppendClaims("roles", u.roles)
			}
			if u.npi != "" {
				ui.AppendClaims("npi", u.npi)
			}
		case oidc.ScopeProfile:
			ui.Name, ui.PreferredUsername = u.name, u.username
		}
	}
	return nil
}

// liveToken returns the unexpired access token id issued to subject.
func (s *opStorage) liveToken(id, subject string) (*opToken, error) {
	t, ok := s.tokens[id]
	if !ok || time.Now().After(t.expires) || t.subject != subject {
		return nil, fmt.Errorf("access token: %w", errNotFound)
	}
	return t, nil
}

// SetUserinfoFromToken implements op.OPStorage: the userinfo endpoint.
func (s *opStorage) SetUserinfoFromToken(_ context.Context, ui *oidc.UserInfo, tokenID, subject, _ string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.liveToken(tokenID, subject)
	if err != nil {
		return err
	}
	return s.setUserinfo(ui, t.subject, t.scopes)
}

// SetIntrospectionFromToken implements op.OPStorage: a token is active for a
// client it was issued for.
func (s *opStorage) SetIntrospectionFromToken(_ context.Context, in *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.liveToken(tokenID, subject)
	if err != nil {
		return err
	}
	if !slices.Contains(t.audience, clientID) {
		return fmt.Errorf("access token not issued for %q", clientID)
	}
	ui := new(oidc.UserInfo)
	if err := s.setUserinfo(ui, t.subject, t.scopes); err != nil {
		return err
	}
	in.SetUserInfo(ui)
	in.Active, in.Scope, in.ClientID, in.Audience, in.Expiration = true, t.scopes, t.clientID, t.audience, oidc.FromTime(t.expires)
	return nil
}

// GetPrivateClaimsFromScopes implements op.OPStorage: the claims a JWT
// access token would carry beyond the standard ones (the roles).
func (s *opStorage) GetPrivateClaimsFromScopes(_ context.Context, userID, _ string, scopes []string) (map[string]any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.userByID(userID)
	if u == nil || !slices.Contains(scopes, oidc.ScopeOpenID) || u.roles == nil {
		return nil, nil
	}
	return map[string]any{"roles": u.roles}, nil
}

// GetKeyByIDAndClientID implements op.OPStorage: no client here registered a
// key for the JWT profile grant.
func (s *opStorage) GetKeyByIDAndClientID(_ context.Context, keyID, clientID string) (*jose.JSONWebKey, error) {
	return nil, fmt.Errorf("key %q of client %q: %w", keyID, clientID, errNotFound)
}

// ValidateJWTProfileScopes implements op.OPStorage: no service users.
func (s *opStorage) ValidateJWTProfileScopes(_ context.Context, userID string, _ []string) ([]string, error) {
	return nil, fmt.Errorf("service user %q: %w", userID, errNotFound)
}

// Health implements op.Storage.
func (s *opStorage) Health(context.Context) error { return nil }

// opSessionCookie is the OP's session cookie. Cookies are not separated by
// port, so the name says whose it is (resultgate's page uses none).
const opSessionCookie = "testop_session"

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Test OP sign-in</title></head>
<body><main><h1>Sign in</h1>{{if .Error}}<p id="login-error" role="alert">{{.Error}}</p>{{end}}
<form method="post" action="/login">
<input type="hidden" name="id" value="{{.ID}}">
<label>Username <input id="username" name="username" autocomplete="username"></label>
<label>Password <input id="password" name="password" type="password" autocomplete="current-password"></label>
<button id="login-submit" type="submit">Sign in</button>
</form></main></body></html>`))

// newTestOP starts the OP with users and the clients: id -> redirect URI
// (its post-logout redirect URI is the redirect URI's origin + "/").
func newTestOP(t *testing.T, users []opUser, clients map[string]string) *testOP {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	o := &testOP{store: &opStorage{
		key:     opKey{id: "op-" + rand.Text()[:8], key: key},
		clients: map[string]*opClient{}, users: map[string]*opUser{}, authReqs: map[string]*opAuthRequest{},
		codes: map[string]string{}, codeIssued: map[string]time.Time{}, tokens: map[string]*opToken{}, sessions: map[string]string{},
	}}
	mux := http.NewServeMux()
	o.srv = httptest.NewServer(mux)
	t.Cleanup(o.srv.Close)
	for i := range users {
		u := users[i]
		o.store.users[u.username] = &u
	}
	for id, redirect := range clients {
		o.setClient(id, redirect, 10*time.Minute)
	}
	var cryptoKey [32]byte
	if _, err := rand.Read(cryptoKey[:]); err != nil {
		t.Fatal(err)
	}
	cfg := &op.Config{CryptoKey: cryptoKey, CodeMethodS256: true, DefaultLogoutRedirectURI: "/signed-out"}
	// WithAllowInsecure: the issuer is http://127.0.0.1 (loopback only).
	o.provider, err = op.NewProvider(cfg, o.store, op.StaticIssuer(o.srv.URL), op.WithAllowInsecure())
	if err != nil {
		t.Fatal(err)
	}
	mux.HandleFunc("GET /login", o.login)
	mux.HandleFunc("POST /login", o.login)
	mux.HandleFunc("GET /signed-out", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "<!doctype html><title>Signed out</title><p id=\"signed-out\">You are signed out.</p>")
	})
	mux.Handle("/", o.record(o.provider))
	return o
}

// setClient registers (or replaces) a client whose ID tokens live for life.
func (o *testOP) setClient(id, redirectURI string, life time.Duration) {
	u, _ := url.Parse(redirectURI)
	c := &opClient{id: id, redirectURIs: []string{redirectURI}, postLogoutURIs: []string{u.Scheme + "://" + u.Host + "/"},
		loginURL: o.srv.URL + "/login", idTokenLife: life}
	o.store.mu.Lock()
	o.store.clients[id] = c
	o.store.mu.Unlock()
}

// setIDTokenLifetime changes the lifetime of the ID tokens issued to client
// from now on; a negative lifetime issues tokens that have already expired.
func (o *testOP) setIDTokenLifetime(client string, life time.Duration) {
	o.store.mu.Lock()
	o.store.clients[client].idTokenLife = life
	o.store.mu.Unlock()
}

// login is the OP's sign-in page: a live OP session signs its user in at
// once; otherwise the username and password form.
func (o *testOP) login(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	id := r.FormValue("authRequestID")
	if r.Method == http.MethodPost {
		id = r.PostFormValue("id")
	}
	s := o.store
	s.mu.Lock()
	a, ok := s.authReqs[id]
	if !ok || a.done {
		s.mu.Unlock()
		http.Error(w, "unknown or finished sign-in", http.StatusBadRequest)
		return
	}
	var user *opUser
	how := ""
	if c, err := r.Cookie(opSessionCookie); err == nil && s.sessions[c.Value] != "" {
		user, how = s.userByID(s.sessions[c.Value]), "session"
	} else if r.Method == http.MethodPost {
		u := s.users[r.PostFormValue("username")]
		if u != nil && subtle.ConstantTimeCompare([]byte(u.password), []byte(r.PostFormValue("password"))) == 1 {
			user, how = u, "form"
			sid := rand.Text()
			s.sessions[sid] = u.id
			http.SetCookie(w, &http.Cookie{Name: opSessionCookie, Value: sid, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
		}
	}
	if user == nil {
		s.mu.Unlock()
		data := struct{ ID, Error string }{ID: id}
		if r.Method == http.MethodPost {
			data.Error = "Wrong username or password."
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		loginPage.Execute(w, data)
		return
	}
	a.userID, a.authTime, a.amr, a.done = user.id, time.Now(), []string{"pwd"}, true
	s.logins = append(s.logins, how+" "+user.id)
	s.mu.Unlock()
	http.Redirect(w, r, op.AuthCallbackURL(o.provider)(op.ContextWithIssuer(r.Context(), o.srv.URL), id), http.StatusFound)
}

// statusWriter keeps the status an http.Handler answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// record keeps the authorization, token and end_session requests.
func (o *testOP) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ex := opExchange{path: r.URL.Path, origin: r.Header.Get("Origin"), query: r.URL.Query()}
		if r.Method == http.MethodPost && r.URL.Path == o.provider.TokenEndpoint().Relative() {
			body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
			if err != nil {
				http.Error(w, "reading the body", http.StatusBadRequest)
				return
			}
			ex.form, _ = url.ParseQuery(string(body))
			o.mu.Lock()
			if o.tamperVerifier != "" {
				f, _ := url.ParseQuery(string(body))
				f.Set("code_verifier", o.tamperVerifier)
				body = []byte(f.Encode())
				o.tamperVerifier = ""
			}
			o.mu.Unlock()
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if r.Method == http.MethodOptions {
			return // a CORS preflight
		}
		ex.status = sw.status
		o.mu.Lock()
		o.exchanges = append(o.exchanges, ex)
		o.mu.Unlock()
	})
}

// requests returns the recorded requests to the endpoint at path.
func (o *testOP) requests(path string) []opExchange {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []opExchange
	for _, ex := range o.exchanges {
		if ex.path == path {
			out = append(out, ex)
		}
	}
	return out
}

// Endpoint paths of the OP.
func (o *testOP) authorizePath() string  { return o.provider.AuthorizationEndpoint().Relative() }
func (o *testOP) tokenPath() string      { return o.provider.TokenEndpoint().Relative() }
func (o *testOP) endSessionPath() string { return o.provider.EndSessionEndpoint().Relative() }

// logins returns how each completed sign-in was made.
func (o *testOP) logins() []string {
	o.store.mu.Lock()
	defer o.store.mu.Unlock()
	return slices.Clone(o.store.logins)
}

// ended returns the sessions RP-initiated logout ended.
func (o *testOP) ended() []string {
	o.store.mu.Lock()
	defer o.store.mu.Unlock()
	return slices.Clone(o.store.ended)
}

// sessions returns how many OP sessions are live.
func (o *testOP) sessions() int {
	o.store.mu.Lock()
	defer o.store.mu.Unlock()
	return len(o.store.sessions)
}

// codeFlow signs user in for client outside the browser, as another
// application would: authorization request with PKCE (S256), the login form,
// the redirect to redirectURI with the code, and the code redeemed with
// verifier (the right one when verifier is ""). It returns the token
// endpoint's status and answer.
func (o *testOP) codeFlow(t *testing.T, client, redirectURI string, user opUser, verifier string) (int, map[string]any) {
	t.Helper()
	right := rand.Text() + rand.Text()
	if verifier == "" {
		verifier = right
	}
	state, nonce := rand.Text(), rand.Text()
	q := url.Values{"response_type": {"code"}, "client_id": {client}, "redirect_uri": {redirectURI}, "scope": {"openid profile"},
		"state": {state}, "nonce": {nonce}, "code_challenge": {oidc.NewSHACodeChallenge(right)}, "code_challenge_method": {"S256"}}
	cl := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), redirectURI) {
			return http.ErrUseLastResponse // the code is for the application, not for the OP
		}
		return nil
	}}
	resp, err := cl.Get(o.srv.URL + o.authorizePath() + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.Path, "/login") {
		t.Fatalf("authorization request for %s: %d at %s, want the login form", client, resp.StatusCode, resp.Request.URL)
	}
	resp, err = cl.PostForm(o.srv.URL+"/login", url.Values{"id": {resp.Request.URL.Query().Get("authRequestID")}, "username": {user.username}, "password": {user.password}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	back, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound || back.Query().Get("state") != state || back.Query().Get("code") == "" {
		t.Fatalf("sign-in for %s: %d to %q (%v), want a redirect to %s with the code and state", client, resp.StatusCode, resp.Header.Get("Location"), err, redirectURI)
	}
	resp, err = cl.PostForm(o.srv.URL+o.tokenPath(), url.Values{"grant_type": {"authorization_code"}, "code": {back.Query().Get("code")},
		"redirect_uri": {redirectURI}, "client_id": {client}, "code_verifier": {verifier}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		t.Fatalf("token answer: %v", err)
	}
	return resp.StatusCode, body
}
