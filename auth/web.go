package auth

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
)

// DefaultScopes are the scopes the web page asks for when auth.oidc.scopes is
// empty: an ID token (openid) with the user's name (profile).
var DefaultScopes = []string{"openid", "profile"}

// RedirectPath is the path on this server the identity provider sends the
// browser back to after sign-in (the redirect URI is the page's origin + this).
const RedirectPath = "/oidc/callback"

// PostLogoutPath is the path on this server the identity provider sends the
// browser back to after RP-initiated logout (the post-logout redirect URI is
// the page's origin + this): the page itself, which then shows its sign-in.
const PostLogoutPath = "/"

// WebConfig is what the web page needs for OIDC sign-in (Authorization Code
// with PKCE as a public client) and sign-out. Every field is public
// information: the same values are in the issuer's discovery document.
type WebConfig struct {
	Issuer                string   `json:"issuer"`
	ClientID              string   `json:"client_id"`
	AuthorizationEndpoint string   `json:"authorization_endpoint"`
	TokenEndpoint         string   `json:"token_endpoint"`
	Scopes                []string `json:"scopes"`
	RedirectPath          string   `json:"redirect_path"`
	// EndSessionEndpoint is the issuer's end_session_endpoint (OpenID Connect
	// RP-Initiated Logout 1.0), empty when the issuer does not offer one: the
	// page's Sign out then ends the session at the issuer too, and the issuer
	// sends the browser back to PostLogoutPath.
	EndSessionEndpoint string `json:"end_session_endpoint,omitempty"`
	PostLogoutPath     string `json:"post_logout_path,omitempty"`
}

// webClientID is the client ID the page signs in as: client_id, else audience.
func (c OIDCConfig) webClientID() string {
	if c.ClientID != "" {
		return c.ClientID
	}
	return c.Audience
}

// webScopes returns the configured scopes or DefaultScopes.
func (c OIDCConfig) webScopes() []string {
	if len(c.Scopes) == 0 {
		return slices.Clone(DefaultScopes)
	}
	return slices.Clone(c.Scopes)
}

// validateWeb checks the keys used by the web page's sign-in.
func (c OIDCConfig) validateWeb() error {
	if err := checkIssuerURL(c.Issuer); err != nil {
		return err
	}
	if c.ClientID != "" && c.ClientID != c.Audience {
		// The page's ID token is issued for the client ID, and the server
		// accepts only tokens whose aud is the audience.
		return fmt.Errorf("auth.oidc.client_id: %q must equal auth.oidc.audience %q (the server accepts only tokens issued for the audience)", c.ClientID, c.Audience)
	}
	for i, s := range c.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"\\") {
			return fmt.Errorf("auth.oidc.scopes[%d]: %q is not a single scope", i, s)
		}
		if slices.Contains(c.Scopes[:i], s) {
			return fmt.Errorf("auth.oidc.scopes[%d]: %q is listed twice", i, s)
		}
	}
	if len(c.Scopes) > 0 && !slices.Contains(c.Scopes, "openid") {
		return errors.New("auth.oidc.scopes: must include openid (the page signs in with the ID token)")
	}
	return nil
}

// checkIssuerURL requires an absolute https URL, or http on a loopback host
// (for a local test issuer): tokens and keys must not travel in the clear.
func checkIssuerURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("auth.oidc.issuer: %q is not an absolute http(s) URL", s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("auth.oidc.issuer: %q must not have a query or fragment", s)
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return fmt.Errorf("auth.oidc.issuer: %q must use https (http only on a loopback host)", s)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// discoveryEndpoints are the discovery-document fields the page needs.
type discoveryEndpoints struct {
	AuthorizationEndpoint string   `json:"authorization_endpoint"`
	TokenEndpoint         string   `json:"token_endpoint"`
	EndSessionEndpoint    string   `json:"end_session_endpoint"`
	CodeChallengeMethods  []string `json:"code_challenge_methods_supported"`
}

// webConfigFrom builds the page's sign-in settings from the discovery
// document, or explains why the page cannot offer OIDC sign-in.
func webConfigFrom(cfg *OIDCConfig, d discoveryEndpoints) (*WebConfig, error) {
	endpoints := []struct{ key, v string }{{"authorization_endpoint", d.AuthorizationEndpoint}, {"token_endpoint", d.TokenEndpoint}}
	if d.EndSessionEndpoint != "" {
		// Optional, but when offered the page sends the ID token there (as
		// id_token_hint), so it is held to the same rule as the others.
		endpoints = append(endpoints, struct{ key, v string }{"end_session_endpoint", d.EndSessionEndpoint})
	}
	for _, e := range endpoints {
		u, err := url.Parse(e.v)
		if e.v == "" || err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname()))) {
			return nil, fmt.Errorf("auth.oidc.issuer: discovery document's %s %q is not an https URL", e.key, e.v)
		}
	}
	// An issuer that lists its PKCE methods must list S256; one that lists none
	// may still support it (many do not advertise it), so the page tries.
	if len(d.CodeChallengeMethods) > 0 && !slices.Contains(d.CodeChallengeMethods, "S256") {
		return nil, fmt.Errorf("auth.oidc.issuer: the issuer does not support PKCE with S256 (code_challenge_methods_supported %v)", d.CodeChallengeMethods)
	}
	wc := &WebConfig{
		Issuer: cfg.Issuer, ClientID: cfg.webClientID(),
		AuthorizationEndpoint: d.AuthorizationEndpoint, TokenEndpoint: d.TokenEndpoint,
		Scopes: cfg.webScopes(), RedirectPath: RedirectPath,
	}
	if d.EndSessionEndpoint != "" {
		wc.EndSessionEndpoint, wc.PostLogoutPath = d.EndSessionEndpoint, PostLogoutPath
	}
	return wc, nil
}

// WebConfig returns the web page's OIDC sign-in settings, or nil when OIDC is
// not configured or the issuer cannot serve a browser sign-in (WebError says why).
func (a *Authenticator) WebConfig() *WebConfig {
	if a.web == nil {
		return nil
	}
	c := *a.web
	c.Scopes = slices.Clone(a.web.Scopes)
	return &c
}

// WebError says why OIDC is configured but the page cannot offer it, or nil.
func (a *Authenticator) WebError() error { return a.webErr }
