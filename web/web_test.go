package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRegisterWithOptions(t *testing.T) {
	tests := []struct {
		name, tokenEndpoint, wantConnect string
	}{
		{"token sign-in only", "", "connect-src 'self';"},
		{"oidc", "https://login.example.org/realms/h/protocol/openid-connect/token", "connect-src 'self' https://login.example.org;"},
		{"oidc on a port", "http://127.0.0.1:5556/token?x=1", "connect-src 'self' http://127.0.0.1:5556;"},
		{"not a URL", "/token", "connect-src 'self';"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mux := http.NewServeMux()
			RegisterWithOptions(mux, Options{TokenEndpoint: tt.tokenEndpoint})
			for _, c := range []struct{ path, cache string }{{"/", "no-cache"}, {"/oidc/callback?code=c&state=s", "no-store"}, {"/static/app.js", "no-cache"}} {
				rec := httptest.NewRecorder()
				mux.ServeHTTP(rec, httptest.NewRequest("GET", c.path, nil))
				csp := rec.Header().Get("Content-Security-Policy")
				if rec.Code != http.StatusOK || !strings.Contains(csp, tt.wantConnect) || !strings.Contains(csp, "script-src 'self';") {
					t.Errorf("GET %s: %d, CSP %q, want %q", c.path, rec.Code, csp, tt.wantConnect)
				}
				if got := rec.Header().Get("Cache-Control"); got != c.cache {
					t.Errorf("GET %s: Cache-Control %q, want %q", c.path, got, c.cache)
				}
				if got := rec.Header().Get("Referrer-Policy"); got != "no-referrer" {
					t.Errorf("GET %s: Referrer-Policy %q", c.path, got)
				}
			}
		})
	}
}
