// Package pipeline runs everything after the intake. One classify consumer per
// partition reads HL7_IN in order, parses each message once, builds the
// policy's report and classification (the one policy adapter, policy.go) and
// decides: release now, or hold on recorded lawful bases until a condition or
// a hard deadline. router/feed's Gate is the one function that writes the
// portal feed (portal.hl7.<p>, portal.fhir.<p> through the one FHIR encoder);
// the scheduler ends holds at their deadline and sends reminders and
// escalations (router/notify); failures go to the dead letters (router/dead);
// every state change is audited (router/audit) before it is acknowledged. Service is the Go API over all of it, used by
// httpapi, router/api and the CLI.
//
// It may import every other router package except router/api, plus policy,
// fhirmap, report and hl7.
package pipeline
