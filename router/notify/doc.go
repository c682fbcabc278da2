// Package notify publishes clinician and on-call notifications (NOTIFY:
// notify.clinician.<provider key>, notify.oncall): a new hold, a reminder
// before the deadline, an escalation to on-call, and a triage notice to on-call
// when a result cannot be attributed to a patient. A notification carries the
// opaque hold ID (or the DEAD record's sequence), tag names and times only,
// never PHI; the receiver looks the record up through the API. Package
// router/notify/deliver delivers them to the configured receivers.
//
// It may import router/bus and router/hold.
package notify
