package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// LastReader reads the latest value of several keys of one bucket in one
// request: JetStream's batched direct get ("multi_last", nats-server 2.11
// and later), answered with one message per key found and an end-of-batch
// marker, or a single "no results" when none is. The classify step reads
// two keys of the orders and of the determinations buckets for every
// message (the order's key and its legacy key, mostly both missing); one
// request each instead of two halves those round trips, and the server's
// work with them.
//
// A server that does not answer the batched form (older servers, or a
// bucket without direct gets) is read key by key instead, as before. One
// LastReader serves every bucket of a connection; it is safe for concurrent
// use.
type LastReader struct {
	nc *nats.Conn

	mu     sync.Mutex
	sub    *nats.Subscription
	prefix string
	next   uint64
	wait   map[string]chan *nats.Msg

	// unsupported is set once the server answers the batched form with a
	// request error: every later read goes key by key.
	unsupported atomic.Bool
}

// NewLastReader returns the batched reader of connection nc.
func NewLastReader(nc *nats.Conn) *LastReader {
	return &LastReader{nc: nc, wait: map[string]chan *nats.Msg{}}
}

// defaultReadTimeout bounds a batched read whose context has no deadline,
// as jetstream bounds its own requests.
const defaultReadTimeout = 5 * time.Second

// errBatchUnavailable makes the caller fall back to reading key by key.
var errBatchUnavailable = errors.New("batched direct get unavailable")

// lastEntry is one key's latest stored value: its data and revision. A key
// whose latest entry is a delete or purge marker is reported as not found,
// as jetstream's KeyValue.Get does.
type lastEntry struct {
	value []byte
	rev   uint64
}

// validKey reports whether k is a valid KV key, as jetstream's KeyValue
// checks it: [-/_=.a-zA-Z0-9]+, neither starting nor ending with a dot.
func validKey(k string) bool {
	if k == "" || k[0] == '.' || k[len(k)-1] == '.' {
		return false
	}
	for i := 0; i < len(k); i++ {
		switch c := k[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '-', c == '/', c == '_', c == '=', c == '.':
		default:
			return false
		}
	}
	return true
}

// subscribe starts the reply subscription (with r.mu held).
func (r *LastReader) subscribe() error {
	if r.sub != nil && r.sub.IsValid() {
		return nil
	}
	prefix := r.nc.NewRespInbox() + "."
	sub, err := r.nc.Subscribe(prefix+"*", func(m *nats.Msg) {
		tok := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
		r.mu.Lock()
		ch := r.wait[tok]
		r.mu.Unlock()
		if ch == nil {
			return // a late answer to a read that has given up
		}
		select {
		case ch <- m:
		default: // more answers than keys asked for: the read ends on its own
		}
	})
	if err != nil {
		return fmt.Errorf("subscribing for batched reads: %w", err)
	}
	r.sub, r.prefix = sub, prefix
	return nil
}

// one reads the latest entry of key in stream (a bucket's KV_<bucket>) under
// subject prefix pre ("$KV.<bucket>."), with one direct get by subject, as
// jetstream's KeyValue.Get does for a bucket with direct gets, without its
// per-call overhead (a regular expression for the key, the API request
// machinery). found is false for a missing, deleted or purged key and for a
// key jetstream would refuse as invalid (KV.Get answers both as not found).
// errBatchUnavailable means the server does not serve the direct form: the
// caller reads through jetstream.
func (r *LastReader) one(ctx context.Context, stream, pre, key string) (lastEntry, bool, error) {
	if !validKey(key) {
		return lastEntry{}, false, nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultReadTimeout)
		defer cancel()
	}
	m, err := r.nc.RequestWithContext(ctx, "$JS.API.DIRECT.GET."+stream+"."+pre+key, nil)
	if errors.Is(err, nats.ErrNoResponders) {
		// No direct gets on this bucket (or its stream is briefly without
		// a leader): jetstream's Get knows both cases.
		return lastEntry{}, false, errBatchUnavailable
	}
	if err != nil {
		return lastEntry{}, false, fmt.Errorf("direct read of %s: %w", stream, err)
	}
	switch status := m.Header.Get("Status"); status {
	case "":
	case "404":
		return lastEntry{}, false, nil
	default: // jetstream's Get reports it as it should
		return lastEntry{}, false, errBatchUnavailable
	}
	if subj := m.Header.Get(jetstream.SubjectHeader); subj != pre+key {
		return lastEntry{}, false, fmt.Errorf("direct read of %s: answer for another subject", stream)
	}
	if op := m.Header.Get("KV-Operation"); op != "" {
		return lastEntry{}, false, nil // deleted or purged: not found
	}
	rev, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
	if err != nil {
		return lastEntry{}, false, fmt.Errorf("direct read of %s: sequence: %w", stream, err)
	}
	return lastEntry{value: m.Data, rev: rev}, true, nil
}

// last reads the latest entries of keys (at most a few) in stream (a
// bucket's KV_<bucket>) under subject prefix pre ("$KV.<bucket>."). The map
// holds the keys found.
func (r *LastReader) last(ctx context.Context, stream, pre string, keys []string) (map[string]lastEntry, error) {
	if r.unsupported.Load() {
		return nil, errBatchUnavailable
	}
	// {"multi_last":["$KV.b.k1","$KV.b.k2"]}, written by hand: a valid key
	// ([-/_=.a-zA-Z0-9]+, as jetstream checks) needs no escaping.
	req := make([]byte, 0, 16+len(keys)*(len(pre)+40))
	req = append(req, `{"multi_last":[`...)
	for i, k := range keys {
		if !validKey(k) {
			return nil, errBatchUnavailable // Get answers an invalid key
		}
		if i > 0 {
			req = append(req, ',')
		}
		req = append(req, '"')
		req = append(req, pre...)
		req = append(req, k...)
		req = append(req, '"')
	}
	req = append(req, "]}"...)
	ch := make(chan *nats.Msg, len(keys)+2)
	r.mu.Lock()
	if err := r.subscribe(); err != nil {
		r.mu.Unlock()
		return nil, err
	}
	r.next++
	tok := strconv.FormatUint(r.next, 36)
	r.wait[tok] = ch
	reply := r.prefix + tok
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.wait, tok)
		r.mu.Unlock()
	}()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultReadTimeout)
		defer cancel()
	}
	if err := r.nc.PublishMsg(&nats.Msg{Subject: "$JS.API.DIRECT.GET." + stream, Reply: reply, Data: req}); err != nil {
		return nil, fmt.Errorf("requesting a batched read of %s: %w", stream, err)
	}
	out := make(map[string]lastEntry, len(keys))
	for {
		var m *nats.Msg
		select {
		case m = <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("batched read of %s: %w", stream, ctx.Err())
		}
		if status := m.Header.Get("Status"); status != "" {
			switch status {
			case "404": // no key found
				return out, nil
			case "204": // end of batch
				return out, nil
			case "408", "400":
				// The request is not understood (a server without
				// multi_last reads it as empty): key by key from now on.
				r.unsupported.Store(true)
			}
			return nil, errBatchUnavailable
		}
		subj := m.Header.Get(jetstream.SubjectHeader)
		key, ok := strings.CutPrefix(subj, pre)
		if !ok {
			return nil, fmt.Errorf("batched read of %s: answer for another subject", stream)
		}
		if op := m.Header.Get("KV-Operation"); op != "" {
			continue // deleted or purged: not found
		}
		rev, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("batched read of %s: sequence: %w", stream, err)
		}
		out[key] = lastEntry{value: m.Data, rev: rev}
	}
}
