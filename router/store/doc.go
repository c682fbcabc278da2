// Package store owns resultgate's durable records in JetStream key-value
// buckets: the hold records (changed only by compare-and-set, so a hold is
// released exactly once), the patients' Consents, clinicians' determinations,
// the orders index that links a correction to the version it corrects, and the
// per-patient history the new-cancer tag needs. Every store is a typed view of
// one bucket over the generic JSON record store KV.
//
// It may import the hold domain (router/hold), the wire contract's bucket
// names (router/bus), policy types and nats.go; never the pipeline.
package store
