package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// History kept per key in the buckets. JetStream allows at most 64.
const (
	// HoldsHistory keeps every transition of a hold visible in the bucket.
	HoldsHistory = 64
	// ConsentsHistory keeps earlier Consents (a revoked one stays visible).
	ConsentsHistory = 16
	// PatientsHistory keeps earlier per-patient history entries.
	PatientsHistory = 16
)

// DefaultDuplicateWindow is HL7_IN's duplicate window: interface engines resend
// long after two minutes (queued messages after an outage), hence a day.
const DefaultDuplicateWindow = 24 * time.Hour

// StreamsConfig configures the streams and buckets EnsureStreams creates.
type StreamsConfig struct {
	// Replicas of every stream and bucket: 1 single node, 3 recommended in a
	// cluster (an AA then means stored on a quorum).
	Replicas int
	// DuplicateWindow is HL7_IN's Nats-Msg-Id deduplication window; default
	// DefaultDuplicateWindow.
	DuplicateWindow time.Duration
	// InMaxAge and InMaxBytes limit HL7_IN; zero keeps everything. When HL7_IN is
	// full, new messages are refused (answered AE/CE), never old ones dropped.
	InMaxAge   time.Duration
	InMaxBytes int64
	// PortalMaxAge limits PORTAL; zero keeps everything.
	PortalMaxAge time.Duration
	// NotifyMaxAge limits NOTIFY; zero keeps everything.
	NotifyMaxAge time.Duration
	// AuditMaxAge limits AUDIT; zero (the default) keeps the audit trail forever.
	AuditMaxAge time.Duration
	// DeadMaxAge limits DEAD; zero keeps everything.
	DeadMaxAge time.Duration
}

func (sc StreamsConfig) withDefaults() StreamsConfig {
	if sc.Replicas <= 0 {
		sc.Replicas = 1
	}
	if sc.DuplicateWindow <= 0 {
		sc.DuplicateWindow = DefaultDuplicateWindow
	}
	return sc
}

// Validate reports a configuration JetStream would refuse.
func (sc StreamsConfig) Validate() error {
	sc = sc.withDefaults()
	if sc.Replicas > 5 {
		return fmt.Errorf("replicas %d: JetStream allows at most 5", sc.Replicas)
	}
	if sc.InMaxAge > 0 && sc.DuplicateWindow > sc.InMaxAge {
		return fmt.Errorf("duplicate window %s exceeds HL7_IN max age %s", sc.DuplicateWindow, sc.InMaxAge)
	}
	return nil
}

