// Package audit owns the append-only audit trail: every decision, transition,
// override, Consent change, determination, dead letter, replay, hold read and
// denied request is an Event on the AUDIT stream (audit.<kind>.<bucket>, which
// denies delete and purge), written with a stable Nats-Msg-Id so a re-run
// stores it once; hold events (hold.<state>) go to HOLDS beside it. Trail.Query
// reads the trail back for the API and the compliance report.
//
// It may import router/bus, router/hold and policy; never the pipeline.
package audit
