package auth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

func TestTokens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.yaml")
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	clin, err := NewToken(path, "Dr Delta", RoleClinician, "D001", now)
	if err != nil {
		t.Fatal(err)
	}
	comp, err := NewToken(path, "Compliance Office", RoleCompliance, "", now)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if strings.Contains(string(data), clin) || strings.Contains(string(data), comp) {
		t.Fatal("tokens file stores a token in the clear")
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("tokens file mode %v, want 0600", st.Mode().Perm())
	}
	a, err := New(context.Background(), Config{TokensFile: path})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		header string
		want   Principal
		err    error
	}{
		{"clinician", "Bearer " + clin, Principal{Name: "Dr Delta", Role: RoleClinician, ProviderID: "D001", Method: "token"}, nil},
		{"compliance lower-case scheme", "bearer " + comp, Principal{Name: "Compliance Office", Role: RoleCompliance, Method: "token"}, nil},
		{"no header", "", Principal{}, ErrNoCredentials},
		{"basic auth", "Basic dXNlcjpwYXNz", Principal{}, ErrNoCredentials},
		{"unknown token", "Bearer " + TokenPrefix + "AAAA", Principal{}, ErrInvalidCredentials},
		{"tampered token", "Bearer " + clin[:len(clin)-1] + "x", Principal{}, ErrInvalidCredentials},
		{"jwt without oidc", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x", Principal{}, ErrInvalidCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/api/holds", nil)
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			got, err := a.Authenticate(r)
			if !errors.Is(err, tt.err) || got != tt.want {
				t.Errorf("Authenticate = %+v, %v; want %+v, %v", got, err, tt.want, tt.err)
			}
		})
	}

	// A token issued while running is accepted without a restart.
	a.now = func() time.Time { return time.Now().Add(time.Hour) } // past the reload interval
	late, err := NewToken(path, "Dr Late", RoleOnCall, "", now)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := a.AuthenticateToken(context.Background(), late); err != nil || p.Role != RoleOnCall {
		t.Errorf("new token after reload: %+v %v", p, err)
	}
}

func TestNewTokenErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.yaml")
	now := time.Now()
	if _, err := NewToken(path, "x", "superuser", "", now); !errors.Is(err, ErrUnknownRole) {
		t.Errorf("bad role: %v", err)
	}
	if _, err := NewToken(path, "Dr Nobody", RoleClinician, "", now); err == nil || !strings.Contains(err.Error(), "provider ID") {
		t.Errorf("clinician without provider: %v", err)
	}
	if _, err := NewToken(path, " ", RoleAdmin, "", now); err == nil {
		t.Error("token without a name accepted")
	}
	os.WriteFile(path, []byte("tokens:\n  - name: a\n    role: admin\n    sha256: abc\n"), 0o600)
	if _, err := ReadTokens(path); err == nil || !strings.Contains(err.Error(), "tokens[0].sha256: want 64 hex digits") {
		t.Errorf("short hash: %v", err)
	}
	os.WriteFile(path, []byte("tokens:\n  - name: a\n    role: admin\n    sha: abc\n"), 0o600)
	if _, err := ReadTokens(path); err == nil || !strings.Contains(err.Error(), "field sha not found") {
		t.Errorf("unknown key: %v", err)
	}
}

// testIssuer is a minimal OIDC issuer on loopback: discovery and JWKS.
type testIssuer struct {
	srv *httptest.Server
	key *rsa.PrivateKey
}

func newTestIssuer(t *testing.T) *testIssuer {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	iss := &testIssuer{key: key}
	mux := http.NewServeMux()
	iss.srv = httptest.NewServer(mux)
	t.Cleanup(iss.srv.Close)
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{
			"issuer": iss.srv.URL, "jwks_uri": iss.srv.URL + "/keys",
			"authorization_endpoint": iss.srv.URL + "/auth", "token_endpoint": iss.srv.URL + "/token",
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("/keys", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	return iss
}

func (iss *testIssuer) sign(t *testing.T, key *rsa.PrivateKey, claims map[string]any) string {
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(sig).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestOIDC(t *testing.T) {
	iss := newTestIssuer(t)
	cfg := Config{OIDC: &OIDCConfig{Issuer: iss.srv.URL, Audience: "resultgate", RolesClaim: "realm_access.roles", ProviderClaim: "npi", NameClaim: "preferred_username"}}
	a, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	base := func() map[string]any {
		return map[string]any{
			"iss": iss.srv.URL, "aud": "resultgate", "sub": "u-1", "preferred_username": "dr.delta",
			"npi": "D001", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix(),
			"realm_access": map[string]any{"roles": []string{"offline_access", "clinician"}},
		}
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	tests := []struct {
		name  string
		mod   func(map[string]any)
		key   *rsa.PrivateKey
		want  Principal
		fails bool
	}{
		{"clinician", func(map[string]any) {}, nil, Principal{Name: "dr.delta", Role: RoleClinician, ProviderID: "D001", Method: "oidc"}, false},
		{"oncall preferred", func(c map[string]any) {
			c["realm_access"] = map[string]any{"roles": []string{"clinician", "oncall"}}
		}, nil, Principal{Name: "dr.delta", Role: RoleOnCall, ProviderID: "D001", Method: "oidc"}, false},
		{"expired", func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix() }, nil, Principal{}, true},
		{"wrong audience", func(c map[string]any) { c["aud"] = "other-app" }, nil, Principal{}, true},
		{"wrong issuer", func(c map[string]any) { c["iss"] = "https://evil.invalid" }, nil, Principal{}, true},
		{"signed by another key", func(map[string]any) {}, other, Principal{}, true},
		{"no resultgate role", func(c map[string]any) {
			c["realm_access"] = map[string]any{"roles": []string{"offline_access"}}
		}, nil, Principal{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.mod(c)
			key := iss.key
			if tt.key != nil {
				key = tt.key
			}
			got, err := a.AuthenticateToken(context.Background(), iss.sign(t, key, c))
			if tt.fails {
				if !errors.Is(err, ErrInvalidCredentials) {
					t.Errorf("want ErrInvalidCredentials, got %+v %v", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %+v %v, want %+v", got, err, tt.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg  OIDCConfig
		want string
	}{
		{OIDCConfig{}, "auth.oidc.issuer: must be set"},
		{OIDCConfig{Issuer: "https://idp"}, "auth.oidc.audience: must be set (the client ID tokens are issued for)"},
		{OIDCConfig{Issuer: "https://idp", Audience: "rg"}, "auth.oidc.roles_claim: must be set"},
	}
	for _, tt := range tests {
		c := tt.cfg
		if err := (Config{OIDC: &c}).Validate(); err == nil || err.Error() != tt.want {
			t.Errorf("Validate(%+v) = %v, want %s", tt.cfg, err, tt.want)
		}
	}
}

func TestRoleArticle(t *testing.T) {
	for r, want := range map[Role]string{
		RoleOnCall: "an oncall", RoleAdmin: "an admin", RoleClinician: "a clinician", RoleCompliance: "a compliance",
	} {
		if got := r.Article(); got != want {
			t.Errorf("%s.Article() = %q, want %q", r, got, want)
		}
	}
}
