package bus

import (
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// This file is resultgate's wire contract: every stream, bucket, subject and
// header that operators, portals and interface engines integrate against.
// Names are part of the stored data and of integrations: keep them stable.
// Subject tokens never carry PHI: partitions, patient, provider and order keys
// are keyed hashes, hold IDs are opaque.

// Stream names.
const (
	// StreamHL7In holds every inbound message, raw, as received (hl7.in.<partition>).
	StreamHL7In = "HL7_IN"
	// StreamPortal holds released results for the portal (portal.fhir.*, portal.hl7.*).
	StreamPortal = "PORTAL"
	// StreamPortalTest holds released test and debugging traffic (MSH-11 T or
	// D, unless configured into the patient feed): test.portal.fhir.*,
	// test.portal.hl7.*. Nothing there reaches a patient or the forwarder.
	StreamPortalTest = "PORTAL_TEST"
	// StreamHolds holds hold events (hold.<state>); the records live in KVHolds.
	StreamHolds = "HOLDS"
	// StreamNotify holds clinician notifications (notify.clinician.<provider>).
	StreamNotify = "NOTIFY"
	// StreamAudit is the append-only audit trail (audit.<kind>.<bucket>); it
	// denies delete and purge.
	StreamAudit = "AUDIT"
	// StreamDead holds messages that could not be processed, with the reason.
	StreamDead = "DEAD"
)

// Key-value bucket names.
const (
	// KVHolds holds the hold records, keyed by hold ID, updated by compare-and-set.
	KVHolds = "holds"
	// KVConsents holds the patients' Consents, keyed by patient key.
	KVConsents = "consents"
	// KVPatients holds per-patient history (e.g. malignancy seen), keyed by patient key.
	KVPatients = "patients"
	// KVDeterminations holds clinician determinations (Preventing Harm holds)
	// keyed by order key.
	KVDeterminations = "determinations"
	// KVOrders maps an order key to the latest hold (or immediate release) of
	// that order, so a correction finds the version it corrects.
	KVOrders = "orders"
	// KVNotifyFailures holds the notifications router/notify/deliver gave up
	// on (parked after notify.max_attempts), keyed <NOTIFY seq>-<receiver>;
	// `resultgate notify failures` lists them.
	KVNotifyFailures = "notify_failures"
	// KVNotifySent holds, for a notification still being retried for some
	// of its receivers, the receivers that already accepted it, keyed
	// <stream>.<seq>, so that an instance that takes over its retries (after
	// a restart) does not send it to them again. Entries expire after
	// NotifySentMaxAge and are deleted once the notification is settled.
	KVNotifySent = "notify_sent"
)

// NotifySentMaxAge is how long KVNotifySent keeps an entry.
const NotifySentMaxAge = 7 * 24 * time.Hour

// Subjects.
const (
	// SubjectInPrefix prefixes the inbound subject; the last token is the partition.
	SubjectInPrefix = "hl7.in."
	// SubjectInAll matches every inbound message.
	SubjectInAll = "hl7.in.>"
	// SubjectPortalAll matches the portal feed (portal.fhir.<partition>, portal.hl7.<partition>).
	SubjectPortalAll = "portal.>"
	// SubjectPortalFHIRPrefix prefixes the FHIR feed; the last token is the partition.
	SubjectPortalFHIRPrefix = "portal.fhir."
	// SubjectPortalHL7Prefix prefixes the HL7 feed; the last token is the partition.
	SubjectPortalHL7Prefix = "portal.hl7."
	// SubjectTestPortalAll matches the test feed (test.portal.fhir.<partition>,
	// test.portal.hl7.<partition>), outside portal.> on purpose.
	SubjectTestPortalAll = "test.portal.>"
	// SubjectTestPortalFHIRPrefix prefixes the test FHIR feed.
	SubjectTestPortalFHIRPrefix = "test.portal.fhir."
	// SubjectTestPortalHL7Prefix prefixes the test HL7 feed.
	SubjectTestPortalHL7Prefix = "test.portal.hl7."
	// SubjectHoldPrefix prefixes hold events; the last token is the new state.
	SubjectHoldPrefix = "hold."
	// SubjectHoldAll matches hold events (hold.<state>).
	SubjectHoldAll = "hold.>"
	// SubjectNotifyAll matches notifications.
	SubjectNotifyAll = "notify.>"
	// SubjectNotifyClinicianPrefix prefixes notify.clinician.<provider key>.
	SubjectNotifyClinicianPrefix = "notify.clinician."
	// SubjectNotifyOnCall receives escalations when a deadline nears and nobody
	// acted, and triage notices (a result dead-lettered as unattributed).
	SubjectNotifyOnCall = "notify.oncall"
	// SubjectAuditPrefix prefixes audit events, audit.<kind>.<bucket>.
	SubjectAuditPrefix = "audit."
	// SubjectAuditAll matches audit events.
	SubjectAuditAll = "audit.>"
	// SubjectDead is the dead-letter subject; DeadSubject adds a reason token.
	SubjectDead = "hl7.dead"
	// SubjectDeadAll matches the per-reason dead-letter subjects.
	SubjectDeadAll = "hl7.dead.>"
	// SubjectAPIPrefix prefixes every request/reply API subject,
	// resultgate.api.<operation>.
	SubjectAPIPrefix = "resultgate.api."
	// SubjectAPIAll matches every API subject.
	SubjectAPIAll = "resultgate.api.>"
)

// InSubject returns the inbound subject for partition, "hl7.in.<partition>".
func InSubject(partition string) string { return SubjectInPrefix + partition }

// DeadSubject returns the dead-letter subject for reason, "hl7.dead.<reason>".
// reason must be a single subject token (e.g. "parse", "too-large").
func DeadSubject(reason string) string { return SubjectDead + "." + reason }

// HoldEventSubject returns the hold-event subject of a transition to state,
// "hold.<state>".
func HoldEventSubject(state string) string { return SubjectHoldPrefix + state }

// AuditSubject returns "audit.<kind>.<bucket>".
func AuditSubject(kind, bucket string) string { return SubjectAuditPrefix + kind + "." + bucket }

// AuditKindFilter returns the subject filter of every audit event of kind.
func AuditKindFilter(kind string) string { return SubjectAuditPrefix + kind + ".>" }

// AuditBucketFilter returns the subject filter of every audit event, of any
// kind, filed under bucket (or, for events written before buckets, under the
// hold ID itself).
func AuditBucketFilter(bucket string) string { return SubjectAuditPrefix + "*." + bucket }

// APISubject returns the request subject of an API operation.
func APISubject(op string) string { return SubjectAPIPrefix + op }

// APIOperation returns the operation of an API request subject.
func APIOperation(subject string) string { return strings.TrimPrefix(subject, SubjectAPIPrefix) }

// Request/reply API operations (the last tokens of resultgate.api.<operation>).
const (
	OpHoldsList     = "holds.list"
	OpHoldsGet      = "holds.get"
	OpHoldsRelease  = "holds.release"
	OpHoldsOverride = "holds.override"
	OpHoldsPlace    = "holds.place"
	OpConsentPut    = "consent.put"
	OpConsentGet    = "consent.get"
	OpDeadList      = "dead.list"
	OpDeadReplay    = "dead.replay"
	OpDeadDiscard   = "dead.discard"
	OpAuditQuery    = "audit.query"
	OpReleasesList  = "releases.list"
	// OpDeterminationsList lists clinician determinations; withdraw ends one.
	OpDeterminationsList     = "determinations.list"
	OpDeterminationsWithdraw = "determinations.withdraw"
)

// Audit event kinds (the second token of audit.<kind>.<bucket>).
const (
	AuditDecision      = "decision"
	AuditTransition    = "transition"
	AuditOverride      = "override"
	AuditConsent       = "consent"
	AuditDetermination = "determination"
	AuditReevaluation  = "reevaluation"
	AuditDead          = "dead"
	AuditReplay        = "replay"
	// AuditDiscard records an operator closing a dead-letter record without
	// replaying it (e.g. an unattributed result corrected and resent).
	AuditDiscard = "discard"
	// AuditAccess records a read of a hold's content (HIPAA access logging).
	AuditAccess = "access"
	// AuditDenied records a request refused for lack of authorisation.
	AuditDenied = "denied"
	// AuditIntegrity records an operator accepting the audit trail as it
	// stands after an integrity finding (`resultgate audit init --accept-new`).
	AuditIntegrity = "integrity"
)

// Notification kinds (the "kind" member of a notification body).
const (
	NotifyHoldCreated = "hold-created"
	NotifyReminder    = "reminder"
	NotifyEscalation  = "escalation"
	// NotifyTriage tells on-call (notify.oncall) that a result was put in
	// triage: dead-lettered because it cannot be attributed to a patient.
	NotifyTriage = "triage"
	// NotifyDeadLetter tells on-call (notify.oncall) that the classify step
	// gave up on a result for any other reason (hl7.dead.<reason>).
	NotifyDeadLetter = "dead-letter"
)

// Headers of the requests router/notify/deliver makes to webhook receivers
// (docs/CONFIGURATION.md, "Notification receivers").
const (
	// HeaderIdempotencyKey is stable per notification and receiver: the
	// notification's Nats-Msg-Id, a dot and the receiver's name. A retry
	// carries the same key, so the receiver can drop what it already has.
	HeaderIdempotencyKey = "Idempotency-Key"
	// HeaderNotifyTimestamp is when the request was signed, in Unix seconds.
	HeaderNotifyTimestamp = "Resultgate-Timestamp"
	// HeaderNotifySignature is "sha256=" and the hex HMAC-SHA256, keyed by
	// the receiver's secret, of the timestamp, a dot and the body.
	HeaderNotifySignature = "Resultgate-Signature"
	// HeaderNotifyKind is the notification's kind (Notify*).
	HeaderNotifyKind = "Resultgate-Notify-Kind"
	// HeaderNotifyDeliveryNo is the attempt number, from 1.
	HeaderNotifyDeliveryNo = "Resultgate-Delivery-Attempt"
)

// Dead-letter reason codes of the classify step (the last token of
// hl7.dead.<reason>); the intake's rejection reasons are intake.Reason values.
const (
	DeadParse    = "parse"    // the message does not parse as HL7
	DeadPolicy   = "policy"   // the policy could not read the report
	DeadFHIR     = "fhir"     // the released result could not be mapped to FHIR
	DeadRetries  = "retries"  // transient failures exhausted the delivery bound
	DeadInternal = "internal" // anything else
	// DeadUnattributed: the result names no usable patient identifier (no
	// PID segment, or PID-3, and PID-2 in its stead, without an ID number),
	// so it cannot be attributed to one patient and is never released; it
	// waits in triage for an operator (DESIGN non-negotiable 11).
	DeadUnattributed = "unattributed"
	// DeadProcessingTimeout: the last attempts ran past holds.process_timeout
	// and the delivery or time bound (holds.max_deliver, holds.dead_after)
	// is reached.
	DeadProcessingTimeout = "processing-timeout"
)

// Headers of the messages the intake stores in HL7_IN. Values carry no PHI: the
// patient appears only as its keyed hash.
const (
	// HeaderMsgID is JetStream's deduplication header, set to MsgID(MSH-3, MSH-4, MSH-10).
	HeaderMsgID = jetstream.MsgIDHeader
	// HeaderHL7ControlID is MSH-10.
	HeaderHL7ControlID = "Hl7-Control-Id"
	// HeaderHL7MessageType is MSH-9 as CODE^EVENT^STRUCTURE.
	HeaderHL7MessageType = "Hl7-Message-Type"
	// HeaderHL7SendingApplication is MSH-3 (HD components joined with ^).
	HeaderHL7SendingApplication = "Hl7-Sending-Application"
	// HeaderHL7SendingFacility is MSH-4 (HD components joined with ^).
	HeaderHL7SendingFacility = "Hl7-Sending-Facility"
	// HeaderHL7Version is MSH-12.
	HeaderHL7Version = "Hl7-Version"
	// HeaderPeer is the sender's IP address and port.
	HeaderPeer = "Resultgate-Peer"
	// HeaderPeerCert is the CN of the sender's verified client certificate (mutual TLS).
	HeaderPeerCert = "Resultgate-Peer-Cert"
	// HeaderConnID is the MLLP connection number (matches the listener's logs).
	HeaderConnID = "Resultgate-Conn-Id"
	// HeaderReceivedAt is when the frame was received, RFC 3339 with nanoseconds, UTC.
	HeaderReceivedAt = "Resultgate-Received-At"
	// HeaderPartition is the partition token (the last subject token).
	HeaderPartition = "Resultgate-Partition"
	// HeaderPatientKey is PatientKey of the PID-3 identifier; absent without
	// PID. Portal feed messages carry it too.
	HeaderPatientKey = "Resultgate-Patient-Key"
	// HeaderControlIDReused is "true" on a message whose MSH-3/4/10 matched an
	// earlier, different message within the duplicate window (its Msg-Id then
	// carries a content hash).
	HeaderControlIDReused = "Resultgate-Control-Id-Reused"
)

// Headers on portal feed messages. The note is percent-encoded UTF-8 (header
// values cannot carry line breaks). The feed is PHI-bearing by design; none of
// these values is ever logged.
const (
	HeaderHoldID        = "Resultgate-Hold-Id"
	HeaderReleasePath   = "Resultgate-Release-Path"
	HeaderReleaseReason = "Resultgate-Release-Reason"
	HeaderReleaseActor  = "Resultgate-Release-Actor"
	HeaderReleaseRole   = "Resultgate-Release-Role"
	HeaderReleasedAt    = "Resultgate-Released-At"
	HeaderNotify        = "Resultgate-Notify"
	HeaderNote          = "Resultgate-Note"
	HeaderControlID     = "Resultgate-Control-Id"
	HeaderInboundSeq    = "Resultgate-Inbound-Seq"
	// HeaderProcessingID is the message's MSH-11.1 (P production, T
	// training, D debugging).
	HeaderProcessingID = "Resultgate-Processing-Id"
	// HeaderRetracts is, on a retraction (Resultgate-Release-Path
	// retraction), the hold ID of the release it takes back: the portal
	// removes or marks as entered in error what that release showed.
	HeaderRetracts = "Resultgate-Retracts"
)

// Headers on dead-letter records, written by the intake (rejections) and the
// pipeline (messages it could not process) alike. Detail never carries
// message content.
const (
	// HeaderDeadReason is why the message was not accepted or processed: a
	// Dead* code or an intake.Reason.
	HeaderDeadReason = "Resultgate-Dead-Reason"
	// HeaderDeadDetail is the problem in words, without message content.
	HeaderDeadDetail = "Resultgate-Dead-Detail"
	// HeaderDeadStage is the step that gave up ("intake"); absent for the
	// pipeline's records.
	HeaderDeadStage = "Resultgate-Dead-Stage"
	// HeaderDeadSubject is the subject the message was stored under.
	HeaderDeadSubject = "Resultgate-Dead-Subject"
	// HeaderDeadSeq is the message's sequence in HL7_IN.
	HeaderDeadSeq = "Resultgate-Dead-Seq"
	// HeaderDeadMsgID is the message's Nats-Msg-Id.
	HeaderDeadMsgID = "Resultgate-Dead-Msg-Id"
	// HeaderDeadDelivered is how many deliveries were tried.
	HeaderDeadDelivered = "Resultgate-Dead-Deliveries"
	// HeaderDeadAt is when the record was written.
	HeaderDeadAt = "Resultgate-Dead-At"
	// HeaderSize is, on records of oversize frames, the full frame size in bytes.
	HeaderSize = "Resultgate-Size"
)

// The audit trail's integrity: the hash chain header on every AUDIT event and
// the bucket of signed checkpoints (router/audit owns both).
const (
	// HeaderAuditPrev is, on every AUDIT event, the hex SHA-256 chain link of
	// the event stored just before it (its sequence, subject, payload and own
	// HeaderAuditPrev); the first event of a trail carries AuditGenesis.
	HeaderAuditPrev = "Resultgate-Audit-Prev"
	// AuditGenesis is HeaderAuditPrev of the first event of a trail.
	AuditGenesis = "0000000000000000000000000000000000000000000000000000000000000000"
	// KVAuditCheckpoints holds the audit trail's signed checkpoints (chain
	// head, sequence, event count), under KeyAuditCheckpoint. It is created
	// once, like AUDIT, and never updated by serve.
	KVAuditCheckpoints = "audit_checkpoints"
	// KeyAuditCheckpoint is the key of the latest checkpoint.
	KeyAuditCheckpoint = "head"
)
