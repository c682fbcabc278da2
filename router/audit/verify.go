package audit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/resultgate/resultgate/router/bus"
)

// Kinds of integrity finding.
const (
	// FindingMissing: the AUDIT stream does not exist.
	FindingMissing = "missing"
	// FindingReconfigured: a protection of AUDIT differs from resultgate's
	// configuration (limits, retention, discard, deny delete/purge, rollup).
	FindingReconfigured = "reconfigured"
	// FindingTruncated: events at the start or the end of the trail are gone.
	FindingTruncated = "truncated"
	// FindingGap: events inside the trail are gone (missing sequences).
	FindingGap = "gap"
	// FindingEdit: an event does not match the chain or the checkpoint.
	FindingEdit = "edit"
	// FindingUnchained: an event without a chain header after the chain
	// began, written by something that is not resultgate's Trail.
	FindingUnchained = "unchained"
	// FindingCheckpoint: the checkpoint's signature does not verify.
	FindingCheckpoint = "checkpoint"
)

// ErrIntegrity is wrapped by Report.Err when the check found something.
var ErrIntegrity = errors.New("audit trail integrity check failed")

// Recovery tells the operator what to do about a finding; logged at start,
// served on /readyz and printed by `resultgate audit verify`.
const Recovery = "run `resultgate audit verify` for the details; restore AUDIT from a backup of the data directory " +
	"(or a stream backup) if you have one; otherwise record the loss and accept the trail as it stands with " +
	"`resultgate audit init --accept-new --by NAME --reason TEXT`, then restart serve (docs/OPERATIONS.md, \"Audit trail integrity\")"

// Finding is one integrity problem of the trail.
type Finding struct {
	Kind string `json:"kind"`
	// Seq is the first AUDIT sequence concerned (0 when the finding is about
	// the stream as a whole); Last the last one of a range.
	Seq    uint64 `json:"seq,omitempty"`
	Last   uint64 `json:"last,omitempty"`
	Detail string `json:"detail"`
}

func (f Finding) String() string { return f.Kind + ": " + f.Detail }

// Report is the result of Check or Verify.
type Report struct {
	// Stream is false when AUDIT does not exist.
	Stream   bool   `json:"stream"`
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
	Msgs     uint64 `json:"msgs"`
	Deleted  uint64 `json:"deleted"`
	// Checkpoint is the latest checkpoint (nil when there is none), and
	// CheckpointSigned whether its signature was checked (with a key) and
	// holds.
	Checkpoint       *Checkpoint `json:"checkpoint,omitempty"`
	CheckpointSigned bool        `json:"checkpoint_signed"`
	// Walked is true for Verify (every event read); Chained counts events
	// with a chain header, Legacy those before the chain began.
	Walked   bool      `json:"walked"`
	Chained  uint64    `json:"chained,omitempty"`
	Legacy   uint64    `json:"legacy,omitempty"`
	Findings []Finding `json:"findings"`
	// Accepted are what Verify found up to the checkpoint's AcceptedSeq,
	// which an operator accepted with `audit init --accept-new`.
	Accepted []Finding `json:"accepted,omitempty"`
	// Recovery is what to do, set when there are findings.
	Recovery string `json:"recovery,omitempty"`
}

func (r *Report) add(f Finding) { r.Findings = append(r.Findings, f) }

// Summary returns the findings on one line.
func (r *Report) Summary() string {
	s := make([]string, len(r.Findings))
	for i, f := range r.Findings {
		s[i] = f.String()
	}
	return strings.Join(s, "; ")
}

// Err returns nil without findings, else an error wrapping ErrIntegrity that
// names them and the recovery.
func (r *Report) Err() error {
	if len(r.Findings) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s; %s", ErrIntegrity, r.Summary(), Recovery)
}

// CheckOptions configures Check and Verify.
type CheckOptions struct {
	// Key verifies the checkpoint's signature (CheckpointKey of the instance
	// secret); without it the signature is not checked.
	Key []byte
	// Expected is AUDIT's configuration as resultgate creates it; default
	// bus.StreamConfigs(bus.StreamsConfig{})'s.
	Expected *jetstream.StreamConfig
}

func (o CheckOptions) expected() jetstream.StreamConfig {
	if o.Expected != nil {
		return *o.Expected
	}
	for _, c := range bus.StreamConfigs(bus.StreamsConfig{}) {
		if c.Name == bus.StreamAudit {
			return c
		}
	}
	panic("bus.StreamConfigs has no AUDIT") // the wire contract names it
}