// StreamConfigs returns the configuration of every stream, in creation order.
func StreamConfigs(sc StreamsConfig) []jetstream.StreamConfig {
	sc = sc.withDefaults()
	maxBytes := sc.InMaxBytes
	if maxBytes == 0 {
		maxBytes = -1
	}
	return []jetstream.StreamConfig{
		{
			Name:        StreamHL7In,
			Description: "Inbound HL7v2 messages, raw bytes as received, stored before the ACK",
			Subjects:    []string{SubjectInAll},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    sc.Replicas,
			Duplicates:  sc.DuplicateWindow,
			MaxAge:      sc.InMaxAge,
			MaxBytes:    maxBytes,
			MaxMsgs:     -1,
			// Refuse new messages when full (the sender gets AE/CE and resends)
			// rather than silently dropping stored ones.
			Discard:     jetstream.DiscardNew,
			AllowDirect: true,
		},
		{
			Name:        StreamPortal,
			Description: "Released results for the patient portal (FHIR R4 and HL7)",
			Subjects:    []string{SubjectPortalAll},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    sc.Replicas,
			Duplicates:  sc.DuplicateWindow,
			MaxAge:      sc.PortalMaxAge,
			MaxBytes:    -1,
			MaxMsgs:     -1,
			Discard:     jetstream.DiscardNew,
			AllowDirect: true,
		},
		{
			Name:        StreamPortalTest,
			Description: "Released test and debugging traffic (MSH-11 T, D): never the patient feed",
			Subjects:    []string{SubjectTestPortalAll},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    sc.Replicas,
			Duplicates:  sc.DuplicateWindow,
			MaxAge:      sc.PortalMaxAge,
			MaxBytes:    -1,
			MaxMsgs:     -1,
			Discard:     jetstream.DiscardNew,
			AllowDirect: true,
		},
		{
			Name:        StreamHolds,
			Description: "Hold events; the hold records are in the holds bucket",
			Subjects:    []string{SubjectHoldAll},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    sc.Replicas,
			Duplicates:  sc.DuplicateWindow,
			MaxBytes:    -1,
			MaxMsgs:     -1,
			Discard:     jetstream.DiscardNew,
			AllowDirect: true,
		},
		{
			Name:        StreamNotify,
			Description: "Clinician notifications: new hold, reminder, escalation",
			Subjects:    []string{SubjectNotifyAll},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    sc.Replicas,
			Duplicates:  sc.DuplicateWindow,
			MaxAge:      sc.NotifyMaxAge,
			MaxBytes:    -1,
			MaxMsgs:     -1,
			Discard:     jetstream.DiscardOld,
		},
		{
			Name:        StreamAudit,
			Description: "Append-only audit trail of decisions and actions",
			Subjects:    []string{SubjectAuditAll},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    sc.Replicas,
			Duplicates:  sc.DuplicateWindow,
			MaxAge:      sc.AuditMaxAge,
			MaxBytes:    -1,
			MaxMsgs:     -1,
			Discard:     jetstream.DiscardNew,
			DenyDelete:  true,
			DenyPurge:   true,
		},
		{
			Name:        StreamDead,
			Description: "Messages that could not be processed, with the reason",
			Subjects:    []string{SubjectDead, SubjectDeadAll},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    sc.Replicas,
			Duplicates:  sc.DuplicateWindow,
			MaxAge:      sc.DeadMaxAge,
			MaxBytes:    -1,
			MaxMsgs:     -1,
			Discard:     jetstream.DiscardNew,
			AllowDirect: true,
		},
	}
}

// BucketConfigs returns the configuration of every key-value bucket.
func BucketConfigs(sc StreamsConfig) []jetstream.KeyValueConfig {
	sc = sc.withDefaults()
	return []jetstream.KeyValueConfig{
		{Bucket: KVHolds, Description: "Hold records", History: HoldsHistory, Storage: jetstream.FileStorage, Replicas: sc.Replicas},
		{Bucket: KVConsents, Description: "Patient Consents (FHIR R4)", History: ConsentsHistory, Storage: jetstream.FileStorage, Replicas: sc.Replicas},
		{Bucket: KVPatients, Description: "Per-patient history keyed by patient key", History: PatientsHistory, Storage: jetstream.FileStorage, Replicas: sc.Replicas},
	}
}

// EnsureStreams creates every stream and bucket, or updates them to sc. It is
// idempotent: running it again with the same configuration changes nothing.
// Changing an immutable property (storage type) of an existing stream fails
// with the stream named.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, sc StreamsConfig) error {
	return EnsureNamed(ctx, js, sc, nil)
}

// EnsureNamed is EnsureStreams limited to the streams and buckets whose names
// are in names (stream names such as HL7_IN, bucket names such as holds);
// nil means all of them. An instance ensures what it uses, so that one
// running only the intake needs no right on the other streams.
func EnsureNamed(ctx context.Context, js jetstream.JetStream, sc StreamsConfig, names []string) error {
	if err := sc.Validate(); err != nil {
		return fmt.Errorf("streams config: %w", err)
	}
	want := func(name string) bool { return names == nil || slices.Contains(names, name) }
	var errs []error
	for _, cfg := range StreamConfigs(sc) {
		if !want(cfg.Name) {
			continue
		}
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			errs = append(errs, fmt.Errorf("ensuring stream %s: %w", cfg.Name, err))
		}
	}
	for _, cfg := range BucketConfigs(sc) {
		if !want(cfg.Bucket) {
			continue
		}
		if _, err := js.CreateOrUpdateKeyValue(ctx, cfg); err != nil {
			errs = append(errs, fmt.Errorf("ensuring bucket %s: %w", cfg.Bucket, err))
		}
	}
	return errors.Join(errs...)
}
