// Package dead owns the dead letters: messages that could not be accepted or
// processed, stored on DEAD (hl7.dead.<reason>) with a PHI-free reason and
// detail (SafeDetail), listed, and replayed to their inbound subject once the
// cause is fixed. The intake writes its refusals there directly; the
// pipeline writes through Letters.
//
// It may import router/bus, router/hold, hl7, fhirmap and nats.go.
package dead
