// Package auth authenticates the people and systems that use resultgate's HTTP
// API: bearer tokens from a tokens file that stores only their SHA-256 hashes,
// and optionally OIDC/JWT bearer tokens verified against a configured issuer's
// published keys (github.com/coreos/go-oidc), with roles taken from a claim.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"go.yaml.in/yaml/v3"
)

// Role is what a principal may do.
type Role string

// Roles. A principal has exactly one.
const (
	// RoleClinician releases holds where they are the ordering provider or a
	// listed covering clinician.
	RoleClinician Role = "clinician"
	// RoleOnCall overrides any hold, with a reason.
	RoleOnCall Role = "oncall"
	// RoleCompliance reads the audit trail and reports; releases nothing.
	RoleCompliance Role = "compliance"
	// RoleAdmin manages tokens and configuration; releases nothing.
	RoleAdmin Role = "admin"
)

// Roles lists every role.
var Roles = []Role{RoleClinician, RoleOnCall, RoleCompliance, RoleAdmin}

// ParseRole returns the role named s.
func ParseRole(s string) (Role, error) {
	r := Role(strings.ToLower(strings.TrimSpace(s)))
	if slices.Contains(Roles, r) {
		return r, nil
	}
	return "", fmt.Errorf("%w %q (want clinician, oncall, compliance or admin)", ErrUnknownRole, s)
}

// Article returns the role with its indefinite article, for sentences:
// "an oncall", "an admin", "a clinician", "a compliance".
func (r Role) Article() string {
	if r != "" && strings.ContainsRune("aeiou", rune(r[0])) {
		return "an " + string(r)
	}
	return "a " + string(r)
}

// Principal is an authenticated caller.
type Principal struct {
	// Name identifies the person or system in the audit trail.
	Name string `json:"name"`
	Role Role   `json:"role"`
	// ProviderID is the clinician's provider identifier as senders put it in
	// ORC-12/OBR-16 (e.g. an NPI); it decides which holds a clinician may release.
	ProviderID string `json:"provider_id,omitempty"`
	// Method is "token" or "oidc".
	Method string `json:"method"`
}

// Errors.
var (
	// ErrNoCredentials means the request carried no bearer token.
	ErrNoCredentials = errors.New("no bearer token")
	// ErrInvalidCredentials means the token is unknown, expired or badly signed.
	ErrInvalidCredentials = errors.New("invalid bearer token")
	// ErrUnknownRole names a role resultgate does not have.
	ErrUnknownRole = errors.New("unknown role")
)

// TokenPrefix starts every token resultgate issues, so that it can tell its own
// tokens from JWTs and secret scanners can find leaked ones.
const TokenPrefix = "rgt_"

// TokenEntry is one issued token in the tokens file: its hash, never the token.
type TokenEntry struct {
	Name       string    `yaml:"name"`
	Role       Role      `yaml:"role"`
	ProviderID string    `yaml:"provider_id,omitempty"`
	SHA256     string    `yaml:"sha256"`
	Created    time.Time `yaml:"created"`
	// Disabled tokens are kept for the record and refused.
	Disabled bool `yaml:"disabled,omitempty"`
}

type tokensFile struct {
	Tokens []TokenEntry `yaml:"tokens"`
}

// hashToken returns the hex SHA-256 of a token. Tokens carry 256 random bits, so
// a plain hash is enough: there is nothing to brute-force.
func hashToken(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// ReadTokens reads and validates a tokens file (strict YAML).
func ReadTokens(path string) ([]TokenEntry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading tokens file: %w", err)
	}
	var f tokensFile
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && err.Error() != "EOF" {
		return nil, fmt.Errorf("tokens file %s: %w", path, err)
	}
	for i, e := range f.Tokens {
		if _, err := ParseRole(string(e.Role)); err != nil {
			return nil, fmt.Errorf("tokens file %s: tokens[%d].role: %w", path, i, err)
		}
		if len(e.SHA256) != 64 {
			return nil, fmt.Errorf("tokens file %s: tokens[%d].sha256: want 64 hex digits", path, i)
		}
		if e.Name == "" {
			return nil, fmt.Errorf("tokens file %s: tokens[%d].name: must be set", path, i)
		}
	}
	return f.Tokens, nil
}

// tokensMu serialises this process's read-modify-write cycles on tokens files
// (the HTTP API and the CLI code share these functions). Writes are atomic
// renames, so a reader never sees a partial file.
var tokensMu sync.Mutex

// DisableToken marks every token issued under name as disabled: it is kept in
// the file for the record and refused from then on (a running resultgate
// reloads the file within a second). It returns how many tokens it disabled;
// zero with no error means none was active under that name.
func DisableToken(path, name string) (int, error) {
	tokensMu.Lock()
	defer tokensMu.Unlock()
	entries, err := ReadTokens(path)
	if err != nil {
		return 0, err
	}
	n := 0
	for i := range entries {
		if entries[i].Name == name && !entries[i].Disabled {
			entries[i].Disabled = true
			n++
		}
	}
	if n == 0 {
		return 0, nil
	}
	return n, writeTokens(path, entries)
}

