package config

import (
	"fmt"
	"strings"
)

// Role names one part of what `resultgate serve` runs, so that a site that
// outgrows one machine can run each part on its own hosts against one NATS
// cluster (roles:, serve --roles). Every instance serves /healthz, /readyz and
// /metrics on http.addr whatever its roles.
type Role string

const (
	// RoleIntake is the MLLP listener and the intake: store in HL7_IN, then ACK.
	RoleIntake Role = "intake"
	// RolePipeline is everything after the intake that runs by itself: the
	// classify consumers, the deadline scheduler, the feed reconciler and, when
	// enabled, the outbound MLLP forwarder.
	RolePipeline Role = "pipeline"
	// RoleAPI is what people and tools call: the NATS request/reply API
	// (resultgate.api.>), the HTTP API and the web page.
	RoleAPI Role = "api"
)

// AllRoles lists every role in the order serve starts them; it is the default.
var AllRoles = []Role{RoleIntake, RolePipeline, RoleAPI}

// ParseRoles splits a comma-separated list such as "intake,pipeline" (the
// value of serve --roles). It checks nothing: Validate names unknown, repeated
// and missing roles, for the flag and the file alike.
func ParseRoles(s string) []Role {
	out := []Role{}
	for _, r := range strings.Split(s, ",") {
		if r = strings.TrimSpace(r); r != "" {
			out = append(out, Role(r))
		}
	}
	return out
}

// HasRole reports whether the configuration runs role r.
func (c Config) HasRole(r Role) bool {
	for _, have := range c.Roles {
		if have == r {
			return true
		}
	}
	return false
}

// validateRoles names the problems of the roles key.
func (c Config) validateRoles(bad func(key, format string, args ...any)) {
	if len(c.Roles) == 0 {
		bad("roles", "must list at least one of intake, pipeline, api (leave it out to run all three)")
		return
	}
	seen := map[Role]bool{}
	for i, r := range c.Roles {
		key := fmt.Sprintf("roles[%d]", i)
		switch {
		case r != RoleIntake && r != RolePipeline && r != RoleAPI:
			bad(key, "unknown role %q: must be intake, pipeline or api", string(r))
		case seen[r]:
			bad(key, "%s is listed twice", string(r))
		}
		seen[r] = true
	}
}
