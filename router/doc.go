// Package router is the home of everything resultgate does on NATS JetStream,
// split into packages by responsibility. It holds no code itself; this page
// is the map. Data flows intake → pipeline → feed, and imports only go down
// this list (a package may import those below it, never those above):
//
//	router/api       the NATS request/reply API (resultgate.api.<op>) over
//	                 pipeline.Service; started by app beside httpapi.
//	router/pipeline  everything after the intake: the classify step (policy
//	                 adapter, decision, hold or release, retractions), the
//	                 scheduler (deadlines, reminders, escalations),
//	                 clinicians' determinations, and Service, the Go API that
//	                 httpapi, router/api and the CLI use.
//	router/compliance the compliance report's inputs, read from the stores.
//	router/feed      the portal feed: the gate (the one function that writes
//	                 it, and the reconciler), the FHIR encoder and the
//	                 release-path → reason mapping, synthesised retractions,
//	                 and the listing of what went out.
//	router/intake    the MLLP handler: bound, parse MSH/PID, store in HL7_IN,
//	                 then ACK (HL7 v2.x chapter 2 original and enhanced modes).
//	router/holdview  the in-memory view of the holds bucket: lists, provider
//	                 and patient indexes, and the timer heap the scheduler reads.
//	router/notify/deliver  delivery of the notifications to people: routes
//	                 to webhook and email receivers, driven by durable
//	                 consumers on NOTIFY (and DEAD, AUDIT for operators'
//	                 notices); retries, parking in notify_failures.
//	router/notify    clinician and on-call notifications (NOTIFY).
//	router/dead      the dead letters (DEAD, hl7.dead.<reason>): store, list,
//	                 replay, the triage desk (discards); PHI-free reasons.
//	router/audit     the append-only audit trail (AUDIT, audit.<kind>.<bucket>),
//	                 its hash chain, signed checkpoints (audit_checkpoints) and
//	                 integrity checks (Check, Verify, the Monitor).
//	router/store     the KV record stores: holds (compare-and-set), Consents,
//	                 determinations, the orders index, patient history.
//	router/bus       the NATS layer: embedded server and its NKey users,
//	                 connection, streams, health, the stream reader, and
//	                 wire.go, the one file that
//	                 declares every stream, bucket, subject and header.
//	router/hold      the hold domain: states, release paths, roles, bases,
//	                 determinations, IDs and keyed hashes. Pure: no I/O.
//
// Who owns what: a subject or header is declared in router/bus (wire.go); a
// hold state transition is performed by router/feed's gate (releases) or
// router/pipeline (creation, supersession and withdrawal) and
// stored by router/store; the names of states and paths are router/hold's.
package router
