// Package audit owns the append-only audit trail: every decision, transition,
// override, Consent change, determination, dead letter, replay, hold read and
// denied request is an Event on the AUDIT stream (audit.<kind>.<bucket>, which
// denies delete and purge), written with a stable Nats-Msg-Id so a re-run
// stores it once; hold events (hold.<state>) go to HOLDS beside it. Trail.Query
// reads the trail back for the API and the compliance report.
//
// The trail is tamper-evident (chain.go, checkpoint.go, verify.go): every event
// carries the SHA-256 link of its predecessor (bus.HeaderAuditPrev), appended
// with optimistic concurrency on the stream's last sequence so instances share
// one chain; signed checkpoints (bus.KVAuditCheckpoints, HMAC keyed from the
// partition secret) pin the chain's state; Check (start, /readyz) and Verify
// (`resultgate audit verify`) report gaps, edits, truncation, deletion and
// changed protections.
//
// It may import router/bus, router/hold and policy; never the pipeline.
package audit
