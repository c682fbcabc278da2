package store

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/resultgate/resultgate/router/hold"
)

// determinationSet is the value stored per order key.
type determinationSet struct {
	Items []hold.Determination `json:"items"`
}

// Determinations reads and writes the determinations bucket, keyed by order
// key.
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
	if orderKey == "" {
		return nil, nil
	}
	set, _, err := s.kv.Get(ctx, orderKey)
	if errors.Is(err, errNotFound) {
		return nil, nil
	}
	return set.Items, err
}
