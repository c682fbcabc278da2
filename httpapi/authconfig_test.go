package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/auth"
)

// discoveryServer is a loopback OIDC issuer serving only its discovery document.
func discoveryServer(t *testing.T) *httptest.Server {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{
			"issuer": srv.URL, "jwks_uri": srv.URL + "/keys",
			"authorization_endpoint": srv.URL + "/authorize", "token_endpoint": srv.URL + "/token",
			"code_challenge_methods_supported": []string{"S256"},
		})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestAuthConfigEndpoint(t *testing.T) {
	iss := discoveryServer(t)
	withOIDC, err := auth.New(context.Background(), auth.Config{OIDC: &auth.OIDCConfig{
		Issuer: iss.URL, Audience: "resultgate", RolesClaim: "roles", Scopes: []string{"openid", "profile", "email"}}})
	if err != nil {
		t.Fatal(err)
	}
	tokensOnly, err := auth.New(context.Background(), auth.Config{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		authn Authenticator
		want  string
	}{
		{"oidc", withOIDC, `{"oidc":{"issuer":"` + iss.URL + `","client_id":"resultgate","authorization_endpoint":"` + iss.URL +
			`/authorize","token_endpoint":"` + iss.URL + `/token","scopes":["openid","profile","email"],"redirect_path":"/oidc/callback"}}`},
		{"tokens only", tokensOnly, `{}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mux := http.NewServeMux()
			New(nil, tt.authn, zerolog.Nop()).Register(mux)
			srv := httptest.NewServer(mux)
			defer srv.Close()
			// No Authorization header: the page asks before anyone signs in.
			resp, err := http.Get(srv.URL + "/api/auth/config")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != tt.want {
				t.Errorf("GET /api/auth/config = %d %s, want 200 %s", resp.StatusCode, body, tt.want)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control = %q", cc)
			}
			// Only GET: the endpoint changes nothing.
			resp, err = http.Post(srv.URL+"/api/auth/config", "application/json", strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("POST /api/auth/config = %d, want 405", resp.StatusCode)
			}
		})
	}
}
