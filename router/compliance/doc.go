// Package compliance assembles the compliance report (package report's
// input) from what the pipeline stored: the latest record of every hold, the
// period's decisions from the audit trail, and each result's demographics
// and finalisation time read back from its inbound message. Nothing it
// returns identifies a patient.
//
// It may import router/store, router/hold, router/bus, report, policy and hl7;
// never the pipeline, which calls it.
package compliance
