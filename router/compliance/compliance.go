package compliance

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/resultgate/resultgate/router/audit"
	"github.com/resultgate/resultgate/router/store"
	"github.com/rs/zerolog"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/resultgate/resultgate/hl7"
	"github.com/resultgate/resultgate/policy"
	"github.com/resultgate/resultgate/report"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
)

// maxReportDecisions bounds the decision events one report reads from the
// audit trail (each kept as a few words in memory).
const maxReportDecisions = 2_000_000

// Builder assembles the compliance report from what the pipeline stores.
type Builder struct {
	JS    jetstream.JetStream
	Holds *store.Holds
	// Report reads inbound messages with Report's location rules (the policy
	// adapter's FromHL7): PID-7, PID-8, PID-15 and OBR-22.
	Policy interface {
		Report(m *hl7.Message) (*policy.Report, error)
	}
	Now func() time.Time
	Log zerolog.Logger
}

// Report builds the compliance report for holds created in [since, until):
// it reads every hold record (latest values) from the holds bucket, the
// decisions of the period from the audit trail (for the denominator of hold
// rates), and the demographics (PID-7, PID-8, PID-15) and finalisation time
// (latest OBR-22) of each result from its inbound message, then hands the
// records to package report. Nothing it returns identifies a patient.
func (s *Builder) Report(ctx context.Context, since, until time.Time) (*report.Report, error) {
	if !since.IsZero() && !until.IsZero() && !since.Before(until) {
		return nil, fmt.Errorf("report period: since must be before until: %w", hold.ErrBadRequest)
	}
	in := report.Input{Since: since, Until: until, GeneratedAt: s.Now().UTC()}
	holds, err := s.allHolds(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var refs []hold.InboundRef
	for _, h := range holds {
		if (!since.IsZero() && h.CreatedAt.Before(since)) || (!until.IsZero() && !h.CreatedAt.Before(until)) {
			continue
		}
		seen[h.ID] = true
		rh := report.Hold{ID: h.ID, State: h.State, Tags: h.TagNames(), CreatedAt: h.CreatedAt}
		for _, b := range h.Bases {
			rb := report.Basis{Kind: b.Kind}
			var pb policy.Basis
			if len(b.Detail) > 0 && json.Unmarshal(b.Detail, &pb) == nil {
				rb.ComplianceRisk, rb.Citation = pb.ComplianceRisk, pb.Citation
			}
			rh.Bases = append(rh.Bases, rb)
		}
		if h.Release != nil {
			rh.Release = &report.Release{Path: h.Release.Path, Actor: h.Release.Actor, Role: h.Release.Role,
				Reason: h.Release.Reason, At: h.Release.At}
		}
		in.Holds = append(in.Holds, rh)
		refs = append(refs, h.Inbound)
	}

	decs, err := s.reportDecisions(ctx, since, until)
	if err != nil {
		s.Log.Warn().Err(err).Msg("report: reading decisions from the audit trail; hold rates left out")
	} else {
		in.ResultsKnown = true
		for _, d := range decs {
			if seen[d.HoldID] || d.Action != string(policy.ActionRelease) {
				continue
			}
			seen[d.HoldID] = true
			in.Unheld = append(in.Unheld, report.Result{At: d.At})
			refs = append(refs, hold.InboundRef{Stream: bus.StreamHL7In, Seq: d.InboundSeq})
		}
	}

	facts := s.reportFactsAll(ctx, refs)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for i := range in.Holds {
		in.Holds[i].Demographics, in.Holds[i].FinalisedAt = facts[i].dem, facts[i].fin
	}
	for i := range in.Unheld {
		in.Unheld[i].Demographics = facts[len(in.Holds)+i].dem
	}
	return report.Compute(in), nil
}

// allHolds reads the latest record of every hold.
func (s *Builder) allHolds(ctx context.Context) ([]*hold.Hold, error) {
	return s.Holds.All(ctx, func(key string, err error) {
		s.Log.Warn().Err(err).Str("hold", key).Msg("report: skipping an unreadable hold record")
	})
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
func (s *Builder) reportDecisions(ctx context.Context, since, until time.Time) ([]decisionRef, error) {
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy, FilterSubjects: []string{bus.AuditKindFilter(bus.AuditDecision)}}
	if !since.IsZero() {
		t := since
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &t
	}
	refs, err := bus.ReadAll(ctx, s.JS, bus.StreamAudit, cfg, maxReportDecisions, func(m jetstream.Msg, seq uint64) (decisionRef, error) {
		var e audit.Event
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

// reportReaders is how many inbound messages a report reads at once: each
// read is a round trip to the stream leader, and a month of results is tens
// of thousands of them.
const reportReaders = 16

type reportFact struct {
	dem report.Demographics
	fin time.Time
}

// reportFactsAll reads the facts of every ref, reportReaders at a time, in
// the order of refs.
func (s *Builder) reportFactsAll(ctx context.Context, refs []hold.InboundRef) []reportFact {
	out := make([]reportFact, len(refs))
	// One stream handle per stream (a lookup is a round trip of its own).
	streams := map[string]jetstream.Stream{}
	for i := range refs {
		if refs[i].Stream == "" {
			refs[i].Stream = bus.StreamHL7In
		}
		if _, ok := streams[refs[i].Stream]; !ok {
			st, err := s.JS.Stream(ctx, refs[i].Stream)
			if err != nil {
				s.Log.Warn().Err(err).Str("stream", refs[i].Stream).Msg("report: inbound stream unavailable; demographics unknown")
			}
			streams[refs[i].Stream] = st
		}
	}
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(reportReaders, len(refs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				out[i].dem, out[i].fin = s.reportFacts(ctx, streams[refs[i].Stream], refs[i].Seq)
			}
		}()
	}
	for i := range refs {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

// reportFacts reads the demographics and the finalisation time (latest
// OBR-22, read in the policy's time zone) of an inbound message. An
// unreadable message yields unknown demographics and a zero time.
func (s *Builder) reportFacts(ctx context.Context, st jetstream.Stream, seq uint64) (report.Demographics, time.Time) {
	var d report.Demographics
	if st == nil || seq == 0 {
		return d, time.Time{}
	}
	raw, err := st.GetMsg(ctx, seq)
	if err != nil {
		return d, time.Time{}
	}
	m, err := hl7.ParseWithOptions(raw.Data, hl7.ParseOptions{NoCopy: true}) // a fetched copy, read-only
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
	if r, err := s.Policy.Report(m); err == nil {
		for _, o := range r.Orders {
			if o.FinalizedAt.After(fin) {
				fin = o.FinalizedAt
			}
		}
	}
	return d, fin
}
