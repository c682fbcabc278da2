package hold

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"hash"
	"sync"
	"sync/atomic"
)

// macPool keeps keyed HMAC-SHA256 states of one secret for reuse: the
// classify step derives five keys per message (hold, patient, order, legacy
// order, provider) and hmac.New costs a key schedule and five allocations
// each time; a pooled state is Reset instead.
type macPool struct {
	secret []byte
	pool   sync.Pool
}

// macPools holds one pool per secret seen (one or two in a process: the
// deployment's key, tests' keys); read without a lock, replaced whole on a
// new secret.
var (
	macPools   atomic.Pointer[[]*macPool]
	macPoolsMu sync.Mutex
)

// poolFor returns the pool of secret, creating it on first use.
func poolFor(secret []byte) *macPool {
	if ps := macPools.Load(); ps != nil {
		for _, p := range *ps {
			if bytes.Equal(p.secret, secret) {
				return p
			}
		}
	}
	macPoolsMu.Lock()
	defer macPoolsMu.Unlock()
	var cur []*macPool
	if ps := macPools.Load(); ps != nil {
		cur = *ps
		for _, p := range cur {
			if bytes.Equal(p.secret, secret) {
				return p
			}
		}
	}
	p := &macPool{secret: bytes.Clone(secret)}
	p.pool.New = func() any { return hmac.New(sha256.New, p.secret) }
	next := append(append([]*macPool(nil), cur...), p)
	macPools.Store(&next)
	return p
}

// macSum appends HMAC-SHA256(secret, parts joined) to dst, with a pooled
// state.
func macSum(dst, secret []byte, parts ...string) []byte {
	p := poolFor(secret)
	mac := p.pool.Get().(hash.Hash)
	for _, s := range parts {
		mac.Write([]byte(s))
	}
	dst = mac.Sum(dst)
	mac.Reset()
	p.pool.Put(mac)
	return dst
}
