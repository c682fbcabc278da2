package feed

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/resultgate/resultgate/policy"
	"github.com/resultgate/resultgate/router/dead"

	"github.com/resultgate/resultgate/router/holdview"

	"github.com/resultgate/resultgate/router/audit"

	"github.com/resultgate/resultgate/router/store"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/hl7"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
)

// FHIREncoder turns a released message into the FHIR R4 Bundle of the portal
// feed. The production encoder wraps fhirmap.Bundle.
type FHIREncoder func(m *hl7.Message, holdID string, rel hold.ReleaseInfo, bases []hold.Basis, patientKey string) ([]byte, error)

// Gate is the one place that writes to the portal feed. Every release, held or
// immediate, goes through emit; held releases first move the record to
// released with published=false (the outbox) by compare-and-set, so a result is
// released once however many actors race, and the reconciler finishes any
// release whose publish did not complete.
type Gate struct {
	Config
	kick  chan struct{}
	inMu  sync.Mutex
	inbuf jetstream.Stream
}

// Metrics are the counters the gate moves (pipeline.Metrics implements it).
type Metrics interface {
	// Released counts a result published on path.
	Released(path hold.ReleasePath)
	// Dead counts a dead letter (here: a release that cannot be published).
	Dead(reason string)
	// ReconcileRound counts one reconciler round.
	ReconcileRound()
}

// Ticker returns a channel of ticks every d and a stop function (the
// pipeline's injected clock).
type Ticker func(d time.Duration) (<-chan time.Time, func())

// Config is what the gate writes with and to.
type Config struct {
	JS    jetstream.JetStream
	Holds *store.Holds
	View  *holdview.View
	Audit *audit.Trail
	// FHIR maps a release to the FHIR Bundle; nil publishes the HL7 feed only.
	FHIR FHIREncoder
	// History records a malignancy once the patient has seen it.
	History *store.History
	// FeedsPatients says which MSH-11 processing IDs reach the patient feed
	// (holds.patient_feed_processing_ids); the rest go to the test feed.
	FeedsPatients func(processingID string) bool
	Log           zerolog.Logger
	Metrics       Metrics
}

// New returns the gate.
func New(c Config) *Gate { return &Gate{Config: c, kick: make(chan struct{}, 1)} }

// Emit is one result to put on the portal feed.
type Emit struct {
	HoldID     string
	Inbound    hold.InboundRef
	PatientKey string
	Raw        []byte       // nil: fetched from HL7_IN by Inbound.Seq
	Msg        *hl7.Message // nil: parsed from Raw
	Rel        hold.ReleaseInfo
	Bases      []hold.Basis
	// Retracts is, for a retraction, the hold ID of the release taken back.
	Retracts string
}

// InStream returns (and caches) the HL7_IN stream handle.
func (g *Gate) InStream(ctx context.Context) (jetstream.Stream, error) {
	g.inMu.Lock()
	defer g.inMu.Unlock()
	if g.inbuf != nil {
		return g.inbuf, nil
	}
	s, err := g.JS.Stream(ctx, bus.StreamHL7In)
	if err != nil {
		return nil, fmt.Errorf("opening stream %s: %w", bus.StreamHL7In, err)
	}
	g.inbuf = s
	return s, nil
}

// fetchInbound returns the raw inbound message at seq.
func (g *Gate) fetchInbound(ctx context.Context, seq uint64) ([]byte, error) {
	s, err := g.InStream(ctx)
	if err != nil {
		return nil, err
	}
	m, err := s.GetMsg(ctx, seq)
	if err != nil {
		return nil, fmt.Errorf("fetching inbound seq %d: %w", seq, err)
	}
	return m.Data, nil
}

