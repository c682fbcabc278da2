package app

import (
	"context"
	"net/http"
	"slices"

	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/router/bus"
)

// roles says which parts of resultgate this instance runs (config roles,
// serve --roles). Every instance connects to NATS and serves /healthz,
// /readyz and /metrics whatever its roles.
//
//   - intake: the MLLP listener and the intake (HL7_IN, DEAD).
//   - pipeline: the classify consumers, the deadline scheduler, the feed
//     reconciler and, when enabled, the outbound forwarder.
//   - api: the NATS request/reply API, the HTTP API and the web page, over a
//     Service that runs no background work of its own.
type roles struct{ intake, pipeline, api bool }

func rolesOf(cfg config.Config) roles {
	return roles{
		intake:   cfg.HasRole(config.RoleIntake),
		pipeline: cfg.HasRole(config.RolePipeline),
		api:      cfg.HasRole(config.RoleAPI),
	}
}

// service reports whether the instance needs the pipeline's Service (its hold
// view and release gate): the pipeline runs on it, the API calls it.
func (r roles) service() bool { return r.pipeline || r.api }

// intakeStreams are the streams the intake writes: the inbound messages and
// the dead letters of the messages it refuses. It uses no bucket.
var intakeStreams = []string{bus.StreamHL7In, bus.StreamDead}

// ensureNames returns the streams and buckets the instance creates or updates
// at start: each role ensures what it uses, idempotently, so that instances
// may start in any order. The pipeline and the API use every stream and
// bucket (releases write the feed, audit and hold events; replays write
// HL7_IN), so nil: all of them.
func (r roles) ensureNames() []string {
	if r.service() {
		return nil
	}
	return intakeStreams
}

// dependencies returns, per role this instance runs, the streams and buckets
// the role cannot work without.
func (r roles) dependencies() []roleDeps {
	var all roleDeps
	for _, c := range bus.StreamConfigs(bus.StreamsConfig{}) {
		all.streams = append(all.streams, c.Name)
	}
	for _, c := range bus.BucketConfigs(bus.StreamsConfig{}) {
		all.buckets = append(all.buckets, c.Bucket)
	}
	all.buckets = append(all.buckets, bus.KVDeterminations, bus.KVOrders) // pipeline.EnsureBuckets
	var out []roleDeps
	if r.intake {
		out = append(out, roleDeps{role: config.RoleIntake, streams: intakeStreams})
	}
	if r.pipeline {
		d := all
		d.role = config.RolePipeline
		out = append(out, d)
	}
	if r.api {
		d := all
		d.role = config.RoleAPI
		out = append(out, d)
	}
	return out
}

// roleDeps is what one role needs to exist on the NATS side.
type roleDeps struct {
	role             config.Role
	streams, buckets []string
}

// readyReport is the body of /readyz: the overall status ("ready", or the
// first role's reason prefixed with the role), and each role's own status.
type readyReport struct {
	Status string            `json:"status"`
	Roles  map[string]string `json:"roles,omitempty"`
}

// readiness checks the connection once, then every stream and bucket any of
// the instance's roles depends on once, and reports each role ready or the
// first thing it lacks.
func (a *App) readiness(ctx context.Context) (int, readyReport) {
	if a.stopping.Load() {
		return http.StatusServiceUnavailable, readyReport{Status: "shutting down"}
	}
	deps := a.roles.dependencies()
	rep := readyReport{Status: "ready", Roles: make(map[string]string, len(deps))}
	code := http.StatusOK
	fail := func(role config.Role, err error) {
		rep.Roles[string(role)] = err.Error()
		if code == http.StatusOK {
			code, rep.Status = http.StatusServiceUnavailable, string(role)+": "+err.Error()
		}
	}
	if err := bus.Reachable(ctx, a.js); err != nil {
		for _, d := range deps {
			fail(d.role, err)
		}
		rep.Status = err.Error() // the same reason for every role
		return code, rep
	}
	var streams, buckets []string
	for _, d := range deps {
		streams = appendNew(streams, d.streams...)
		buckets = appendNew(buckets, d.buckets...)
	}
	errs := bus.Missing(ctx, a.js, streams, buckets)
	missing := map[string]error{}
	for i, err := range errs {
		if i < len(streams) {
			missing["s:"+streams[i]] = err
		} else {
			missing["b:"+buckets[i-len(streams)]] = err
		}
	}
	// The audit trail's integrity, with what to do about it: a missing,
	// truncated or reconfigured AUDIT is reported with its recovery rather
	// than as a bare missing stream, for every role that writes the trail.
	var auditErr error
	if a.audit != nil {
		auditErr = a.audit.Ready(ctx)
	}
	for _, d := range deps {
		var err error
		if auditErr != nil && slices.Contains(d.streams, bus.StreamAudit) {
			err = auditErr
		}
		for _, s := range d.streams {
			if err != nil {
				break
			}
			err = missing["s:"+s]
		}
		for _, b := range d.buckets {
			if err != nil {
				break
			}
			err = missing["b:"+b]
		}
		if err != nil {
			fail(d.role, err)
			continue
		}
		rep.Roles[string(d.role)] = "ready"
	}
	return code, rep
}

// appendNew appends each of names not yet in list.
func appendNew(list []string, names ...string) []string {
	for _, n := range names {
		if !slices.Contains(list, n) {
			list = append(list, n)
		}
	}
	return list
}

// roleNames returns rs as strings (for the start log line).
func roleNames(rs []config.Role) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r)
	}
	return out
}

// warnRoles logs a configured part that this instance's roles leave unused,
// so that a setting without effect here does not pass silently.
func (a *App) warnRoles() {
	if a.secs.Forwarder.Enabled && !a.roles.pipeline {
		a.log.Warn().Strs("roles", roleNames(a.cfg.Roles)).
			Msg("forwarder.enabled has no effect on this instance: the forwarder runs on instances with the pipeline role")
	}
}
