package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/resultgate/resultgate/hl7"
	"github.com/resultgate/resultgate/policy"
	"github.com/resultgate/resultgate/report"
)

// maxReportDecisions bounds the decision events one report reads from the
// audit trail (each kept as a few words in memory).
const maxReportDecisions = 2_000_000

// Report builds the compliance report for holds created in [since, until):
// it reads every hold record (latest values) from the holds bucket, the
// decisions of the period from the audit trail (for the denominator of hold
// rates), and the demographics (PID-7, PID-8, PID-15) and finalisation time
// (latest OBR-22) of each result from its inbound message, then hands the
// records to package report. Nothing it returns identifies a patient.
func (s *Service) Report(ctx context.Context, since, until time.Time) (*report.Report, error) {
	if !since.IsZero() && !until.IsZero() && !since.Before(until) {
		return nil, fmt.Errorf("report period: since must be before until: %w", ErrBadRequest)
	}
	in := report.Input{Since: since, Until: until, GeneratedAt: s.clock.Now().UTC()}
	holds, err := s.allHolds(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, h := range holds {
		if (!since.IsZero() && h.CreatedAt.Before(since)) || (!until.IsZero() && !h.CreatedAt.Before(until)) {
			continue
		}
		seen[h.ID] = true
		rh := report.Hold{ID: h.ID, State: string(h.State), Tags: h.TagNames(), CreatedAt: h.CreatedAt}
		for _, b := range h.Bases {
			rb := report.Basis{Kind: b.Kind}
			var pb policy.Basis
			if len(b.Detail) > 0 && json.Unmarshal(b.Detail, &pb) == nil {
				rb.ComplianceRisk, rb.Citation = pb.ComplianceRisk, pb.Citation
			}
			rh.Bases = append(rh.Bases, rb)
		}
		if h.Release != nil {
			rh.Release = &report.Release{Path: string(h.Release.Path), Actor: h.Release.Actor, Role: h.Release.Role,
				Reason: h.Release.Reason, At: h.Release.At}
		}
		rh.Demographics, rh.FinalisedAt = s.reportFacts(ctx, h.Inbound)
		in.Holds = append(in.Holds, rh)
	}

	decs, err := s.reportDecisions(ctx, since, until)
	if err != nil {
		s.log.Warn().Err(err).Msg("report: reading decisions from the audit trail; hold rates left out")
	} else {
		in.ResultsKnown = true
		for _, d := range decs {
			if seen[d.HoldID] || d.Action != string(policy.ActionRelease) {
				continue
			}
			seen[d.HoldID] = true
			dem, _ := s.reportFacts(ctx, InboundRef{Stream: StreamHL7In, Seq: d.InboundSeq})
			in.Unheld = append(in.Unheld, report.Result{At: d.At, Demographics: dem})
		}
	}
	return report.Compute(in), nil
}

// allHolds reads the latest value of every key of the holds bucket.
func (s *Service) allHolds(ctx context.Context) ([]*Hold, error) {
	w, err := s.holds.kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("reading the holds bucket: %w", err)
	}
	defer func() { _ = w.Stop() }()
	latest := map[string]*Hold{}
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("reading the holds bucket: watcher closed")
			}
			if e == nil { // initial values delivered
				out := make([]*Hold, 0, len(latest))
				for _, h := range latest {
					out = append(out, h)
				}
				return out, nil
			}
			if e.Operation() != jetstream.KeyValuePut {
				delete(latest, e.Key())
				continue
			}
			h, err := decodeHold(e)
			if err != nil {
				s.log.Warn().Err(err).Str("hold", e.Key()).Msg("report: skipping an unreadable hold record")
				continue
			}
			latest[e.Key()] = h
		}
	}
}

// decisionRef is the part of a decision event the report needs.
type decisionRef struct {
	HoldID     string
	Action     string
	InboundSeq uint64
	At         time.Time
}

// reportDecisions reads the decision events of [since, until) from the
// audit trail.
func (s *Service) reportDecisions(ctx context.Context, since, until time.Time) ([]decisionRef, error) {
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy, FilterSubjects: []string{"audit." + AuditDecision + ".>"}}
	if !since.IsZero() {
		t := since
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &t
	}
	refs, err := readAll(ctx, s.js, StreamAudit, cfg, maxReportDecisions, func(m jetstream.Msg, seq uint64) (decisionRef, error) {
		var e AuditEvent
		if err := json.Unmarshal(m.Data(), &e); err != nil {
			return decisionRef{}, fmt.Errorf("decoding audit seq %d: %w", seq, err)
		}
		return decisionRef{HoldID: e.HoldID, Action: e.Action, InboundSeq: e.InboundSeq, At: e.At}, nil
	})
	if err != nil {
		return nil, err
	}
	out := refs[:0]
	for _, r := range refs {
		if (since.IsZero() || !r.At.Before(since)) && (until.IsZero() || r.At.Before(until)) {
			out = append(out, r)
		}
	}
	return out, nil
}

// reportFacts reads the demographics and the finalisation time (latest
// OBR-22, read in the policy's time zone) of an inbound message. An
// unreadable message yields unknown demographics and a zero time.
func (s *Service) reportFacts(ctx context.Context, ref InboundRef) (report.Demographics, time.Time) {
	var d report.Demographics
	if ref.Seq == 0 {
		return d, time.Time{}
	}
	raw, err := s.InboundMessage(ctx, &Hold{Inbound: ref})
	if err != nil {
		return d, time.Time{}
	}
	m, err := hl7.Parse(raw)
	if err != nil {
		return d, time.Time{}
	}
	if pid, ok := m.PID(); ok {
		d.Known = true
		d.Sex = pid.Sex
		d.Language = pid.PrimaryLanguage.Code
		if d.Language == "" {
			d.Language = pid.PrimaryLanguage.Text
		}
		if !pid.BirthDate.IsZero() {
			if t, err := pid.BirthDate.Time(time.UTC); err == nil {
				d.BirthDate = t
			}
		}
	}
	var fin time.Time
	if r, err := s.policy.Report(m); err == nil {
		for _, o := range r.Orders {
			if o.FinalizedAt.After(fin) {
				fin = o.FinalizedAt
			}
		}
	}
	return d, fin
}
