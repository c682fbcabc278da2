// Package web serves resultgate's worklist page: static HTML, CSS and
// JavaScript embedded in the binary (no build step, no separate server). The
// page talks to the HTTP API with the signed-in user's bearer token, which it
// keeps in the tab's sessionStorage; it never puts identifiers in URLs.
//
// With OIDC configured the page also signs in with the organisation's identity
// provider: OAuth 2.0 Authorization Code with PKCE (RFC 7636, S256) as a public
// client (RFC 8252 §8, OAuth 2.0 for Browser-Based Apps), checking state and
// the ID token's nonce; the ID token becomes the bearer token.
package web

import (
	"embed"
	"io/fs"
	"net/http"
	"net/url"
)

//go:embed static
var static embed.FS

// Options adjust the page to the server's configuration.
type Options struct {
	// TokenEndpoint is the OIDC issuer's token endpoint, which the page calls
	// to redeem the authorization code; its origin is added to the CSP's
	// connect-src. Empty: token sign-in only.
	TokenEndpoint string
}

// CallbackPath is where the identity provider sends the browser back: it
// serves the page, which redeems the code (auth.RedirectPath).
const CallbackPath = "/oidc/callback"

// contentSecurityPolicy allows only this origin's scripts and styles: no inline
// script, no third-party content, no framing (clickjacking). connect may add
// the identity provider's token endpoint origin to connect-src.
func contentSecurityPolicy(connect string) string {
	if connect != "" {
		connect = " " + connect
	}
	return "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self'" + connect + "; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
}

// origin returns scheme://host of an absolute URL, or "" when it is not one.
func origin(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// Register mounts the page at / and its assets under /static/ (token sign-in only).
func Register(mux *http.ServeMux) { RegisterWithOptions(mux, Options{}) }

// RegisterWithOptions mounts the page at / and at CallbackPath, and its assets
// under /static/.
func RegisterWithOptions(mux *http.ServeMux, opts Options) {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	csp := contentSecurityPolicy(origin(opts.TokenEndpoint))
	files := http.FileServerFS(sub)
	secure := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Security-Policy", csp)
			w.Header().Set("X-Content-Type-Options", "nosniff")
			w.Header().Set("X-Frame-Options", "DENY")
			// no-referrer also keeps the authorization code in the callback
			// URL from leaking to anything the page loads.
			w.Header().Set("Referrer-Policy", "no-referrer")
			w.Header().Set("Cache-Control", "no-cache")
			h.ServeHTTP(w, r)
		})
	}
	index := func(cache string) http.Handler {
		return secure(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", cache)
			http.ServeFileFS(w, r, sub, "index.html")
		}))
	}
	mux.Handle("GET /static/", secure(http.StripPrefix("/static/", files)))
	mux.Handle("GET /{$}", index("no-cache"))
	// The callback URL carries the one-time code: never store the answer.
	mux.Handle("GET "+CallbackPath, index("no-store"))
}
