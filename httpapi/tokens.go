package httpapi

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/resultgate/resultgate/auth"
)

// TokenAdmin is what the tokens routes need from the authenticator: the file it
// reads and a way to make it reread that file at once.
type TokenAdmin interface {
	TokensFile() string
	Reload() error
}

// WithTokens enables the admin routes that list, issue and revoke bearer
// tokens in ta's tokens file (GET/POST /api/tokens, DELETE /api/tokens/{name}).
func (a *API) WithTokens(ta TokenAdmin) *API {
	a.tokens = ta
	return a
}

// tokenView is a token as the API shows it: never its hash.
type tokenView struct {
	Name       string    `json:"name"`
	Role       auth.Role `json:"role"`
	ProviderID string    `json:"provider_id,omitempty"`
	Created    time.Time `json:"created"`
	Disabled   bool      `json:"disabled,omitempty"`
}

func (a *API) tokensPath() (string, error) {
	if a.tokens == nil || a.tokens.TokensFile() == "" {
		return "", newErr(http.StatusNotFound, "not_found", "this instance has no tokens file")
	}
	return a.tokens.TokensFile(), nil
}

func (a *API) listTokens(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	path, err := a.tokensPath()
	if err != nil {
		return err
	}
	entries, err := auth.ReadTokens(path)
	if err != nil {
		return err
	}
	out := make([]tokenView, 0, len(entries))
	for _, e := range entries {
		out = append(out, tokenView{Name: e.Name, Role: e.Role, ProviderID: e.ProviderID, Created: e.Created, Disabled: e.Disabled})
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": out})
	return nil
}

type newTokenBody struct {
	Name       string `json:"name"`
	Role       string `json:"role"`
	ProviderID string `json:"provider_id"`
}

func (a *API) createToken(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	path, err := a.tokensPath()
	if err != nil {
		return err
	}
	var b newTokenBody
	if err := decodeBody(w, r, &b); err != nil {
		return err
	}
	role, err := auth.ParseRole(b.Role)
	if err != nil {
		return newErr(http.StatusBadRequest, "bad_request", "role: %s", err)
	}
	tok, err := auth.NewToken(path, strings.TrimSpace(b.Name), role, strings.TrimSpace(b.ProviderID), time.Now())
	if err != nil {
		return newErr(http.StatusBadRequest, "bad_request", "%s", err)
	}
	if err := a.tokens.Reload(); err != nil {
		a.log.Error().Err(err).Msg("rereading the tokens file after issuing a token")
	}
	a.recordAdmin(r, p, "token.create", "issued "+role.Article()+" token for "+b.Name)
	// The token is in this answer once; only its hash is stored.
	writeJSON(w, http.StatusCreated, map[string]any{"token": tok, "name": b.Name, "role": role, "provider_id": b.ProviderID})
	return nil
}

func (a *API) revokeToken(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	path, err := a.tokensPath()
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	n, err := auth.DisableToken(path, name)
	if err != nil {
		return err
	}
	if n == 0 {
		return newErr(http.StatusNotFound, "not_found", "no active token named %q", name)
	}
	if err := a.tokens.Reload(); err != nil {
		a.log.Error().Err(err).Msg("rereading the tokens file after revoking a token")
	}
	a.recordAdmin(r, p, "token.revoke", "revoked the tokens of "+name)
	writeJSON(w, http.StatusOK, map[string]any{"name": name, "revoked": n})
	return nil
}

// recordAdmin audits an administrative action; a failure to audit is logged
// (the action has happened and cannot be undone by an audit error).
func (a *API) recordAdmin(r *http.Request, p auth.Principal, action, what string) {
	if err := a.access(r.Context(), p, action, "", what); err != nil {
		a.log.Error().Err(err).Str("action", action).Msg("audit write failed")
	}
}

// WithConfig enables GET /api/config (admin): the effective configuration
// this instance runs with, defaults filled in. It holds file paths, addresses
// and policy settings, no keys or passwords (those live in the files it names).
func (a *API) WithConfig(effective any) *API {
	a.config = effective
	return a
}

func (a *API) getConfig(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if a.config == nil {
		return newErr(http.StatusNotFound, "not_found", "this instance does not publish its configuration")
	}
	// Through YAML so the keys are the configuration file's own names.
	y, err := yaml.Marshal(a.config)
	if err != nil {
		return err
	}
	var m map[string]any
	if err := yaml.Unmarshal(y, &m); err != nil {
		return err
	}
	redactURLs(m)
	a.recordAdmin(r, p, "config.read", "read the effective configuration")
	writeJSON(w, http.StatusOK, m)
	return nil
}

// redactURLs replaces the password of every URL with user information in v
// (e.g. nats.url = nats://user:password@host) with "REDACTED".
func redactURLs(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = redactURLs(e)
		}
	case []any:
		for i, e := range x {
			x[i] = redactURLs(e)
		}
	case string:
		if u, err := url.Parse(x); err == nil && u.User != nil {
			if _, ok := u.User.Password(); ok {
				u.User = url.UserPassword(u.User.Username(), "REDACTED")
				return u.String()
			}
		}
	}
	return v
}