// Check inspects the trail cheaply (four requests, whatever its length), for
// start and /readyz: AUDIT exists with its protections, it neither ends
// before nor starts after the checkpoint, lost no interior event since, the
// event at the checkpoint still has the checkpointed link, and the
// checkpoint's signature holds.
func Check(ctx context.Context, js jetstream.JetStream, opts CheckOptions) (*Report, error) {
	r := &Report{Findings: []Finding{}}
	cp, err := LoadCheckpoint(ctx, js)
	if err != nil {
		return nil, err
	}
	r.Checkpoint = cp
	if cp != nil && len(opts.Key) > 0 {
		r.CheckpointSigned = cp.Valid(opts.Key)
		if !r.CheckpointSigned {
			r.add(Finding{Kind: FindingCheckpoint, Seq: cp.Seq, Detail: fmt.Sprintf(
				"the checkpoint of %s (sequence %d) is not signed with this instance's secret: written without the secret, or with another partition key",
				cp.At.Format(time.RFC3339), cp.Seq)})
		}
	}
	s, err := js.Stream(ctx, bus.StreamAudit)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		d := "the AUDIT stream does not exist"
		if cp != nil {
			d += fmt.Sprintf("; the checkpoint of %s shows it held %d events up to sequence %d: it was deleted", cp.At.Format(time.RFC3339), cp.Msgs, cp.Seq)
		} else {
			d += ", but the other streams do: it was deleted (resultgate creates it only with them, on a new installation)"
		}
		r.add(Finding{Kind: FindingMissing, Detail: d})
		r.Recovery = Recovery
		return r, nil
	}
	if err != nil {
		return nil, fmt.Errorf("checking the audit trail: %w", err)
	}
	info := s.CachedInfo() // fresh: js.Stream just read it
	r.Stream = true
	st := info.State
	r.FirstSeq, r.LastSeq, r.Msgs, r.Deleted = st.FirstSeq, st.LastSeq, st.Msgs, uint64(st.NumDeleted)
	want := opts.expected()
	for _, d := range configDrift(info.Config, want) {
		r.add(Finding{Kind: FindingReconfigured, Detail: d})
	}
	ageLimited := info.Config.MaxAge > 0 && want.MaxAge > 0
	switch {
	case cp == nil:
		// serve writes the first checkpoint at start, before its first
		// chained event: a chained trail without one lost its checkpoints.
		if st.Msgs > 0 {
			m, err := s.GetLastMsgForSubject(ctx, bus.SubjectAuditAll)
			if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
				return nil, fmt.Errorf("checking the audit trail: %w", err)
			}
			if err == nil && m.Header.Get(bus.HeaderAuditPrev) != "" {
				r.add(Finding{Kind: FindingCheckpoint, Detail: fmt.Sprintf(
					"the trail is hash-chained up to sequence %d but has no checkpoint: the checkpoints (bucket %s) were deleted", m.Sequence, bus.KVAuditCheckpoints)})
			}
		}
		if st.Msgs > 0 && st.FirstSeq > 1 && !ageLimited {
			r.add(Finding{Kind: FindingTruncated, Seq: 1, Last: st.FirstSeq - 1, Detail: fmt.Sprintf(
				"the trail starts at sequence %d: events 1 to %d are gone", st.FirstSeq, st.FirstSeq-1)})
		}
		if st.NumDeleted > 0 {
			r.add(Finding{Kind: FindingGap, Detail: fmt.Sprintf("%d events inside the trail are gone", st.NumDeleted)})
		}
	default:
		if st.LastSeq < cp.Seq {
			r.add(Finding{Kind: FindingTruncated, Seq: st.LastSeq + 1, Last: cp.Seq, Detail: fmt.Sprintf(
				"the trail ends at sequence %d, but the checkpoint of %s covers up to sequence %d (%d events): events were lost (stream deleted and recreated, or purged by a changed limit)",
				st.LastSeq, cp.At.Format(time.RFC3339), cp.Seq, cp.Msgs)})
			break
		}
		if st.Msgs > 0 && st.FirstSeq > max(cp.FirstSeq, 1) && !ageLimited {
			r.add(Finding{Kind: FindingTruncated, Seq: cp.FirstSeq, Last: st.FirstSeq - 1, Detail: fmt.Sprintf(
				"the trail starts at sequence %d, the checkpoint of %s at %d: events %d to %d are gone",
				st.FirstSeq, cp.At.Format(time.RFC3339), cp.FirstSeq, cp.FirstSeq, st.FirstSeq-1)})
		}
		if uint64(st.NumDeleted) > cp.Deleted {
			r.add(Finding{Kind: FindingGap, Detail: fmt.Sprintf(
				"%d events inside the trail are gone (%d at the checkpoint of %s)", uint64(st.NumDeleted)-cp.Deleted, cp.Deleted, cp.At.Format(time.RFC3339))})
		}
		if cp.Seq > 0 && cp.Seq >= st.FirstSeq {
			m, err := s.GetMsg(ctx, cp.Seq)
			switch {
			case errors.Is(err, jetstream.ErrMsgNotFound):
				r.add(Finding{Kind: FindingGap, Seq: cp.Seq, Detail: fmt.Sprintf("the checkpointed event at sequence %d is gone", cp.Seq)})
			case err != nil:
				return nil, fmt.Errorf("checking the audit trail: %w", err)
			default:
				if l := Link(m.Sequence, m.Subject, m.Data, m.Header.Get(bus.HeaderAuditPrev)); l != cp.Link {
					r.add(Finding{Kind: FindingEdit, Seq: cp.Seq, Detail: fmt.Sprintf(
						"the event at sequence %d is not the one the checkpoint of %s vouches for: the trail was rewritten up to there",
						cp.Seq, cp.At.Format(time.RFC3339))})
				}
			}
		}
	}
	if len(r.Findings) > 0 {
		r.Recovery = Recovery
	}
	return r, nil
}