// writeTokens replaces the tokens file atomically (mode 0600).
func writeTokens(path string, entries []TokenEntry) error {
	out, err := yaml.Marshal(tokensFile{Tokens: entries})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, out, 0o600); err != nil {
		return fmt.Errorf("writing tokens file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing tokens file: %w", err)
	}
	return nil
}

// NewToken issues a token for name with role, appends its hash to the tokens file
// at path (created with mode 0600 when absent) and returns the token, which is
// shown once and stored nowhere.
func NewToken(path, name string, role Role, providerID string, now time.Time) (string, error) {
	if _, err := ParseRole(string(role)); err != nil {
		return "", err
	}
	if strings.TrimSpace(name) == "" {
		return "", errors.New("a token needs a name (who it is for)")
	}
	if role == RoleClinician && providerID == "" {
		return "", errors.New("a clinician token needs the clinician's provider ID (as in ORC-12/OBR-16)")
	}
	tokensMu.Lock()
	defer tokensMu.Unlock()
	var entries []TokenEntry
	if _, err := os.Stat(path); err == nil {
		if entries, err = ReadTokens(path); err != nil {
			return "", err
		}
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("generating token: %w", err)
	}
	tok := TokenPrefix + base64.RawURLEncoding.EncodeToString(raw)
	entries = append(entries, TokenEntry{Name: name, Role: role, ProviderID: providerID, SHA256: hashToken(tok), Created: now.UTC()})
	if err := writeTokens(path, entries); err != nil {
		return "", err
	}
	return tok, nil
}

// OIDCConfig configures verification of OIDC/JWT bearer tokens.
type OIDCConfig struct {
	// Issuer is the OIDC issuer URL; its discovery document names the keys.
	Issuer string `yaml:"issuer"`
	// Audience is the expected "aud" (the client ID registered for resultgate).
	Audience string `yaml:"audience"`
	// RolesClaim names the claim holding the role(s), a string or a list; a
	// dotted path reaches into objects (e.g. realm_access.roles).
	RolesClaim string `yaml:"roles_claim"`
	// ProviderClaim names the claim holding the clinician's provider ID.
	ProviderClaim string `yaml:"provider_claim"`
	// NameClaim names the claim used as the principal's name (default "sub").
	NameClaim string `yaml:"name_claim"`
	// ClientID is the public client the web page signs in as (Authorization
	// Code with PKCE); default Audience, and when set it must equal Audience.
	ClientID string `yaml:"client_id"`
	// Scopes the web page asks for; default DefaultScopes; must include openid.
	Scopes []string `yaml:"scopes"`
}

// Config is the `auth` section of resultgate's configuration.
type Config struct {
	// TokensFile is the tokens file; default DATA_DIR/tokens.yaml.
	TokensFile string      `yaml:"tokens_file"`
	OIDC       *OIDCConfig `yaml:"oidc"`
}

// Validate names the first problem by key.
func (c Config) Validate() error {
	if c.OIDC == nil {
		return nil
	}
	switch {
	case c.OIDC.Issuer == "":
		return errors.New("auth.oidc.issuer: must be set")
	case c.OIDC.Audience == "":
		return errors.New("auth.oidc.audience: must be set (the client ID tokens are issued for)")
	case c.OIDC.RolesClaim == "":
		return errors.New("auth.oidc.roles_claim: must be set")
	}
	return c.OIDC.validateWeb()
}

// Authenticator checks bearer credentials.
type Authenticator struct {
	tokensPath string
	now        func() time.Time

	mu       sync.Mutex
	byHash   map[string]TokenEntry
	modTime  time.Time
	size     int64
	checked  time.Time
	verifier *oidc.IDTokenVerifier
	oidcCfg  *OIDCConfig
	web      *WebConfig // nil: the page offers token sign-in only
	webErr   error
}

// reloadEvery bounds how often the tokens file is checked for changes, so that
// `resultgate token new` takes effect without a restart.
const reloadEvery = time.Second

// New returns an Authenticator. With cfg.OIDC set it fetches the issuer's
// discovery document (bounded by ctx).
func New(ctx context.Context, cfg Config) (*Authenticator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &Authenticator{tokensPath: cfg.TokensFile, now: time.Now, byHash: map[string]TokenEntry{}}
	if err := a.reload(true); err != nil {
		return nil, err
	}
	if cfg.OIDC != nil {
		p, err := oidc.NewProvider(ctx, cfg.OIDC.Issuer)
		if err != nil {
			return nil, fmt.Errorf("auth.oidc.issuer: %w", err)
		}
		a.verifier = p.Verifier(&oidc.Config{ClientID: cfg.OIDC.Audience})
		a.oidcCfg = cfg.OIDC
		var d discoveryEndpoints
		if err := p.Claims(&d); err != nil {
			a.webErr = fmt.Errorf("auth.oidc.issuer: discovery document: %w", err)
		} else {
			a.web, a.webErr = webConfigFrom(cfg.OIDC, d)
		}
	}
	return a, nil
}