// emit publishes the FHIR Bundle and the original HL7 bytes of one released
// result, each with a Nats-Msg-Id derived from the hold ID so a repeat (re-run,
// reconciler) is absorbed by the PORTAL stream's duplicate window.
func (g *Gate) Emit(ctx context.Context, r Emit) error {
	if r.PatientKey == "" {
		// The classify step dead-letters such a result before it is held or
		// released; this catches a hold created before it did (a data-error
		// hold of an older build): it is recorded as unpublishable instead
		// of reaching the feed.
		return dead.NewPermanent(bus.DeadUnattributed, fmt.Errorf("releasing hold %s: %w", r.HoldID, dead.ErrUnattributed))
	}
	if r.Raw == nil {
		raw, err := g.fetchInbound(ctx, r.Inbound.Seq)
		if err != nil {
			return err
		}
		r.Raw = raw
	}
	if r.Msg == nil {
		m, err := hl7.ParseWithOptions(r.Raw, hl7.ParseOptions{NoCopy: true}) // r.Raw is read-only
		if err != nil {
			return fmt.Errorf("parsing inbound seq %d for release: %s", r.Inbound.Seq, dead.SafeDetail(err, "parse failed"))
		}
		r.Msg = m
	}
	// A retraction has its own Msg-Ids: the result it is made for may be
	// released later under "rel-" (a correction held after its retraction).
	idPrefix := "rel-"
	if r.Retracts != "" {
		idPrefix = "ret-"
	}
	// Only production traffic reaches patients (MSH-11): training and
	// debugging messages are released the same way, to the test feed.
	pid := r.Msg.MSH().ProcessingID
	hdr := releaseHeader(&r, pid)
	stream, fhirPrefix, hl7Prefix := bus.StreamPortal, bus.SubjectPortalFHIRPrefix, bus.SubjectPortalHL7Prefix
	if g.FeedsPatients == nil || !g.FeedsPatients(pid) {
		stream, fhirPrefix, hl7Prefix = bus.StreamPortalTest, bus.SubjectTestPortalFHIRPrefix, bus.SubjectTestPortalHL7Prefix
	}
	var bundle []byte
	if g.FHIR != nil {
		b, err := g.FHIR(r.Msg, r.HoldID, r.Rel, r.Bases, r.PatientKey)
		if err != nil {
			// The mapping is deterministic: retrying cannot fix it.
			return dead.NewPermanent(bus.DeadFHIR, fmt.Errorf("mapping hold %s to FHIR: %w", r.HoldID, err))
		}
		bundle = b
	}
	// Both publishes at once: each waits for its own PubAck.
	fhirErr := make(chan error, 1)
	go func() {
		if bundle == nil {
			fhirErr <- nil
			return
		}
		fhirErr <- g.publish(ctx, stream, fhirPrefix+r.Inbound.Partition, idPrefix+r.HoldID+"-fhir", &hdr, bundle)
	}()
	hl7Err := g.publish(ctx, stream, hl7Prefix+r.Inbound.Partition, idPrefix+r.HoldID+"-hl7", &hdr, r.Raw)
	if err := errors.Join(<-fhirErr, hl7Err); err != nil {
		return err
	}
	g.Metrics.Released(r.Rel.Path)
	return nil
}

// releaseHeader returns the release headers of r's feed messages (pid is its
// MSH-11): values in one backing array (a slice each would be an allocation
// per header per message); an empty value is left out, except for the hold
// id, path, actor, role and processing id, which are always written.
func releaseHeader(r *Emit, pid string) feedHeader {
	reason, note := "", ""
	if r.Rel.Reason != "" {
		reason = url.PathEscape(r.Rel.Reason)
	}
	if r.Rel.Note != "" {
		note = url.PathEscape(r.Rel.Note)
	}
	return feedHeader{
		keys: [...]string{
			bus.HeaderHoldID, bus.HeaderReleasePath, bus.HeaderReleaseReason, bus.HeaderReleaseActor,
			bus.HeaderReleaseRole, bus.HeaderReleasedAt, bus.HeaderNotify, bus.HeaderNote, bus.HeaderPatientKey,
			bus.HeaderControlID, bus.HeaderInboundSeq, bus.HeaderRetracts, bus.HeaderProcessingID,
		},
		vals: [...]string{
			r.HoldID, string(r.Rel.Path), reason, r.Rel.Actor,
			r.Rel.Role, r.Rel.At.UTC().Format(time.RFC3339Nano), string(r.Rel.Notify), note, r.PatientKey,
			r.Inbound.ControlID, strconv.FormatUint(r.Inbound.Seq, 10), r.Retracts, pid,
		},
		always: [...]int{0, 1, 3, 4, 12},
	}
}

// feedHeader holds the release headers of one result, for its feed messages.
type feedHeader struct {
	keys, vals [13]string
	always     [5]int // indexes written even when empty
}