// configDrift lists the protections of got that differ from want.
func configDrift(got, want jetstream.StreamConfig) []string {
	var out []string
	diff := func(name string, g, w any) {
		if g != w {
			out = append(out, fmt.Sprintf("%s is %v, want %v", name, g, w))
		}
	}
	limit := func(v int64) int64 { // 0 and -1 both mean unlimited
		if v <= 0 {
			return -1
		}
		return v
	}
	if !slices.Equal(got.Subjects, want.Subjects) {
		out = append(out, fmt.Sprintf("subjects are %v, want %v", got.Subjects, want.Subjects))
	}
	diff("retention", got.Retention.String(), want.Retention.String())
	diff("max_msgs", limit(got.MaxMsgs), limit(want.MaxMsgs))
	diff("max_bytes", limit(got.MaxBytes), limit(want.MaxBytes))
	diff("max_msgs_per_subject", limit(got.MaxMsgsPerSubject), limit(want.MaxMsgsPerSubject))
	diff("max_age", got.MaxAge, want.MaxAge)
	diff("discard", got.Discard.String(), want.Discard.String())
	diff("deny_delete", got.DenyDelete, want.DenyDelete)
	diff("deny_purge", got.DenyPurge, want.DenyPurge)
	diff("allow_rollup_hdrs", got.AllowRollup, want.AllowRollup)
	diff("allow_msg_ttl", got.AllowMsgTTL, want.AllowMsgTTL)
	diff("sealed", got.Sealed, want.Sealed)
	diff("storage", got.Storage.String(), want.Storage.String())
	if got.SubjectTransform != nil || got.RePublish != nil || got.Mirror != nil || len(got.Sources) > 0 {
		out = append(out, "a subject transform, republish, mirror or source was added")
	}
	return out
}

// Verify runs Check and then reads every event of the trail, oldest first,
// checking that each one's chain header is the link of the one before it:
// a missing sequence is a gap, a wrong link an edit, an event without a
// chain header after the chain began an unchained insertion.
func Verify(ctx context.Context, js jetstream.JetStream, opts CheckOptions) (*Report, error) {
	r, err := Check(ctx, js, opts)
	if err != nil || !r.Stream {
		return r, err
	}
	r.Walked = true
	if _, err := walk(ctx, js, r, r.FirstSeq); err != nil {
		return nil, err
	}
	return r, nil
}

// CheckTail runs Check and then reads the events since the checkpoint (at
// most DefaultCheckpointInterval of appends), checking their links as Verify
// does: what serve checks before each checkpoint, so that a checkpoint never
// vouches for a broken chain, and what /readyz reports between checkpoints.
// Without a checkpoint it is Check. It also returns the findings of the walk
// alone.
func CheckTail(ctx context.Context, js jetstream.JetStream, opts CheckOptions) (*Report, []Finding, error) {
	r, err := Check(ctx, js, opts)
	if err != nil || !r.Stream || r.Checkpoint == nil {
		return r, nil, err
	}
	tail, err := walk(ctx, js, r, max(r.Checkpoint.Seq, r.FirstSeq))
	if err != nil {
		return nil, nil, err
	}
	return r, tail, nil
}

