package audit

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/router/bus"
)

// Checkpoint is a signed statement of the audit trail's state: the chain
// link of the event at Seq, and the stream's first sequence, message count
// and deleted count at that point. serve's Monitor writes one every
// DefaultCheckpointInterval when the trail has grown and passed CheckTail,
// into bucket bus.KVAuditCheckpoints. A later trail that ends before Seq, starts
// after FirstSeq, lost messages since, or whose event at Seq has another link
// was truncated or rewritten; the signature (an HMAC keyed from the instance
// secret) means whoever rewrites the trail cannot also write a checkpoint
// that matches, without the secret.
type Checkpoint struct {
	// Seq is the AUDIT sequence the checkpoint covers (0: an empty trail).
	Seq uint64 `json:"seq"`
	// Link is the chain link of the event at Seq (bus.AuditGenesis when the
	// trail had no event).
	Link string `json:"link"`
	// FirstSeq, Msgs and Deleted are the stream's first sequence, message
	// count and interior deleted count up to Seq.
	FirstSeq uint64 `json:"first_seq"`
	Msgs     uint64 `json:"msgs"`
	Deleted  uint64 `json:"deleted"`
	// At is when the checkpoint was written.
	At time.Time `json:"at"`
	// Accepted is set on the checkpoint of `resultgate audit init
	// --accept-new`: an operator accepted the trail as it stands (a new
	// installation, or a loss they have recorded elsewhere).
	Accepted *Acceptance `json:"accepted,omitempty"`
	// AcceptedSeq is the sequence up to which an operator accepted the trail
	// (the Seq of the last accepting checkpoint, carried forward by later
	// ones): Verify reports what it finds up to there as accepted, not as
	// failures.
	AcceptedSeq uint64 `json:"accepted_seq,omitempty"`
	// MAC is the hex HMAC-SHA256 of the checkpoint without MAC, keyed with
	// CheckpointKey.
	MAC string `json:"mac"`
}

// Acceptance records who accepted the trail's state, why, and what the
// integrity check reported at that moment.
type Acceptance struct {
	By       string    `json:"by"`
	Reason   string    `json:"reason"`
	Findings []Finding `json:"findings,omitempty"`
}

// DefaultCheckpointInterval is how often serve checks the trail and writes a
// checkpoint when it has grown. An attacker who rewrites the trail can hide
// only what was appended since the last checkpoint, so it is short; a round
// is a few small requests and a read of the events since the checkpoint.
const DefaultCheckpointInterval = time.Minute

// CheckpointKey derives the checkpoints' HMAC key from the instance secret
// (the partition key every instance shares), so the secret itself signs
// nothing.
func CheckpointKey(secret []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("resultgate audit checkpoint v1"))
	return m.Sum(nil)
}

// mac returns the checkpoint's HMAC under key.
func (c Checkpoint) mac(key []byte) string {
	c.MAC = ""
	b, _ := json.Marshal(c) // a struct of plain fields: cannot fail
	m := hmac.New(sha256.New, key)
	m.Write(b)
	return hex.EncodeToString(m.Sum(nil))
}

// Valid reports whether the checkpoint was signed with key.
func (c Checkpoint) Valid(key []byte) bool {
	want, err := hex.DecodeString(c.MAC)
	if err != nil {
		return false
	}
	got, _ := hex.DecodeString(c.mac(key))
	return hmac.Equal(want, got)
}

// LoadCheckpoint returns the latest checkpoint and its bucket revision, or
// nil when there is none (no bucket or no checkpoint yet).
func LoadCheckpoint(ctx context.Context, js jetstream.JetStream) (*Checkpoint, error) {
	cp, _, err := loadCheckpoint(ctx, js)
	return cp, err
}

func loadCheckpoint(ctx context.Context, js jetstream.JetStream) (*Checkpoint, uint64, error) {
	kv, err := js.KeyValue(ctx, bus.KVAuditCheckpoints)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("reading the audit checkpoint: %w", err)
	}
	e, err := kv.Get(ctx, bus.KeyAuditCheckpoint)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("reading the audit checkpoint: %w", err)
	}
	var cp Checkpoint
	if err := json.Unmarshal(e.Value(), &cp); err != nil {
		return nil, 0, fmt.Errorf("decoding the audit checkpoint (revision %d): %w", e.Revision(), err)
	}
	return &cp, e.Revision(), nil
}

// WriteCheckpoint signs and stores a checkpoint of the trail as it stands.
// Without acc it writes only when the trail has grown past the stored
// checkpoint, and a concurrent writer's newer checkpoint wins; with acc (audit
// init) it replaces the stored one. It returns the checkpoint in force.
func WriteCheckpoint(ctx context.Context, js jetstream.JetStream, key []byte, acc *Acceptance) (*Checkpoint, error) {
	s, err := js.Stream(ctx, bus.StreamAudit)
	if err != nil {
		return nil, fmt.Errorf("writing an audit checkpoint: %w", err)
	}
	st := s.CachedInfo().State
	return writeCheckpoint(ctx, js, s, key, acc, snapshot{last: st.LastSeq, first: st.FirstSeq, msgs: st.Msgs, deleted: uint64(st.NumDeleted)})
}

// snapshot is the state of AUDIT a checkpoint states: the one a check read.
type snapshot struct{ last, first, msgs, deleted uint64 }

