package app

import (
	"context"
	"strings"
	"testing"

	"github.com/resultgate/resultgate/router/audit"

	"github.com/resultgate/resultgate/router/bus"
)

// The admin role issues and revokes tokens over the API; nobody else can, the
// hashes never leave the server, and a revoked token is refused at once.
func TestAPITokens(t *testing.T) {
	e := newAPIEnv(t)
	const jsonCT = "application/json"

	// Only admin.
	for _, who := range []string{"clinician", "oncall", "compliance"} {
		if r := e.do(t, who, "GET", "/api/tokens", "", nil); r.status != 403 {
			t.Errorf("%s GET /api/tokens: %d %s", who, r.status, r.raw)
		}
		if r := e.do(t, who, "POST", "/api/tokens", jsonCT, []byte(`{"name":"x","role":"admin"}`)); r.status != 403 {
			t.Errorf("%s POST /api/tokens: %d %s", who, r.status, r.raw)
		}
		if r := e.do(t, who, "DELETE", "/api/tokens/Dr%20Echo", "", nil); r.status != 403 {
			t.Errorf("%s DELETE /api/tokens: %d %s", who, r.status, r.raw)
		}
	}
	if r := e.do(t, "", "GET", "/api/tokens", "", nil); r.status != 401 {
		t.Errorf("anonymous GET /api/tokens: %d", r.status)
	}

	// The list names every token without its hash.
	r := e.do(t, "admin", "GET", "/api/tokens", "", nil)
	if r.status != 200 || !strings.Contains(r.raw, `"name":"Dr Echo"`) || !strings.Contains(r.raw, `"provider_id":"D002"`) {
		t.Fatalf("list: %d %s", r.status, r.raw)
	}
	if strings.Contains(r.raw, "sha256") || strings.Contains(r.raw, "rgt_") {
		t.Errorf("the list leaks hashes or tokens: %s", r.raw)
	}

	// Bad requests name the problem.
	for _, c := range []struct{ body, want string }{
		{`{"name":"Dr Fox","role":"surgeon"}`, "unknown role"},
		{`{"name":"Dr Fox","role":"clinician"}`, "provider ID"},
		{`{"name":" ","role":"admin"}`, "needs a name"},
		{`{"name":"x","role":"admin","extra":1}`, "unknown field"},
	} {
		if r := e.do(t, "admin", "POST", "/api/tokens", jsonCT, []byte(c.body)); r.status != 400 || !strings.Contains(r.raw, c.want) {
			t.Errorf("POST %s: %d %s, want 400 with %q", c.body, r.status, r.raw, c.want)
		}
	}

	// Issue a clinician token; it works at once and names its holder.
	r = e.do(t, "admin", "POST", "/api/tokens", jsonCT, []byte(`{"name":"Dr Fox","role":"clinician","provider_id":"D003"}`))
	tok, _ := r.body["token"].(string)
	if r.status != 201 || !strings.HasPrefix(tok, "rgt_") {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	me := e.do(t, tok, "GET", "/api/me", "", nil)
	if me.status != 200 || me.body["name"] != "Dr Fox" || me.body["role"] != "clinician" || me.body["provider_id"] != "D003" {
		t.Fatalf("the new token: %d %s", me.status, me.raw)
	}

	// Revoke it: refused from the next request on; revoking again is 404.
	if r := e.do(t, "admin", "DELETE", "/api/tokens/Dr%20Fox", "", nil); r.status != 200 || r.body["revoked"] != float64(1) {
		t.Fatalf("revoke: %d %s", r.status, r.raw)
	}
	if r := e.do(t, tok, "GET", "/api/me", "", nil); r.status != 401 {
		t.Errorf("revoked token: %d %s", r.status, r.raw)
	}
	if r := e.do(t, "admin", "DELETE", "/api/tokens/Dr%20Fox", "", nil); r.status != 404 {
		t.Errorf("second revoke: %d %s", r.status, r.raw)
	}
	r = e.do(t, "admin", "GET", "/api/tokens", "", nil)
	if !strings.Contains(r.raw, `"name":"Dr Fox","role":"clinician","provider_id":"D003"`) || !strings.Contains(r.raw, `"disabled":true`) {
		t.Errorf("the revoked token is not kept as disabled: %s", r.raw)
	}
	// A cross-site revoke is refused like every state change.
	if r := e.do(t, "admin", "DELETE", "/api/tokens/Dr%20Echo", "", nil, "Origin", "https://evil.example"); r.status != 403 {
		t.Errorf("cross-origin revoke: %d", r.status)
	}

	// Both actions are in the audit trail with the admin's name.
	evs, err := e.app.Service().Audit(context.Background(), audit.Query{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, ev := range evs {
		if ev.Kind == bus.AuditAccess && strings.HasPrefix(ev.Action, "token.") {
			if ev.Actor != "Integration Team" || ev.Role != "admin" {
				t.Errorf("token audit event: %+v", ev)
			}
			seen[ev.Action] = true
			if ev.Action == "token.create" && ev.Reason != "issued a clinician token for Dr Fox" {
				t.Errorf("token.create reason %q", ev.Reason)
			}
		}
	}
	if !seen["token.create"] || !seen["token.revoke"] {
		t.Errorf("audited token actions: %v", seen)
	}
}

// GET /api/config shows an admin the effective configuration, under the
// configuration file's own key names; other roles are refused.
func TestAPIConfig(t *testing.T) {
	e := newAPIEnv(t)
	for _, who := range []string{"clinician", "oncall", "compliance"} {
		if r := e.do(t, who, "GET", "/api/config", "", nil); r.status != 403 {
			t.Errorf("%s GET /api/config: %d", who, r.status)
		}
	}
	r := e.do(t, "admin", "GET", "/api/config", "", nil)
	if r.status != 200 {
		t.Fatalf("admin GET /api/config: %d %s", r.status, r.raw)
	}
	pol, _ := r.body["policy"].(map[string]any)
	if pol == nil || pol["jurisdiction"] != "US-KY" || r.body["durability"] == nil || r.body["mllp"] == nil {
		t.Errorf("config: %s", r.raw)
	}
}
