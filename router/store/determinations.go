package store

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/resultgate/resultgate/router/hold"
)

// determinationSet is the value stored per order key.
type determinationSet struct {
	Items []hold.Determination `json:"items"`
}

// Determinations reads and writes the determinations bucket, keyed by order
// key (hold.OrderKey; hold.LegacyOrderKey for those placed before issuers
// were recorded).
type Determinations struct {
	kv KV[determinationSet]
}

// NewDeterminations wraps the determinations bucket.
func NewDeterminations(kv jetstream.KeyValue) *Determinations {
	return &Determinations{kv: NewKV[determinationSet](kv, "determinations")}
}

// Add appends d to its order's determinations (compare-and-set).
func (s *Determinations) Add(ctx context.Context, d hold.Determination) error {
	_, _, err := s.kv.Update(ctx, d.OrderKey, func(set determinationSet, _ uint64) (determinationSet, error) {
		set.Items = append(set.Items, d)
		return set, nil
	})
	return err
}

// Get returns the determinations on order key (none is not an error).
func (s *Determinations) Get(ctx context.Context, orderKey string) ([]hold.Determination, error) {
	ds, _, err := s.GetRev(ctx, orderKey)
	return ds, err
}

// GetRev is Get with the key's bucket revision (0: none stored), which
// changes with every placement, withdrawal and release on the order.
func (s *Determinations) GetRev(ctx context.Context, orderKey string) ([]hold.Determination, uint64, error) {
	if orderKey == "" {
		return nil, 0, nil
	}
	set, rev, err := s.kv.Get(ctx, orderKey)
	if errors.Is(err, errNotFound) {
		return nil, 0, nil
	}
	return set.Items, rev, err
}

// GetRevs is GetRev for each of order keys, in one request when batched
// reads are on (ReadBatched).
func (s *Determinations) GetRevs(ctx context.Context, orderKeys []string) ([][]hold.Determination, []uint64, error) {
	sets, revs, _, err := s.kv.GetMany(ctx, orderKeys)
	if err != nil {
		return nil, nil, err
	}
	out := make([][]hold.Determination, len(sets))
	for i := range sets {
		out[i] = sets[i].Items
	}
	return out, revs, nil
}

// ReadBatched makes GetRevs read its keys in one request through r, and the
// single reads and writes talk to the server directly over r's connection.
func (s *Determinations) ReadBatched(r *LastReader) { s.kv.lr = r }

// List returns every determination, active or ended, oldest first.
func (s *Determinations) List(ctx context.Context) ([]hold.Determination, error) {
	lister, err := s.kv.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing determinations: %w", err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	// The lister unsubscribes itself once every key is delivered, so Stop
	// after a full read answers an invalid subscription: nothing to report.
	_ = lister.Stop()
	var out []hold.Determination
	for _, k := range keys {
		ds, err := s.Get(ctx, k)
		if err != nil {
			return nil, err
		}
		out = append(out, ds...)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out, nil
}

// Find returns the determination with ID id, or ErrDeterminationNotFound.
func (s *Determinations) Find(ctx context.Context, id string) (hold.Determination, error) {
	all, err := s.List(ctx)
	if err != nil {
		return hold.Determination{}, err
	}
	for _, d := range all {
		if d.ID == id {
			return d, nil
		}
	}
	return hold.Determination{}, fmt.Errorf("determination %s: %w", id, hold.ErrDeterminationNotFound)
}

// Update applies fn to the determination id on orderKey (compare-and-set) and
// returns it as stored. fn may return ErrNoChange to leave it as it is.
func (s *Determinations) Update(ctx context.Context, orderKey, id string, fn func(d *hold.Determination) error) (hold.Determination, error) {
	var out hold.Determination
	_, _, err := s.kv.Update(ctx, orderKey, func(set determinationSet, _ uint64) (determinationSet, error) {
		for i := range set.Items {
			if set.Items[i].ID != id {
				continue
			}
			d := set.Items[i]
			if err := fn(&d); err != nil {
				out = set.Items[i]
				return set, err
			}
			items := append([]hold.Determination(nil), set.Items...)
			items[i], out = d, d
			return determinationSet{Items: items}, nil
		}
		return set, fmt.Errorf("determination %s: %w", id, hold.ErrDeterminationNotFound)
	})
	return out, err
}
