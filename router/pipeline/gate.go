package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
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
	js    jetstream.JetStream
	holds *store.Holds
	view  *holdview.View
	audit *audit.Trail
	fhir  FHIREncoder
	// history records a malignancy once the patient has seen it.
	history *store.History
	// feedsPatients says which MSH-11 processing IDs reach the patient feed
	// (HoldsConfig.PatientFeedProcessingIDs); the rest go to the test feed.
	feedsPatients func(processingID string) bool
	log           zerolog.Logger
	m             *Metrics
	kick          chan struct{}
	inMu          sync.Mutex
	inbuf         jetstream.Stream
}

// emitRequest is one result to put on the portal feed.
type emitRequest struct {
	holdID     string
	inbound    hold.InboundRef
	patientKey string
	raw        []byte       // nil: fetched from HL7_IN by inbound.Seq
	msg        *hl7.Message // nil: parsed from raw
	rel        hold.ReleaseInfo
	bases      []hold.Basis
	// retracts is, for a retraction, the hold ID of the release taken back.
	retracts string
}

// inStream returns (and caches) the HL7_IN stream handle.
func (g *Gate) inStream(ctx context.Context) (jetstream.Stream, error) {
	g.inMu.Lock()
	defer g.inMu.Unlock()
	if g.inbuf != nil {
		return g.inbuf, nil
	}
	s, err := g.js.Stream(ctx, bus.StreamHL7In)
	if err != nil {
		return nil, fmt.Errorf("opening stream %s: %w", bus.StreamHL7In, err)
	}
	g.inbuf = s
	return s, nil
}

