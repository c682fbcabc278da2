package httpapi

import (
	"net/http"

	"github.com/resultgate/resultgate/auth"
)

// webConfigurer is implemented by an Authenticator that can tell the web page
// how to sign in with the organisation's identity provider (*auth.Authenticator).
type webConfigurer interface {
	WebConfig() *auth.WebConfig
}

// authConfigBody is the answer of GET /api/auth/config. OIDC is absent when the
// page offers token sign-in only.
type authConfigBody struct {
	OIDC *auth.WebConfig `json:"oidc,omitempty"`
}

// authConfig serves GET /api/auth/config without authentication: the page
// needs it before anyone has signed in. It carries only public values (those
// of the issuer's discovery document and the public client's ID), never a
// secret: the page is a public client and uses PKCE instead.
func (a *API) authConfig(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	var body authConfigBody
	if wc, ok := a.auth.(webConfigurer); ok {
		body.OIDC = wc.WebConfig()
	}
	writeJSON(w, http.StatusOK, body)
}