// writeCheckpoint writes the checkpoint of AUDIT (stream s) as of snap.
func writeCheckpoint(ctx context.Context, js jetstream.JetStream, s jetstream.Stream, key []byte, acc *Acceptance, snap snapshot) (*Checkpoint, error) {
	if len(key) == 0 {
		return nil, errors.New("writing an audit checkpoint: no key")
	}
	link := bus.AuditGenesis
	if snap.msgs > 0 {
		m, err := s.GetMsg(ctx, snap.last)
		if err != nil {
			return nil, fmt.Errorf("writing an audit checkpoint: event %d: %w", snap.last, err)
		}
		link = Link(m.Sequence, m.Subject, m.Data, m.Header.Get(bus.HeaderAuditPrev))
	}
	cp := &Checkpoint{Seq: snap.last, Link: link, FirstSeq: snap.first, Msgs: snap.msgs, Deleted: snap.deleted,
		At: time.Now().UTC(), Accepted: acc}
	kv, err := js.KeyValue(ctx, bus.KVAuditCheckpoints)
	if err != nil {
		return nil, fmt.Errorf("writing an audit checkpoint: %w", err)
	}
	old, rev, err := loadCheckpoint(ctx, js)
	if err != nil {
		return nil, err
	}
	if acc != nil {
		cp.AcceptedSeq = cp.Seq
		cp.MAC = cp.mac(key)
		val, err := json.Marshal(cp)
		if err != nil {
			return nil, fmt.Errorf("encoding the audit checkpoint: %w", err)
		}
		if _, err := kv.Put(ctx, bus.KeyAuditCheckpoint, val); err != nil {
			return nil, fmt.Errorf("writing an audit checkpoint: %w", err)
		}
		return cp, nil
	}
	if old != nil {
		cp.AcceptedSeq = old.AcceptedSeq
	}
	cp.MAC = cp.mac(key)
	val, err := json.Marshal(cp)
	if err != nil {
		return nil, fmt.Errorf("encoding the audit checkpoint: %w", err)
	}
	if old != nil {
		if old.Seq >= cp.Seq {
			return old, nil
		}
		_, err = kv.Update(ctx, bus.KeyAuditCheckpoint, val, rev)
	} else {
		_, err = kv.Create(ctx, bus.KeyAuditCheckpoint, val)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return LoadCheckpoint(ctx, js) // another instance checkpointed first
	}
	if err != nil {
		return nil, fmt.Errorf("writing an audit checkpoint: %w", err)
	}
	return cp, nil
}

// Monitor is serve's watch over the trail: every round it runs CheckTail and,
// when the trail is intact, writes a checkpoint; Ready reports the latest
// round's findings with a fresh Check, for /readyz. A checkpoint therefore
// never vouches for a damaged trail.
type Monitor struct {
	js  jetstream.JetStream
	key []byte
	log zerolog.Logger

	// tail holds the findings of the latest round that only the walk since
	// the checkpoint sees (links, insertions); Check's own are taken fresh.
	tail atomic.Pointer[[]Finding]
	// logged is the summary last logged, so a finding is logged once each
	// time the set changes.
	logged atomic.Pointer[string]
}

// NewMonitor returns a Monitor of the trail on js signing with key
// (CheckpointKey of the partition secret).
func NewMonitor(js jetstream.JetStream, key []byte, log zerolog.Logger) *Monitor {
	return &Monitor{js: js, key: key, log: log}
}

// Round checks the trail (CheckTail), logs what changed in the findings with
// the recovery, and writes a checkpoint when there is none. It returns the
// report.
func (m *Monitor) Round(ctx context.Context) (*Report, error) {
	rep, tail, err := CheckTail(ctx, m.js, CheckOptions{Key: m.key})
	if err != nil {
		return nil, err
	}
	m.tail.Store(&tail)
	summary := rep.Summary()
	if prev := m.logged.Swap(&summary); prev == nil || *prev != summary {
		if len(rep.Findings) > 0 {
			for _, f := range rep.Findings {
				m.log.Error().Str("finding", f.Kind).Uint64("seq", f.Seq).Msg("audit trail: " + f.Detail)
			}
			m.log.Error().Msg("audit trail integrity check failed; /readyz fails until it is resolved: " + Recovery)
		} else if prev != nil {
			m.log.Info().Msg("audit trail integrity check passes again")
		}
	}
	if len(rep.Findings) == 0 {
		// Exactly what was checked: events appended since wait for the
		// next round.
		s, err := m.js.Stream(ctx, bus.StreamAudit)
		if err != nil {
			return rep, fmt.Errorf("writing an audit checkpoint: %w", err)
		}
		snap := snapshot{last: rep.LastSeq, first: rep.FirstSeq, msgs: rep.Msgs, deleted: rep.Deleted}
		if _, err := writeCheckpoint(ctx, m.js, s, m.key, nil, snap); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// Run runs a Round every interval (DefaultCheckpointInterval when zero)
// until ctx ends.
func (m *Monitor) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultCheckpointInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(ctx, interval)
		_, err := m.Round(cctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			m.log.Warn().Err(err).Msg("audit checkpoint not written")
		}
	}
}

// Ready returns nil when a fresh Check and the latest Round find nothing,
// else the findings and the recovery (wrapping ErrIntegrity).
func (m *Monitor) Ready(ctx context.Context) error {
	rep, err := Check(ctx, m.js, CheckOptions{Key: m.key})
	if err != nil {
		return err
	}
	if t := m.tail.Load(); t != nil {
		rep.Findings = append(rep.Findings, *t...)
	}
	return rep.Err()
}
