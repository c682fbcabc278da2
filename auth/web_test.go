package auth

import (
	"context"
	"reflect"
	"testing"
)

func TestConfigValidateWeb(t *testing.T) {
	base := func() OIDCConfig {
		return OIDCConfig{Issuer: "https://idp.example/realms/h", Audience: "resultgate", RolesClaim: "roles"}
	}
	tests := []struct {
		name string
		mod  func(*OIDCConfig)
		want string // "" = valid
	}{
		{"minimal", func(*OIDCConfig) {}, ""},
		{"client id equal to audience", func(c *OIDCConfig) { c.ClientID = "resultgate" }, ""},
		{"loopback http issuer", func(c *OIDCConfig) { c.Issuer = "http://127.0.0.1:5556/dex" }, ""},
		{"localhost http issuer", func(c *OIDCConfig) { c.Issuer = "http://localhost:8081" }, ""},
		{"scopes", func(c *OIDCConfig) { c.Scopes = []string{"openid", "profile", "email"} }, ""},
		{"client id differs", func(c *OIDCConfig) { c.ClientID = "resultgate-web" },
			`auth.oidc.client_id: "resultgate-web" must equal auth.oidc.audience "resultgate" (the server accepts only tokens issued for the audience)`},
		{"plain http issuer", func(c *OIDCConfig) { c.Issuer = "http://idp.example" },
			`auth.oidc.issuer: "http://idp.example" must use https (http only on a loopback host)`},
		{"relative issuer", func(c *OIDCConfig) { c.Issuer = "idp.example" },
			`auth.oidc.issuer: "idp.example" is not an absolute http(s) URL`},
		{"issuer with query", func(c *OIDCConfig) { c.Issuer = "https://idp.example/?x=1" },
			`auth.oidc.issuer: "https://idp.example/?x=1" must not have a query or fragment`},
		{"scopes without openid", func(c *OIDCConfig) { c.Scopes = []string{"profile"} },
			"auth.oidc.scopes: must include openid (the page signs in with the ID token)"},
		{"scope with a space", func(c *OIDCConfig) { c.Scopes = []string{"openid", "profile email"} },
			`auth.oidc.scopes[1]: "profile email" is not a single scope`},
		{"empty scope", func(c *OIDCConfig) { c.Scopes = []string{"openid", ""} },
			`auth.oidc.scopes[1]: "" is not a single scope`},
		{"duplicate scope", func(c *OIDCConfig) { c.Scopes = []string{"openid", "openid"} },
			`auth.oidc.scopes[1]: "openid" is listed twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.mod(&c)
			err := Config{OIDC: &c}.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate = %v, want nil", err)
			case tt.want != "" && (err == nil || err.Error() != tt.want):
				t.Errorf("Validate = %v, want %s", err, tt.want)
			}
		})
	}
}

func TestWebConfigFrom(t *testing.T) {
	cfg := &OIDCConfig{Issuer: "https://idp.example", Audience: "rg", RolesClaim: "roles"}
	good := discoveryEndpoints{AuthorizationEndpoint: "https://idp.example/auth", TokenEndpoint: "https://idp.example/token"}
	tests := []struct {
		name string
		cfg  *OIDCConfig
		d    discoveryEndpoints
		want *WebConfig
		err  string
	}{
		{"defaults", cfg, good, &WebConfig{Issuer: "https://idp.example", ClientID: "rg", AuthorizationEndpoint: "https://idp.example/auth",
			TokenEndpoint: "https://idp.example/token", Scopes: []string{"openid", "profile"}, RedirectPath: "/oidc/callback"}, ""},
		{"configured scopes, S256 listed", &OIDCConfig{Issuer: "https://idp.example", Audience: "rg", ClientID: "rg", Scopes: []string{"openid"}},
			discoveryEndpoints{AuthorizationEndpoint: good.AuthorizationEndpoint, TokenEndpoint: good.TokenEndpoint, CodeChallengeMethods: []string{"plain", "S256"}},
			&WebConfig{Issuer: "https://idp.example", ClientID: "rg", AuthorizationEndpoint: "https://idp.example/auth",
				TokenEndpoint: "https://idp.example/token", Scopes: []string{"openid"}, RedirectPath: "/oidc/callback"}, ""},
		{"plain PKCE only", cfg, discoveryEndpoints{AuthorizationEndpoint: good.AuthorizationEndpoint, TokenEndpoint: good.TokenEndpoint, CodeChallengeMethods: []string{"plain"}},
			nil, "auth.oidc.issuer: the issuer does not support PKCE with S256 (code_challenge_methods_supported [plain])"},
		{"no token endpoint", cfg, discoveryEndpoints{AuthorizationEndpoint: good.AuthorizationEndpoint},
			nil, `auth.oidc.issuer: discovery document's token_endpoint "" is not an https URL`},
		{"end session endpoint", cfg, discoveryEndpoints{AuthorizationEndpoint: good.AuthorizationEndpoint, TokenEndpoint: good.TokenEndpoint,
			EndSessionEndpoint: "https://idp.example/logout", CodeChallengeMethods: []string{"S256"}},
			&WebConfig{Issuer: "https://idp.example", ClientID: "rg", AuthorizationEndpoint: "https://idp.example/auth",
				TokenEndpoint: "https://idp.example/token", Scopes: []string{"openid", "profile"}, RedirectPath: "/oidc/callback",
				EndSessionEndpoint: "https://idp.example/logout", PostLogoutPath: "/"}, ""},
		{"http end session endpoint", cfg, discoveryEndpoints{AuthorizationEndpoint: good.AuthorizationEndpoint, TokenEndpoint: good.TokenEndpoint,
			EndSessionEndpoint: "http://idp.example/logout"},
			nil, `auth.oidc.issuer: discovery document's end_session_endpoint "http://idp.example/logout" is not an https URL`},
		{"relative end session endpoint", cfg, discoveryEndpoints{AuthorizationEndpoint: good.AuthorizationEndpoint, TokenEndpoint: good.TokenEndpoint,
			EndSessionEndpoint: "/logout"},
			nil, `auth.oidc.issuer: discovery document's end_session_endpoint "/logout" is not an https URL`},
		{"http authorization endpoint", cfg, discoveryEndpoints{AuthorizationEndpoint: "http://idp.example/auth", TokenEndpoint: good.TokenEndpoint},
			nil, `auth.oidc.issuer: discovery document's authorization_endpoint "http://idp.example/auth" is not an https URL`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := webConfigFrom(tt.cfg, tt.d)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err || got != nil {
					t.Errorf("webConfigFrom = %+v, %v; want error %s", got, err, tt.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("webConfigFrom = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// The Authenticator reads the endpoints from the issuer's discovery document.
func TestAuthenticatorWebConfig(t *testing.T) {
	iss := newTestIssuer(t)
	a, err := New(context.Background(), Config{OIDC: &OIDCConfig{Issuer: iss.srv.URL, Audience: "resultgate", RolesClaim: "roles"}})
	if err != nil {
		t.Fatal(err)
	}
	want := &WebConfig{Issuer: iss.srv.URL, ClientID: "resultgate", AuthorizationEndpoint: iss.srv.URL + "/auth",
		TokenEndpoint: iss.srv.URL + "/token", Scopes: []string{"openid", "profile"}, RedirectPath: "/oidc/callback"}
	if got := a.WebConfig(); !reflect.DeepEqual(got, want) || a.WebError() != nil {
		t.Errorf("WebConfig = %+v (%v), want %+v", got, a.WebError(), want)
	}
	// A caller changing the returned scopes does not change the Authenticator's.
	a.WebConfig().Scopes[0] = "changed"
	if a.WebConfig().Scopes[0] != "openid" {
		t.Error("WebConfig shares its Scopes slice")
	}
	noOIDC, err := New(context.Background(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	if noOIDC.WebConfig() != nil {
		t.Error("WebConfig without OIDC is not nil")
	}
}
