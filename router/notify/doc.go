// Package notify publishes clinician and on-call notifications (NOTIFY:
// notify.clinician.<provider key>, notify.oncall): a new hold, a reminder
// before the deadline, an escalation to on-call. A notification carries the
// opaque hold ID, tag names and times only, never PHI; the receiver looks the
// hold up through the API.
//
// It may import router/bus and router/hold.
package notify
