package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/resultgate/resultgate/router/bus"
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
	// stream and pre are the bucket's stream (KV_<bucket>) and subject
	// prefix ($KV.<bucket>.).
	stream, pre string
	// lr, when set, reads several keys in one request (GetMany), and Get
	// and Put talk to the server directly over its connection.
	lr *LastReader
}

// NewKV returns the record store of bucket kv.
func NewKV[T any](kv jetstream.KeyValue, what string) KV[T] {
	return KV[T]{kv: kv, what: what, stream: "KV_" + kv.Bucket(), pre: "$KV." + kv.Bucket() + "."}
}

// Get returns the current record of key and its revision; a missing key
// answers errNotFound.
func (s KV[T]) Get(ctx context.Context, key string) (T, uint64, error) {
	var v T
	if s.lr != nil {
		e, found, err := s.lr.one(ctx, s.stream, s.pre, key)
		switch {
		case errors.Is(err, errBatchUnavailable): // read through jetstream below
		case err != nil:
			return v, 0, fmt.Errorf("reading %s: %w", s.what, err)
		case !found:
			return v, 0, errNotFound
		default:
			return s.decodeValue(key, e.value, e.rev)
		}
	}
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrInvalidKey) {
		return v, 0, errNotFound
	}
	if err != nil {
		return v, 0, fmt.Errorf("reading %s: %w", s.what, err)
	}
	return s.decode(e)
}

// GetMany returns the current records of keys (at most a few; "" and
// repeated keys are allowed) as Get would, one result per key: found is
// false (and the record zero) for a missing key. With a LastReader the keys
// are read in one request; otherwise, or when the server does not answer
// that form, one Get per distinct key, at once.
func (s KV[T]) GetMany(ctx context.Context, keys []string) (vals []T, revs []uint64, found []bool, err error) {
	vals, revs, found = make([]T, len(keys)), make([]uint64, len(keys)), make([]bool, len(keys))
	var distinct []string
	for _, k := range keys {
		if k != "" && !slices.Contains(distinct, k) {
			distinct = append(distinct, k)
		}
	}
	if len(distinct) == 0 {
		return vals, revs, found, nil
	}
	if s.lr != nil && len(distinct) > 1 {
		got, err := s.lr.last(ctx, s.stream, s.pre, distinct)
		if err == nil {
			for i, k := range keys {
				e, ok := got[k]
				if !ok {
					continue
				}
				if vals[i], revs[i], err = s.decodeValue(k, e.value, e.rev); err != nil {
					return vals, revs, found, err
				}
				found[i] = true
			}
			return vals, revs, found, nil
		}
		if !errors.Is(err, errBatchUnavailable) {
			return vals, revs, found, fmt.Errorf("reading %s: %w", s.what, err)
		}
	}
	type one struct {
		v   T
		rev uint64
		err error
	}
	res := make([]one, len(distinct))
	var wg sync.WaitGroup
	for i, k := range distinct[1:] {
		wg.Go(func() { r := &res[i+1]; r.v, r.rev, r.err = s.Get(ctx, k) })
	}
	res[0].v, res[0].rev, res[0].err = s.Get(ctx, distinct[0])
	wg.Wait()
	for i, k := range keys {
		if k == "" {
			continue
		}
		r := res[slices.Index(distinct, k)]
		switch {
		case errors.Is(r.err, errNotFound):
		case r.err != nil:
			return vals, revs, found, r.err
		default:
			vals[i], revs[i], found[i] = r.v, r.rev, true
		}
	}
	return vals, revs, found, nil
}

func (s KV[T]) decode(e jetstream.KeyValueEntry) (T, uint64, error) {
	return s.decodeValue(e.Key(), e.Value(), e.Revision())
}

// decodeValue decodes the record stored under key at revision rev.
func (s KV[T]) decodeValue(key string, data []byte, rev uint64) (T, uint64, error) {
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		return v, 0, fmt.Errorf("decoding %s %s: %w", s.what, key, err)
	}
	return v, rev, nil
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
	if s.lr != nil && validKey(key) {
		// What jetstream's KeyValue.Put does for a bucket of this account
		// (no domain, not a mirror): a publish to the key's subject.
		ack, err := bus.Publish(ctx, s.lr.nc, &nats.Msg{Subject: s.pre + key, Data: data}, bus.PublishOpts{})
		if err != nil {
			return 0, fmt.Errorf("writing %s: %w", s.what, err)
		}
		return ack.Sequence, nil
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