// walk reads the events from sequence from to r.LastSeq, adds what the walker
// finds to r and returns those findings (not the accepted ones).
func walk(ctx context.Context, js jetstream.JetStream, r *Report, from uint64) ([]Finding, error) {
	if r.Msgs == 0 || from > r.LastSeq {
		return nil, nil
	}
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if from > 1 {
		cfg = jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from}
	}
	w := &walker{r: r, first: max(from, r.FirstSeq), last: r.LastSeq}
	_, err := bus.ReadAll(ctx, js, bus.StreamAudit, cfg, math.MaxInt,
		func(m jetstream.Msg, seq uint64) (struct{}, error) {
			if seq > w.last {
				return struct{}{}, bus.ErrSkip // appended since the check
			}
			w.event(seq, m.Subject(), m.Data(), m.Headers().Get(bus.HeaderAuditPrev), m.Headers() != nil && m.Headers()[bus.HeaderAuditPrev] != nil)
			return struct{}{}, bus.ErrSkip
		})
	if err != nil {
		return nil, fmt.Errorf("verifying the audit trail: %w", err)
	}
	added := w.end()
	if len(r.Findings) > 0 {
		r.Recovery = Recovery
	}
	return added, nil
}

// walker checks the events of a Verify in order.
type walker struct {
	r           *Report
	first, last uint64
	// prevSeq and prevLink are the previous event's sequence and link.
	prevSeq  uint64
	prevLink string
	started  bool // an event with a chain header was seen
	seen     bool
	findings []Finding
}

func (w *walker) event(seq uint64, subj string, data []byte, prev string, chained bool) {
	if w.seen && seq <= w.prevSeq { // the reader started over: start over too
		*w = walker{r: w.r, first: w.first, last: w.last}
	}
	expectFrom := w.prevSeq + 1
	if !w.seen {
		expectFrom = w.first
	}
	gap := seq > expectFrom
	if gap && w.seen {
		w.findings = append(w.findings, Finding{Kind: FindingGap, Seq: expectFrom, Last: seq - 1,
			Detail: fmt.Sprintf("events %d to %d are missing", expectFrom, seq-1)})
	}
	switch {
	case chained:
		w.r.Chained++
		want := ""
		switch {
		case !w.seen && (seq == 1 || seq == w.first):
			// The first event present: genesis, or the chain continues from
			// an event that aged out or predates a recovery.
			if seq == 1 && prev != bus.AuditGenesis {
				w.findings = append(w.findings, Finding{Kind: FindingEdit, Seq: seq,
					Detail: fmt.Sprintf("event %d is the first of the trail but does not start the chain", seq)})
			}
		case gap:
			// Reported as the gap; the link cannot be checked across it.
		default:
			want = w.prevLink
		}
		if want != "" && prev != want {
			w.findings = append(w.findings, Finding{Kind: FindingEdit, Seq: w.prevSeq, Last: seq,
				Detail: fmt.Sprintf("event %d does not link to event %d: one of them was altered or replaced", seq, w.prevSeq)})
		}
		w.started = true
	case w.started:
		w.findings = append(w.findings, Finding{Kind: FindingUnchained, Seq: seq,
			Detail: fmt.Sprintf("event %d (%s) has no chain header: it was not written by resultgate's audit trail", seq, subj)})
	default:
		w.r.Legacy++
	}
	w.seen, w.prevSeq, w.prevLink = true, seq, Link(seq, subj, data, prev)
}

func (w *walker) end() []Finding {
	if w.seen && w.prevSeq < w.last {
		w.findings = append(w.findings, Finding{Kind: FindingGap, Seq: w.prevSeq + 1, Last: w.last,
			Detail: fmt.Sprintf("events %d to %d are missing", w.prevSeq+1, w.last)})
	}
	// Interior gaps Check already counted are now named by range: keep the
	// ranges, drop the count.
	if slices.ContainsFunc(w.findings, func(f Finding) bool { return f.Kind == FindingGap && f.Seq > 0 }) {
		w.r.Findings = slices.DeleteFunc(w.r.Findings, func(f Finding) bool { return f.Kind == FindingGap && f.Seq == 0 })
	}
	var through uint64
	if cp := w.r.Checkpoint; cp != nil {
		through = cp.AcceptedSeq
	}
	var added []Finding
	for _, f := range w.findings {
		if through > 0 && max(f.Seq, f.Last) <= through {
			w.r.Accepted = append(w.r.Accepted, f)
			continue
		}
		added = append(added, f)
	}
	w.r.Findings = append(w.r.Findings, added...)
	return added
}
