// Package deliver delivers the clinician and on-call notifications of the
// NOTIFY stream (router/notify) to people, in the manner of Prometheus
// Alertmanager: routes match a notification's kind, role (clinician or
// oncall), ordering provider and tags, and name receivers; a receiver is a
// webhook (a JSON POST signed with HMAC-SHA256, with an Idempotency-Key
// header) or an email sent over SMTP (STARTTLS required by default, AUTH
// PLAIN), each with text/template templates.
//
// Delivery is at least once. One durable consumer (notify.consumer, shared
// by every instance) reads notify.>; a notification is acked only once every
// receiver it is routed to has accepted it, and is otherwise negatively
// acknowledged with an exponential back-off (notify.retry_backoff). After
// notify.max_attempts it is parked, without PHI, in the notify_failures
// bucket (Failures; `resultgate notify failures`) and counted. A retry
// carries the same idempotency key (the notification's Nats-Msg-Id, a dot,
// the receiver's name), so a receiver recognises one it already has.
//
// The pipeline never waits for it: the pipeline only publishes to NOTIFY;
// this package runs its own consumer and workers, so a receiver that is
// down delays its notifications and nothing else.
//
// By default a notification carries no PHI: what happened, the tags, the
// deadline and a link to the worklist. A receiver with include_phi also gets
// the patient's identifier and the test's name, read from the hold and its
// inbound message (StoreDetails).
//
// It may import router/bus, router/hold and hl7.
package deliver