// fetchInbound returns the raw inbound message at seq.
func (g *Gate) fetchInbound(ctx context.Context, seq uint64) ([]byte, error) {
	s, err := g.inStream(ctx)
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
func (g *Gate) emit(ctx context.Context, r emitRequest) error {
	if r.patientKey == "" {
		// The classify step dead-letters such a result before it is held or
		// released; this catches a hold created before it did (a data-error
		// hold of an older build): it is recorded as unpublishable instead
		// of reaching the feed.
		return permanent(bus.DeadUnattributed, fmt.Errorf("releasing hold %s: %w", r.holdID, dead.ErrUnattributed))
	}
	if r.raw == nil {
		raw, err := g.fetchInbound(ctx, r.inbound.Seq)
		if err != nil {
			return err
		}
		r.raw = raw
	}
	if r.msg == nil {
		m, err := hl7.ParseWithOptions(r.raw, hl7.ParseOptions{NoCopy: true}) // r.raw is read-only
		if err != nil {
			return fmt.Errorf("parsing inbound seq %d for release: %s", r.inbound.Seq, dead.SafeDetail(err, "parse failed"))
		}
		r.msg = m
	}
	hdr := nats.Header{}
	hdr.Set(bus.HeaderHoldID, r.holdID)
	hdr.Set(bus.HeaderReleasePath, string(r.rel.Path))
	if r.rel.Reason != "" {
		hdr.Set(bus.HeaderReleaseReason, url.PathEscape(r.rel.Reason))
	}
	hdr.Set(bus.HeaderReleaseActor, r.rel.Actor)
	hdr.Set(bus.HeaderReleaseRole, r.rel.Role)
	hdr.Set(bus.HeaderReleasedAt, r.rel.At.UTC().Format(time.RFC3339Nano))
	if r.rel.Notify != "" {
		hdr.Set(bus.HeaderNotify, string(r.rel.Notify))
	}
	if r.rel.Note != "" {
		hdr.Set(bus.HeaderNote, url.PathEscape(r.rel.Note))
	}
	if r.patientKey != "" {
		hdr.Set(bus.HeaderPatientKey, r.patientKey)
	}
	if r.inbound.ControlID != "" {
		hdr.Set(bus.HeaderControlID, r.inbound.ControlID)
	}
	hdr.Set(bus.HeaderInboundSeq, strconv.FormatUint(r.inbound.Seq, 10))
	// A retraction has its own Msg-Ids: the result it is made for may be
	// released later under "rel-" (a correction held after its retraction).
	idPrefix := "rel-"
	if r.retracts != "" {
		hdr.Set(bus.HeaderRetracts, r.retracts)
		idPrefix = "ret-"
	}
	// Only production traffic reaches patients (MSH-11): training and
	// debugging messages are released the same way, to the test feed.
	pid := r.msg.MSH().ProcessingID
	hdr.Set(bus.HeaderProcessingID, pid)
	fhirPrefix, hl7Prefix := bus.SubjectPortalFHIRPrefix, bus.SubjectPortalHL7Prefix
	if g.feedsPatients == nil || !g.feedsPatients(pid) {
		fhirPrefix, hl7Prefix = bus.SubjectTestPortalFHIRPrefix, bus.SubjectTestPortalHL7Prefix
	}
	var bundle []byte
	if g.fhir != nil {
		b, err := g.fhir(r.msg, r.holdID, r.rel, r.bases, r.patientKey)
		if err != nil {
			// The mapping is deterministic: retrying cannot fix it.
			return permanent(bus.DeadFHIR, fmt.Errorf("mapping hold %s to FHIR: %w", r.holdID, err))
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
		fhirErr <- g.publish(ctx, fhirPrefix+r.inbound.Partition, idPrefix+r.holdID+"-fhir", hdr, bundle)
	}()
	hl7Err := g.publish(ctx, hl7Prefix+r.inbound.Partition, idPrefix+r.holdID+"-hl7", hdr, r.raw)
	if err := errors.Join(<-fhirErr, hl7Err); err != nil {
		return err
	}
	g.m.releases(r.rel.Path)
	return nil
}

func (g *Gate) publish(ctx context.Context, subj, id string, hdr nats.Header, data []byte) error {
	h := nats.Header{}
	for k, v := range hdr {
		h[k] = v
	}
	stream := bus.StreamPortal
	if strings.HasPrefix(subj, bus.SubjectTestPortalAll[:len(bus.SubjectTestPortalAll)-1]) {
		stream = bus.StreamPortalTest
	}
	_, err := g.js.PublishMsg(ctx, &nats.Msg{Subject: subj, Header: h, Data: data},
		jetstream.WithMsgID(id), jetstream.WithExpectStream(stream))
	if err != nil {
		return fmt.Errorf("publishing %s: %w", subj, err)
	}
	return nil
}

// releaseCheck vets a hold before release (authorisation); it runs inside the
// compare-and-set, on the current record.
type releaseCheck func(h *hold.Hold) error

// Release ends hold id with rel: it moves the record from held to released
// (compare-and-set, so it happens once), appends the transition, audits it,
// publishes the result to the portal feed and marks the record published.
// A hold already released gives ErrAlreadyReleased; a superseded or withdrawn
// one ErrHoldClosed. Once the compare-and-set succeeded the release stands: a
// failed publish is logged and finished by the reconciler, and Release returns
// the released record without error.
func (g *Gate) Release(ctx context.Context, id string, rel hold.ReleaseInfo, check releaseCheck) (*hold.Hold, error) {
	h, err := g.holds.Mutate(ctx, id, func(h *hold.Hold) error {
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
	g.view.Observe(h)
	done, err := g.finish(ctx, h)
	if errors.Is(err, ErrUnpublishable) {
		return done, nil
	}
	if err != nil {
		g.log.Error().Err(err).Str("hold_id", id).Msg("release recorded but not yet published; the reconciler retries")
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
			if err := g.audit.Transition(ctx, &upTo, t); err != nil {
				return h, err
			}
			break
		}
	}
	err := g.emit(ctx, emitRequest{
		holdID: h.ID, inbound: h.Inbound, patientKey: h.PatientKey,
		rel: *h.Release, bases: h.Bases,
	})
	var pe *permanentError
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
		if err := g.history.MarkMalignancy(ctx, h.PatientKey, h.Inbound.MsgID, h.Release.At); err != nil {
			return h, err
		}
	}
	done, err := g.holds.Mutate(ctx, h.ID, func(c *hold.Hold) error {
		if c.Published {
			return store.ErrNoChange
		}
		c.Published = true
		return nil
	})
	if err != nil {
		return h, fmt.Errorf("marking hold %s published: %w", h.ID, err)
	}
	g.view.Observe(done)
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
	for _, h := range g.view.Unpublished() {
		// Re-read: the view may lag behind the bucket.
		cur, err := g.holds.Get(ctx, h.ID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if cur.State != hold.StateReleased || cur.Published || cur.PublishError != "" {
			g.view.Observe(cur)
			continue
		}
		if _, err := g.finish(ctx, cur); errors.Is(err, ErrUnpublishable) {
			continue
		} else if err != nil {
			errs = append(errs, err)
			continue
		}
		g.log.Info().Str("hold_id", cur.ID).Msg("reconciler published a released hold")
	}
	return errors.Join(errs...)
}

// runReconciler reconciles at start, every interval and when kicked, until
// ctx ends.
func (g *Gate) runReconciler(ctx context.Context, clock Clock, every time.Duration) {
	ticks, stop := clock.NewTicker(every)
	defer stop()
	for {
		if err := g.Reconcile(ctx); err != nil && ctx.Err() == nil {
			g.log.Warn().Err(err).Msg("reconcile incomplete; retrying")
		}
		g.m.round()
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
func (g *Gate) unpublishable(ctx context.Context, h *hold.Hold, pe *permanentError) (*hold.Hold, error) {
	why := pe.reason + ": " + dead.SafeDetail(pe.err, pe.reason+" failed")
	// The audit event first, then the mark that stops the reconciler: a crash
	// in between leaves the hold unmarked, so the reconciler comes back here
	// and the event (the same Msg-Id) is stored once. The release and the
	// reconciler can also get here at once: only the one whose
	// compare-and-set marks the hold counts and logs it.
	if err := g.audit.Record(ctx, "unpub-"+h.ID, audit.Event{
		Kind: bus.AuditDead, At: time.Now().UTC(), HoldID: h.ID, PatientKey: h.PatientKey, OrderKey: h.OrderKey, MsgID: h.Inbound.MsgID,
		ControlID: h.Inbound.ControlID, InboundSeq: h.Inbound.Seq, Action: ActionNotDelivered, Path: h.Release.Path,
		Reason: why, Actor: "resultgate", Role: hold.RoleSystem,
	}); err != nil {
		return h, err
	}
	recorded := false
	out, err := g.holds.Mutate(ctx, h.ID, func(c *hold.Hold) error {
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
	g.view.Observe(out)
	if !recorded {
		return out, ErrUnpublishable
	}
	// Counted with the dead letters (resultgate_dead_letters_total{reason="unpublishable"}),
	// not as a classify outcome: the message was classified; its release cannot be published.
	g.m.dead("unpublishable")
	g.log.Error().Str("hold_id", h.ID).Str("reason", why).Msg("released result cannot be published to the portal feed; the sender must correct it")
	return out, ErrUnpublishable
}
