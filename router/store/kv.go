package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/resultgate/resultgate/router/hold"
)

// ErrNoChange returned by an Update function means "leave the record as it is".
var ErrNoChange = errors.New("no change")

// errNotFound is KV.Get's answer for a missing (or invalid) key; the typed
// stores turn it into their own sentinel or a zero value.
var errNotFound = errors.New("record not found")

// maxCASAttempts bounds a compare-and-set loop; contention on one record is a
// handful of actors at most.
const maxCASAttempts = 16

// KV is a bucket of JSON records of type T. Reads decode, writes encode, and
// Update is a compare-and-set loop on the record's revision. what names the
// record in errors ("hold", "consent"); errors never carry record content.
type KV[T any] struct {
	kv   jetstream.KeyValue
	what string
}

// NewKV returns the record store of bucket kv.
func NewKV[T any](kv jetstream.KeyValue, what string) KV[T] { return KV[T]{kv: kv, what: what} }

// Get returns the current record of key and its revision; a missing key
// answers errNotFound.
func (s KV[T]) Get(ctx context.Context, key string) (T, uint64, error) {
	var v T
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrInvalidKey) {
		return v, 0, errNotFound
	}
	if err != nil {
		return v, 0, fmt.Errorf("reading %s: %w", s.what, err)
	}
	return s.decode(e)
}

func (s KV[T]) decode(e jetstream.KeyValueEntry) (T, uint64, error) {
	var v T
	if err := json.Unmarshal(e.Value(), &v); err != nil {
		return v, 0, fmt.Errorf("decoding %s %s: %w", s.what, e.Key(), err)
	}
	return v, e.Revision(), nil
}

// Create stores v under key unless the key exists; created is false (and the
// error nil) when it does.
func (s KV[T]) Create(ctx context.Context, key string, v T) (rev uint64, created bool, err error) {
	data, err := json.Marshal(v)
	if err != nil {
		return 0, false, fmt.Errorf("encoding %s: %w", s.what, err)
	}
	return s.createRaw(ctx, key, data)
}

// createRaw is Create with the record already encoded.
func (s KV[T]) createRaw(ctx context.Context, key string, data []byte) (rev uint64, created bool, err error) {
	rev, err = s.kv.Create(ctx, key, data)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("creating %s: %w", s.what, err)
	}
	return rev, true, nil
}

// Put stores v under key whatever is there.
func (s KV[T]) Put(ctx context.Context, key string, v T) (uint64, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return 0, fmt.Errorf("encoding %s: %w", s.what, err)
	}
	rev, err := s.kv.Put(ctx, key, data)
	if err != nil {
		return 0, fmt.Errorf("writing %s: %w", s.what, err)
	}
	return rev, nil
}

// Update reads the record of key and its revision (0 and the zero T when
// there is none), applies fn and writes the result with compare-and-set,
// retrying on a concurrent change. fn may return ErrNoChange to leave the record as it is
// (Update then returns the current record and nil) or any other error to abort
// (returned with the current record). After maxCASAttempts lost races it
// answers hold.ErrConflict.
func (s KV[T]) Update(ctx context.Context, key string, fn func(cur T, rev uint64) (T, error)) (T, uint64, error) {
	for range maxCASAttempts {
		cur, rev, err := s.Get(ctx, key)
		exists := err == nil
		if err != nil && !errors.Is(err, errNotFound) {
			return cur, 0, err
		}
		next, err := fn(cur, rev)
		if errors.Is(err, ErrNoChange) {
			return cur, rev, nil
		}
		if err != nil {
			return cur, rev, err
		}
		data, err := json.Marshal(next)
		if err != nil {
			return cur, rev, fmt.Errorf("encoding %s: %w", s.what, err)
		}
		if exists {
			rev, err = s.kv.Update(ctx, key, data, rev)
		} else {
			rev, err = s.kv.Create(ctx, key, data)
		}
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
			continue
		}
		if err != nil {
			return cur, 0, fmt.Errorf("updating %s: %w", s.what, err)
		}
		return next, rev, nil
	}
	var zero T
	return zero, 0, fmt.Errorf("%s %s: %w", s.what, key, hold.ErrConflict)
}

// History returns every stored version of key, oldest first (as many as the
// bucket keeps), deletes skipped; a missing key answers errNotFound.
func (s KV[T]) History(ctx context.Context, key string) ([]T, []uint64, error) {
	es, err := s.kv.History(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil, errNotFound
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s history: %w", s.what, err)
	}
	out := make([]T, 0, len(es))
	revs := make([]uint64, 0, len(es))
	for _, e := range es {
		if e.Operation() != jetstream.KeyValuePut {
			continue
		}
		v, rev, err := s.decode(e)
		if err != nil {
			return nil, nil, err
		}
		out, revs = append(out, v), append(revs, rev)
	}
	return out, revs, nil
}
