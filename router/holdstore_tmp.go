package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/resultgate/resultgate/router/hold"
)

// HoldStore reads and writes hold records in the holds bucket. Every change is
// a compare-and-set on the record's revision.
type HoldStore struct {
	kv jetstream.KeyValue
}

// NewHoldStore wraps the holds bucket.
func NewHoldStore(kv jetstream.KeyValue) *HoldStore { return &HoldStore{kv: kv} }

// Create stores a new hold. If a record with the same ID exists (a re-run of
// the classify step) it returns the stored record and created=false.
func (s *HoldStore) Create(ctx context.Context, h *hold.Hold) (stored *hold.Hold, created bool, err error) {
	data, err := json.Marshal(h)
	if err != nil {
		return nil, false, fmt.Errorf("encoding hold %s: %w", h.ID, err)
	}
	rev, err := s.kv.Create(ctx, h.ID, data)
	if err == nil {
		c := h.Clone()
		c.Revision = rev
		return c, true, nil
	}
	if errors.Is(err, jetstream.ErrKeyExists) {
		cur, gerr := s.Get(ctx, h.ID)
		if gerr != nil {
			return nil, false, gerr
		}
		return cur, false, nil
	}
	return nil, false, fmt.Errorf("creating hold %s: %w", h.ID, err)
}

// Get returns the current record of hold id.
func (s *HoldStore) Get(ctx context.Context, id string) (*hold.Hold, error) {
	e, err := s.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrInvalidKey) {
		return nil, fmt.Errorf("hold %s: %w", id, hold.ErrHoldNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading hold %s: %w", id, err)
	}
	return decodeHold(e)
}

func decodeHold(e jetstream.KeyValueEntry) (*hold.Hold, error) {
	var h hold.Hold
	if err := json.Unmarshal(e.Value(), &h); err != nil {
		return nil, fmt.Errorf("decoding hold %s: %w", e.Key(), err)
	}
	h.Revision = e.Revision()
	return &h, nil
}

// errNoChange returned by a Mutate function means "leave the record as it is".
var errNoChange = errors.New("no change")

// maxCASAttempts bounds the compare-and-set loop; contention on one hold is a
// handful of actors at most.
const maxCASAttempts = 16

// Mutate applies fn to the current record and writes it back with
// compare-and-set, retrying on a concurrent change. fn may return errNoChange
// to leave the record unchanged (Mutate then returns the current record and
// nil) or any other error to abort.
func (s *HoldStore) Mutate(ctx context.Context, id string, fn func(h *hold.Hold) error) (*hold.Hold, error) {
	for range maxCASAttempts {
		cur, err := s.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		next := cur.Clone()
		if err := fn(next); err != nil {
			if errors.Is(err, errNoChange) {
				return cur, nil
			}
			return cur, err
		}
		data, err := json.Marshal(next)
		if err != nil {
			return nil, fmt.Errorf("encoding hold %s: %w", id, err)
		}
		rev, err := s.kv.Update(ctx, id, data, cur.Revision)
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("updating hold %s: %w", id, err)
		}
		next.Revision = rev
		return next, nil
	}
	return nil, fmt.Errorf("hold %s: %w", id, hold.ErrConflict)
}