// build returns a new header map (each publish adds its own Msg-Id to it).
func (f *feedHeader) build() nats.Header {
	h := make(nats.Header, len(f.keys)+2)
	for i, k := range f.keys {
		if f.vals[i] == "" && !slices.Contains(f.always[:], i) {
			continue
		}
		h[k] = f.vals[i : i+1 : i+1]
	}
	return h
}

func (g *Gate) publish(ctx context.Context, stream, subj, id string, hdr *feedHeader, data []byte) error {
	_, err := bus.Publish(ctx, g.JS.Conn(), &nats.Msg{Subject: subj, Header: hdr.build(), Data: data},
		bus.PublishOpts{MsgID: id, ExpectStream: stream})
	if err != nil {
		return fmt.Errorf("publishing %s: %w", subj, err)
	}
	return nil
}

// ReleaseCheck vets a hold before release (authorisation); it runs inside the
// compare-and-set, on the current record.
type ReleaseCheck func(h *hold.Hold) error

// Release ends hold id with rel: it moves the record from held to released
// (compare-and-set, so it happens once), appends the transition, audits it,
// publishes the result to the portal feed and marks the record published.
// A hold already released gives ErrAlreadyReleased; a superseded or withdrawn
// one ErrHoldClosed. Once the compare-and-set succeeded the release stands: a
// failed publish is logged and finished by the reconciler, and Release returns
// the released record without error.
func (g *Gate) Release(ctx context.Context, id string, rel hold.ReleaseInfo, check ReleaseCheck) (*hold.Hold, error) {
	h, err := g.Holds.Mutate(ctx, id, func(h *hold.Hold) error {
		switch h.State {
		case hold.StateReleased:
			return hold.ErrAlreadyReleased
		case hold.StateSuperseded, hold.StateWithdrawn:
			return hold.ErrHoldClosed
		}
		if check != nil {
			if err := check(h); err != nil {
				return err
			}
		}
		if rel.Note == "" {
			rel.Note = h.Note
		}
		if rel.Notify == "" {
			rel.Notify = h.Notify
		}
		h.Transitions = append(h.Transitions, hold.Transition{
			From: h.State, To: hold.StateReleased, Path: rel.Path,
			Actor: rel.Actor, Role: rel.Role, Reason: rel.Reason, At: rel.At,
		})
		h.State = hold.StateReleased
		r := rel
		h.Release = &r
		h.Published = false
		return nil
	})
	if err != nil {
		return h, fmt.Errorf("releasing hold %s: %w", id, err)
	}
	g.View.Observe(h)
	done, err := g.finish(ctx, h)
	if errors.Is(err, ErrUnpublishable) {
		return done, nil
	}
	if err != nil {
		g.Log.Error().Err(err).Str("hold_id", id).Msg("release recorded but not yet published; the reconciler retries")
		g.Kick()
		return h, nil
	}
	return done, nil
}

// finish audits the release transition, publishes a released record and
// marks it published. Each step is idempotent (stable Msg-Ids, CAS), so the
// reconciler can run it again after any failure.
func (g *Gate) finish(ctx context.Context, h *hold.Hold) (*hold.Hold, error) {
	if h.Release == nil {
		return h, fmt.Errorf("hold %s released without release info", h.ID)
	}
	for i := len(h.Transitions) - 1; i >= 0; i-- {
		if t := h.Transitions[i]; t.To == hold.StateReleased {
			// The audit Msg-Id counts transitions up to and including this one.
			upTo := *h
			upTo.Transitions = h.Transitions[:i+1]
			if err := g.Audit.Transition(ctx, &upTo, t); err != nil {
				return h, err
			}
			break
		}
	}
	err := g.Emit(ctx, Emit{
		HoldID: h.ID, Inbound: h.Inbound, PatientKey: h.PatientKey,
		Rel: *h.Release, Bases: h.Bases,
	})
	var pe *dead.Permanent
	if errors.As(err, &pe) {
		return g.unpublishable(ctx, h, pe)
	}
	if err != nil {
		return h, err
	}
	// History counts what the patient saw (the new-cancer tag reads it): a
	// held malignancy is on record once released, never while held, and a
	// version superseded or withdrawn before release never is.
	if h.HasTag(policy.TagMalignancy) {
		if err := g.History.MarkMalignancy(ctx, h.PatientKey, h.Inbound.MsgID, h.Release.At); err != nil {
			return h, err
		}
	}
	done, err := g.Holds.Mutate(ctx, h.ID, func(c *hold.Hold) error {
		if c.Published {
			return store.ErrNoChange
		}
		c.Published = true
		return nil
	})
	if err != nil {
		return h, fmt.Errorf("marking hold %s published: %w", h.ID, err)
	}
	g.View.Observe(done)
	return done, nil
}

