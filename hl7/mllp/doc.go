// Package mllp implements the HL7 Minimal Lower Layer Protocol (MLLP), release 1,
// as described in HL7 v2.x Implementation Guide: Transport Specification, MLLP
// release 1 (and HL7 v2.5 appendix C.4): every message travels in a block
//
//	<VT=0x0B> message <FS=0x1C><CR=0x0D>
//
// and the receiver answers each block with one acknowledgement block on the same
// connection before the sender sends the next one.
//
// The package has two layers, kept apart as in GoogleCloudPlatform/mllp:
//
//   - Framing only, over io.Reader and io.Writer: Reader (bounded, allocation-free in
//     the steady state) and WriteFrame. They know nothing about TCP or HL7.
//   - The TCP side: Server (listener with connection limits that evict the
//     longest-idle connection rather than lock senders out, a per-peer cap,
//     deadlines, keep-alive, TLS and a peer-network allow-list, calling a Handler
//     for each frame) and Client (ACK timeout, reconnect with back-off, TLS).
//
// The package does not parse HL7: the Handler receives the raw frame and returns the
// raw ACK, so the codec (package hl7) and the policy above it stay independent of the
// transport. Every read is bounded in size (the maximum frame size) and in time (idle
// and per-frame read deadlines). Nothing in this package logs message content.
package mllp
