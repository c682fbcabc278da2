// Package intake is the MLLP side of resultgate: an mllp.Handler that reads a
// bounded frame, parses MSH (and PID for the partition key), stores the raw
// bytes in JetStream (hl7.in.<partition>, Nats-Msg-Id from MSH-3/4/10) and only
// after the PubAck answers AA (CA in enhanced mode), per HL7 v2.x chapter 2.
// A storage failure is answered AE/CE with an ERR segment, a refused message
// AR/CR and a dead-letter record; a resend gets the same positive ACK and is
// stored once.
//
// It may import hl7, hl7/mllp, router/bus and router/hold; never the pipeline,
// which reads what the intake stored.
package intake