// Kick asks the reconciler to run soon.
func (g *Gate) Kick() {
	select {
	case g.kick <- struct{}{}:
	default:
	}
}

// Reconcile publishes every released-but-unpublished hold the view knows of.
// It is safe to run on every instance at once: the feed's Nats-Msg-Id
// deduplicates and the published flag is set by compare-and-set.
func (g *Gate) Reconcile(ctx context.Context) error {
	var errs []error
	for _, h := range g.View.Unpublished() {
		// Re-read: the view may lag behind the bucket.
		cur, err := g.Holds.Get(ctx, h.ID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if cur.State != hold.StateReleased || cur.Published || cur.PublishError != "" {
			g.View.Observe(cur)
			continue
		}
		if _, err := g.finish(ctx, cur); errors.Is(err, ErrUnpublishable) {
			continue
		} else if err != nil {
			errs = append(errs, err)
			continue
		}
		g.Log.Info().Str("hold_id", cur.ID).Msg("reconciler published a released hold")
	}
	return errors.Join(errs...)
}

// RunReconciler reconciles at start, every interval and when kicked, until
// ctx ends.
func (g *Gate) RunReconciler(ctx context.Context, ticker Ticker, every time.Duration) {
	ticks, stop := ticker(every)
	defer stop()
	for {
		if err := g.Reconcile(ctx); err != nil && ctx.Err() == nil {
			g.Log.Warn().Err(err).Msg("reconcile incomplete; retrying")
		}
		g.Metrics.ReconcileRound()
		select {
		case <-ctx.Done():
			return
		case <-ticks:
		case <-g.kick:
		}
	}
}

// ErrUnpublishable means a released result cannot be put on the portal feed:
// retrying cannot help (the FHIR mapping refuses the message).
var ErrUnpublishable = errors.New("released result cannot be published")

// unpublishable records, once, that released hold h cannot be published: the
// reason on the hold (so the reconciler stops), an audit event and an error
// log. The sender has to correct the message; a correction supersedes it.
func (g *Gate) unpublishable(ctx context.Context, h *hold.Hold, pe *dead.Permanent) (*hold.Hold, error) {
	why := pe.Reason + ": " + dead.SafeDetail(pe.Err, pe.Reason+" failed")
	// The audit event first, then the mark that stops the reconciler: a crash
	// in between leaves the hold unmarked, so the reconciler comes back here
	// and the event (the same Msg-Id) is stored once. The release and the
	// reconciler can also get here at once: only the one whose
	// compare-and-set marks the hold counts and logs it.
	if err := g.Audit.Record(ctx, "unpub-"+h.ID, audit.Event{
		Kind: bus.AuditDead, At: time.Now().UTC(), HoldID: h.ID, PatientKey: h.PatientKey, OrderKey: h.OrderKey, MsgID: h.Inbound.MsgID,
		ControlID: h.Inbound.ControlID, InboundSeq: h.Inbound.Seq, Action: audit.ActionNotDelivered, Path: h.Release.Path,
		Reason: why, Actor: "resultgate", Role: hold.RoleSystem,
	}); err != nil {
		return h, err
	}
	recorded := false
	out, err := g.Holds.Mutate(ctx, h.ID, func(c *hold.Hold) error {
		recorded = false
		if c.PublishError != "" || c.Published {
			return store.ErrNoChange
		}
		c.PublishError = why
		recorded = true
		return nil
	})
	if err != nil {
		return h, fmt.Errorf("recording that hold %s cannot be published: %w", h.ID, err)
	}
	g.View.Observe(out)
	if !recorded {
		return out, ErrUnpublishable
	}
	// Counted with the dead letters (resultgate_dead_letters_total{reason="unpublishable"}),
	// not as a classify outcome: the message was classified; its release cannot be published.
	g.Metrics.Dead("unpublishable")
	g.Log.Error().Str("hold_id", h.ID).Str("reason", why).Msg("released result cannot be published to the portal feed; the sender must correct it")
	return out, ErrUnpublishable
}
