package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/resultgate/resultgate/policy"
	"github.com/resultgate/resultgate/router/hold"
)

// OrderEntry is the orders-index value: the latest version of an order.
type OrderEntry struct {
	// HoldID is the hold (or, for an immediate release, the release) ID of the
	// latest version.
	HoldID string `json:"hold_id"`
	// State is the state when written; for held versions the hold record is
	// authoritative.
	State hold.HoldState `json:"state"`
	MsgID string         `json:"msg_id"`
	At    time.Time      `json:"at"`
	// Prior is the version this one followed, kept so a re-run of the same
	// message sees the prior it saw the first time.
	Prior *policy.Prior `json:"prior,omitempty"`
}

// Orders reads and writes the orders bucket.
type Orders struct {
	kv KV[OrderEntry]
}

// NewOrders wraps the orders bucket.
func NewOrders(kv jetstream.KeyValue) *Orders {
	return &Orders{kv: NewKV[OrderEntry](kv, "order index")}
}

// Get returns the latest version of order key, or ok=false.
func (o *Orders) Get(ctx context.Context, orderKey string) (OrderEntry, bool, error) {
	if orderKey == "" {
		return OrderEntry{}, false, nil
	}
	e, _, err := o.kv.Get(ctx, orderKey)
	if errors.Is(err, errNotFound) {
		return e, false, nil
	}
	if err != nil {
		return e, false, err
	}
	return e, true, nil
}

// GetMany returns the latest version of each of order keys (found[i] false
// for a missing or empty key), in one request when batched reads are on
// (ReadBatched).
func (o *Orders) GetMany(ctx context.Context, orderKeys ...string) (entries []OrderEntry, found []bool, err error) {
	entries, _, found, err = o.kv.GetMany(ctx, orderKeys)
	return entries, found, err
}

// ReadBatched makes GetMany read its keys in one request through r, and Get
// and Put talk to the server directly over r's connection.
func (o *Orders) ReadBatched(r *LastReader) { o.kv.lr = r }

// Put records e as the latest version of order key.
func (o *Orders) Put(ctx context.Context, orderKey string, e OrderEntry) error {
	if orderKey == "" {
		return nil
	}
	_, err := o.kv.Put(ctx, orderKey, e)
	return err
}

// Delete forgets order key's latest version (as when the index entry is lost:
// a later version of the order is then treated as a first version).
func (o *Orders) Delete(ctx context.Context, orderKey string) error {
	if err := o.kv.kv.Delete(ctx, orderKey); err != nil {
		return fmt.Errorf("deleting order index entry: %w", err)
	}
	return nil
}
