package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/resultgate/resultgate/router/hold"
)

// Holds reads and writes hold records in the holds bucket. Every change is a
// compare-and-set on the record's revision.
type Holds struct {
	kv KV[hold.Hold]
}

// NewHolds wraps the holds bucket.
func NewHolds(kv jetstream.KeyValue) *Holds { return &Holds{kv: NewKV[hold.Hold](kv, "hold")} }

// ReadBatched makes Get (and the reads of Mutate) talk to the server
// directly over r's connection (LastReader.one).
func (s *Holds) ReadBatched(r *LastReader) { s.kv.lr = r }

// Create stores a new hold. If a record with the same ID exists (a re-run of
// the classify step) it returns the stored record and created=false.
func (s *Holds) Create(ctx context.Context, h *hold.Hold) (stored *hold.Hold, created bool, err error) {
	data, err := json.Marshal(h)
	if err != nil {
		return nil, false, fmt.Errorf("hold %s: encoding hold: %w", h.ID, err)
	}
	rev, created, err := s.kv.createRaw(ctx, h.ID, data)
	if err != nil {
		return nil, false, fmt.Errorf("hold %s: %w", h.ID, err)
	}
	if !created {
		cur, err := s.Get(ctx, h.ID)
		return cur, false, err
	}
	// The record returned is a copy of the one stored, sharing no memory
	// with h (built from a pooled classification); the classify step's
	// holds have UTC times, for which the copy equals the stored record
	// decoded (TestHoldCopyEqualsClone) at a fraction of a decode's cost.
	c := h.Copy()
	c.Revision = rev
	return c, true, nil
}

// Get returns the current record of hold id, or hold.ErrHoldNotFound.
func (s *Holds) Get(ctx context.Context, id string) (*hold.Hold, error) {
	h, rev, err := s.kv.Get(ctx, id)
	if errors.Is(err, errNotFound) {
		return nil, fmt.Errorf("hold %s: %w", id, hold.ErrHoldNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("hold %s: %w", id, err)
	}
	h.Revision = rev
	return &h, nil
}

// Mutate applies fn to a copy of the current record and writes it back with
// compare-and-set, retrying on a concurrent change. fn may return ErrNoChange
// to leave the record unchanged (Mutate then returns the current record and
// nil) or any other error to abort (Mutate returns the current record and the
// error).
func (s *Holds) Mutate(ctx context.Context, id string, fn func(h *hold.Hold) error) (*hold.Hold, error) {
	v, rev, err := s.kv.Update(ctx, id, func(cur hold.Hold, rev uint64) (hold.Hold, error) {
		if rev == 0 {
			return cur, fmt.Errorf("hold %s: %w", id, hold.ErrHoldNotFound)
		}
		next := cur.Clone()
		if err := fn(next); err != nil {
			return cur, err
		}
		return *next, nil
	})
	if errors.Is(err, hold.ErrHoldNotFound) {
		return nil, err
	}
	if err != nil && rev == 0 {
		return nil, err
	}
	v.Revision = rev
	return &v, err
}

// All reads the latest record of every hold in the bucket. A record that does
// not decode is passed to skip (with its key, never its content) and left out.
func (s *Holds) All(ctx context.Context, skip func(key string, err error)) ([]*hold.Hold, error) {
	w, err := s.kv.kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("reading the holds bucket: %w", err)
	}
	defer func() { _ = w.Stop() }()
	latest := map[string]*hold.Hold{}
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("reading the holds bucket: watcher closed")
			}
			if e == nil { // initial values delivered
				out := make([]*hold.Hold, 0, len(latest))
				for _, h := range latest {
					out = append(out, h)
				}
				return out, nil
			}
			if e.Operation() != jetstream.KeyValuePut {
				delete(latest, e.Key())
				continue
			}
			h, rev, err := s.kv.decode(e)
			if err != nil {
				skip(e.Key(), err)
				continue
			}
			h.Revision = rev
			latest[e.Key()] = &h
		}
	}
}