// reload re-reads the tokens file when it changed.
func (a *Authenticator) reload(force bool) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	if !force && now.Sub(a.checked) < reloadEvery {
		return nil
	}
	a.checked = now
	if a.tokensPath == "" {
		return nil
	}
	st, err := os.Stat(a.tokensPath)
	if errors.Is(err, os.ErrNotExist) {
		a.byHash = map[string]TokenEntry{}
		return nil
	}
	if err != nil {
		return fmt.Errorf("tokens file: %w", err)
	}
	if !force && st.ModTime().Equal(a.modTime) && st.Size() == a.size {
		return nil
	}
	entries, err := ReadTokens(a.tokensPath)
	if err != nil {
		return err
	}
	m := make(map[string]TokenEntry, len(entries))
	for _, e := range entries {
		m[strings.ToLower(e.SHA256)] = e
	}
	a.byHash, a.modTime, a.size = m, st.ModTime(), st.Size()
	return nil
}

// Reload rereads the tokens file now (after a change made through the API, so
// that a revoked token is refused from the next request on).
func (a *Authenticator) Reload() error { return a.reload(true) }

// TokensFile is the tokens file this Authenticator reads ("" without one).
func (a *Authenticator) TokensFile() string { return a.tokensPath }

// Authenticate returns the principal behind the request's bearer token.
func (a *Authenticator) Authenticate(r *http.Request) (Principal, error) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if h == "" || !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return Principal{}, ErrNoCredentials
	}
	return a.AuthenticateToken(r.Context(), strings.TrimSpace(tok))
}

// AuthenticateToken returns the principal behind a bearer token.
func (a *Authenticator) AuthenticateToken(ctx context.Context, tok string) (Principal, error) {
	if strings.HasPrefix(tok, TokenPrefix) {
		// A broken tokens file keeps the last good set rather than locking everyone out.
		_ = a.reload(false)
		a.mu.Lock()
		e, ok := a.byHash[hashToken(tok)]
		a.mu.Unlock()
		if !ok || e.Disabled {
			return Principal{}, ErrInvalidCredentials
		}
		return Principal{Name: e.Name, Role: e.Role, ProviderID: e.ProviderID, Method: "token"}, nil
	}
	if a.verifier == nil {
		return Principal{}, ErrInvalidCredentials
	}
	idt, err := a.verifier.Verify(ctx, tok)
	if err != nil {
		return Principal{}, fmt.Errorf("%w: %v", ErrInvalidCredentials, err)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return Principal{}, fmt.Errorf("%w: %v", ErrInvalidCredentials, err)
	}
	role, err := roleFromClaim(claimAt(claims, a.oidcCfg.RolesClaim))
	if err != nil {
		return Principal{}, fmt.Errorf("%w: claim %s: %v", ErrInvalidCredentials, a.oidcCfg.RolesClaim, err)
	}
	name := idt.Subject
	if a.oidcCfg.NameClaim != "" {
		if s, ok := claimAt(claims, a.oidcCfg.NameClaim).(string); ok && s != "" {
			name = s
		}
	}
	p := Principal{Name: name, Role: role, Method: "oidc"}
	if a.oidcCfg.ProviderClaim != "" {
		p.ProviderID, _ = claimAt(claims, a.oidcCfg.ProviderClaim).(string)
	}
	return p, nil
}

// claimAt follows a dotted path into claims.
func claimAt(claims map[string]any, path string) any {
	var cur any = claims
	for _, part := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[part]
	}
	return cur
}

// roleFromClaim picks the most privileged resultgate role a claim value names:
// a list may carry roles of other applications too.
func roleFromClaim(v any) (Role, error) {
	var names []string
	switch x := v.(type) {
	case string:
		names = strings.Fields(x)
	case []any:
		for _, e := range x {
			if s, ok := e.(string); ok {
				names = append(names, s)
			}
		}
	}
	found := map[Role]bool{}
	for _, n := range names {
		if r, err := ParseRole(n); err == nil {
			found[r] = true
		}
	}
	// Order of preference when several are present: a person acting on call
	// needs override; admin and compliance never release.
	for _, r := range []Role{RoleOnCall, RoleClinician, RoleCompliance, RoleAdmin} {
		if found[r] {
			return r, nil
		}
	}
	return "", errors.New("no resultgate role")
}
