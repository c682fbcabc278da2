package feed

import (
	"context"
	"net/url"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
)

// FeedRecord is one result the patient feed carries (read from its HL7
// copy's headers, never its content): what went out, when, on which path, and
// how the patient is told.
type FeedRecord struct {
	Seq          uint64           `json:"seq"`
	Subject      string           `json:"subject"`
	HoldID       string           `json:"hold_id"`
	ControlID    string           `json:"control_id,omitempty"`
	PatientKey   string           `json:"patient_key,omitempty"`
	Path         hold.ReleasePath `json:"path"`
	Reason       string           `json:"reason,omitempty"`
	Actor        string           `json:"actor,omitempty"`
	Role         string           `json:"role,omitempty"`
	Notify       string           `json:"notify,omitempty"`
	ProcessingID string           `json:"processing_id,omitempty"`
	// Retracts is, on a retraction, the hold ID of the release taken back.
	Retracts   string    `json:"retracts,omitempty"`
	ReleasedAt time.Time `json:"released_at"`
}

// ReleasesQuery selects feed records: stored at or after Since, on Path
// (empty: every path), at most Limit (default and maximum maxReleasesRead).
type ReleasesQuery struct {
	Since time.Time        `json:"since,omitzero"`
	Path  hold.ReleasePath `json:"path,omitempty"`
	Limit int              `json:"limit,omitempty"`
}

// maxReleasesRead bounds one listing of the feed.
const maxReleasesRead = 10000

// Releases lists what the patient feed carries (portal.hl7.>), oldest first:
// results released at once, holds released, retractions. A new user sees what
// went out without a NATS consumer of their own.
func Releases(ctx context.Context, js jetstream.JetStream, q ReleasesQuery) ([]FeedRecord, error) {
	limit := q.Limit
	if limit <= 0 || limit > maxReleasesRead {
		limit = maxReleasesRead
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{bus.SubjectPortalHL7Prefix + ">"}, DeliverPolicy: jetstream.DeliverAllPolicy}
	if !q.Since.IsZero() {
		since := q.Since
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	}
	return bus.ReadAll(ctx, js, bus.StreamPortal, cfg, limit, func(m jetstream.Msg, seq uint64) (FeedRecord, error) {
		h := m.Headers()
		r := FeedRecord{
			Seq: seq, Subject: m.Subject(), HoldID: h.Get(bus.HeaderHoldID), ControlID: h.Get(bus.HeaderControlID),
			PatientKey: h.Get(bus.HeaderPatientKey), Path: hold.ReleasePath(h.Get(bus.HeaderReleasePath)),
			Actor: h.Get(bus.HeaderReleaseActor), Role: h.Get(bus.HeaderReleaseRole), Notify: h.Get(bus.HeaderNotify),
			ProcessingID: h.Get(bus.HeaderProcessingID), Retracts: h.Get(bus.HeaderRetracts),
		}
		if q.Path != "" && r.Path != q.Path {
			return r, bus.ErrSkip
		}
		r.Reason, _ = url.PathUnescape(h.Get(bus.HeaderReleaseReason))
		r.ReleasedAt, _ = time.Parse(time.RFC3339Nano, h.Get(bus.HeaderReleasedAt))
		return r, nil
	})
}
