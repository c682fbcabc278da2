// Package holdview keeps an in-memory view of the holds bucket, fed by a KV
// watch: slim copies of the records indexed by provider and patient for the
// worklist, the unpublished releases the reconciler retries, and the timer
// heap of deadlines, reminders and escalations that the scheduler reads. The
// bucket stays the authority: every change still goes through the store's
// compare-and-set.
//
// It may import router/hold, policy and nats.go; never the pipeline.
package holdview
