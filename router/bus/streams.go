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

// AuditCheckpointsHistory keeps earlier audit checkpoints in their bucket.
const AuditCheckpointsHistory = 64

// AuditCheckpointBucketConfig is the configuration of KVAuditCheckpoints.
func AuditCheckpointBucketConfig(sc StreamsConfig) jetstream.KeyValueConfig {
	sc = sc.withDefaults()
	return jetstream.KeyValueConfig{
		Bucket: KVAuditCheckpoints, Description: "Signed checkpoints of the AUDIT hash chain",
		History: AuditCheckpointsHistory, Storage: jetstream.FileStorage, Replicas: sc.Replicas,
	}
}

// EnsureStreams creates every stream and bucket, or updates them to sc. It is
// idempotent: running it again with the same configuration changes nothing.
// Changing an immutable property (storage type) of an existing stream fails
// with the stream named.
//
// AUDIT and the audit checkpoint bucket are the exception: they are created
// when absent and never updated (serve needs, and in a cluster has, no right
// to update or delete them), and AUDIT is created only on a new installation,
// one where HL7_IN does not exist yet either. A missing AUDIT beside
// existing streams was deleted: it is left missing, for /readyz and
// `resultgate audit verify` to report, until an operator runs `resultgate
// audit init --accept-new` (RestoreAudit).
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
	fresh, err := newInstallation(ctx, js)
	if err != nil {
		return err
	}
	// AUDIT first, whatever names asks for: an instance of a cluster
	// starting at the same moment then never sees HL7_IN (not a new
	// installation) without AUDIT, and an intake-only instance that starts
	// first on a new installation provisions the trail too (creation only).
	cfgs := StreamConfigs(sc)
	for _, cfg := range cfgs {
		if cfg.Name == StreamAudit {
			if err := ensureAudit(ctx, js, cfg, fresh, false); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, cfg := range cfgs {
		if cfg.Name == StreamAudit || !want(cfg.Name) {
			continue
		}
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			errs = append(errs, fmt.Errorf("ensuring stream %s: %w", cfg.Name, err))
		}
	}
	if _, err := js.KeyValue(ctx, KVAuditCheckpoints); errors.Is(err, jetstream.ErrBucketNotFound) {
		if _, err := js.CreateKeyValue(ctx, AuditCheckpointBucketConfig(sc)); err != nil {
			errs = append(errs, fmt.Errorf("creating bucket %s: %w", KVAuditCheckpoints, err))
		}
	} else if err != nil {
		errs = append(errs, fmt.Errorf("looking up bucket %s: %w", KVAuditCheckpoints, err))
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

// newInstallation reports whether resultgate has never run on this NATS
// account: neither HL7_IN nor the audit checkpoints exist.
func newInstallation(ctx context.Context, js jetstream.JetStream) (bool, error) {
	_, err := js.Stream(ctx, StreamHL7In)
	switch {
	case err == nil:
		return false, nil
	case !errors.Is(err, jetstream.ErrStreamNotFound):
		return false, fmt.Errorf("looking up stream %s: %w", StreamHL7In, err)
	}
	_, err = js.KeyValue(ctx, KVAuditCheckpoints)
	switch {
	case err == nil:
		return false, nil
	case !errors.Is(err, jetstream.ErrBucketNotFound):
		return false, fmt.Errorf("looking up bucket %s: %w", KVAuditCheckpoints, err)
	}
	return true, nil
}

// ensureAudit creates AUDIT when it is absent and create allows it; an
// existing AUDIT is updated back to cfg only when restore is set (audit init),
// else left as it is (the audit integrity check reports a changed
// configuration).
func ensureAudit(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig, create, restore bool) error {
	_, err := js.Stream(ctx, StreamAudit)
	switch {
	case err == nil && restore:
		if _, err := js.UpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("restoring the configuration of stream %s: %w", StreamAudit, err)
		}
		return nil
	case err == nil:
		return nil
	case !errors.Is(err, jetstream.ErrStreamNotFound):
		return fmt.Errorf("looking up stream %s: %w", StreamAudit, err)
	case !create:
		return nil
	}
	if _, err := js.CreateStream(ctx, cfg); err != nil {
		return fmt.Errorf("creating stream %s: %w", StreamAudit, err)
	}
	return nil
}

// RestoreAudit creates AUDIT when it is missing, or updates an existing one
// back to resultgate's configuration (keeping its replica count and
// duplicate window), and creates the checkpoint bucket when absent: the
// stream half of `resultgate audit init --accept-new`. It needs the rights to
// create and update streams that serve does not have in a cluster.
func RestoreAudit(ctx context.Context, js jetstream.JetStream, sc StreamsConfig) error {
	var cfg jetstream.StreamConfig
	for _, c := range StreamConfigs(sc) {
		if c.Name == StreamAudit {
			cfg = c
		}
	}
	if s, err := js.Stream(ctx, StreamAudit); err == nil {
		cur := s.CachedInfo().Config
		cfg.Replicas, cfg.Duplicates = cur.Replicas, cur.Duplicates
	}
	if err := ensureAudit(ctx, js, cfg, true, true); err != nil {
		return err
	}
	if _, err := js.KeyValue(ctx, KVAuditCheckpoints); errors.Is(err, jetstream.ErrBucketNotFound) {
		if _, err := js.CreateKeyValue(ctx, AuditCheckpointBucketConfig(sc)); err != nil {
			return fmt.Errorf("creating bucket %s: %w", KVAuditCheckpoints, err)
		}
	} else if err != nil {
		return fmt.Errorf("looking up bucket %s: %w", KVAuditCheckpoints, err)
	}
	return nil
}
