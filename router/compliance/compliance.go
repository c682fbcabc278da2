package compliance

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
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

type reportFact struct {
	dem report.Demographics
	fin time.Time
}

// reportFactsAll reads the facts of every ref, in the order of refs. Each
// stream is read once, in sequence order, from the first sequence named to
// the last, through one ordered consumer (bus.ReadAll: one batch in flight,
// bounded in messages and bytes), so the report's memory and its load on the
// server stay bounded whatever the messages' sizes. (It used to fetch each
// message by sequence, 16 at a time: 16 replies of 16 MiB overflowed the
// connection's shared reply inbox and the report failed after minutes.) A
// stream that cannot be read leaves the demographics of its results unknown.
func (s *Builder) reportFactsAll(ctx context.Context, refs []hold.InboundRef) []reportFact {
	out := make([]reportFact, len(refs))
	byStream := map[string]map[uint64][]int{}
	for i, r := range refs {
		if r.Seq == 0 {
			continue
		}
		if r.Stream == "" {
			r.Stream = bus.StreamHL7In
		}
		if byStream[r.Stream] == nil {
			byStream[r.Stream] = map[uint64][]int{}
		}
		byStream[r.Stream][r.Seq] = append(byStream[r.Stream][r.Seq], i)
	}
	for stream, want := range byStream {
		first, last := uint64(math.MaxUint64), uint64(0)
		for seq := range want {
			first, last = min(first, seq), max(last, seq)
		}
		cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: first}
		_, err := bus.ReadAll(ctx, s.JS, stream, cfg, math.MaxInt, func(m jetstream.Msg, seq uint64) (struct{}, error) {
			if err := ctx.Err(); err != nil {
				return struct{}{}, err // cancelled (at shutdown): stop between messages
			}
			if seq > last {
				return struct{}{}, bus.ErrDone
			}
			if is, ok := want[seq]; ok {
				dem, fin := s.reportFacts(m.Data())
				for _, i := range is {
					out[i] = reportFact{dem: dem, fin: fin}
				}
			}
			if seq == last {
				return struct{}{}, bus.ErrDone
			}
			return struct{}{}, bus.ErrSkip
		})
		if err != nil && ctx.Err() == nil {
			s.Log.Warn().Err(err).Str("stream", stream).Msg("report: reading inbound messages; demographics unknown for the rest")
		}
	}
	return out
}

// reportFacts reads the demographics and the finalisation time (latest
// OBR-22, read in the policy's time zone) of an inbound message's bytes. An
// unreadable message yields unknown demographics and a zero time.
//
// Only the MSH, PID, ORC and OBR segments are parsed (factSegments): the
// results and notes, which are most of a large report's bytes, say nothing
// the report counts, and parsing and reading them made a report over
// messages of 16 MiB slow to stop at shutdown.
func (s *Builder) reportFacts(data []byte) (report.Demographics, time.Time) {
	m, err := hl7.ParseWithOptions(factSegments(data), hl7.ParseOptions{NoCopy: true}) // a copy of its own, dropped after
	if err != nil {
		return report.Demographics{}, time.Time{}
	}
	return s.factsOf(m)
}

// factsOf reads the demographics and the finalisation time of m.
func (s *Builder) factsOf(m *hl7.Message) (report.Demographics, time.Time) {
	var d report.Demographics
	if pid, ok := m.PID(); ok {
		// Strings read from m share its bytes: copy the ones kept, so the
		// report does not hold a buffer per message it read in memory.
		d.Known = true
		d.Sex = strings.Clone(pid.Sex)
		d.Language = strings.Clone(pid.PrimaryLanguage.Code)
		if d.Language == "" {
			d.Language = strings.Clone(pid.PrimaryLanguage.Text)
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

// factSegments returns a copy of the first segment (the MSH, with whatever
// precedes it, such as a byte order mark) and the PID, ORC and OBR segments
// of an HL7 message, in their order, each ended by a carriage return: what
// reportFacts reads (the demographics of PID, OBR-22 of each order).
func factSegments(data []byte) []byte {
	keep := func(i int, seg []byte) bool { return i == 0 || isFactSegment(seg) }
	n := 0
	for i, rest := 0, data; ; i++ {
		seg, r, ok := hl7.NextSegment(rest)
		if !ok {
			break
		}
		if keep(i, seg) {
			n += len(seg) + 1
		}
		rest = r
	}
	out := make([]byte, 0, n)
	for i, rest := 0, data; ; i++ {
		seg, r, ok := hl7.NextSegment(rest)
		if !ok {
			break
		}
		if keep(i, seg) {
			out = append(append(out, seg...), '\r')
		}
		rest = r
	}
	return out
}

// isFactSegment reports whether seg is an MSH, PID, ORC or OBR segment.
func isFactSegment(seg []byte) bool {
	if len(seg) < 3 {
		return false
	}
	switch string(seg[:3]) {
	case "MSH", "PID", "ORC", "OBR":
		return len(seg) == 3 || !isNameChar(seg[3])
	}
	return false
}

// isNameChar reports whether c can continue a segment name (so that "OBRX"
// is not taken for OBR).
func isNameChar(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
