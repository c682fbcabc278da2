package store

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/internal/testutil"
)

// TestKVGetMany reads keys found, missing, deleted, purged, empty and
// repeated, in one request (LastReader) and key by key, and checks both
// against Get: same records, same revisions, the same keys missing.
func TestKVGetMany(t *testing.T) {
	tj := testutil.StartJS(t, config.DurabilityOS)
	ctx := testutil.Ctx(t)
	kv, err := tj.JS.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "many", History: 4})
	if err != nil {
		t.Fatal(err)
	}
	plain := NewKV[counter](kv, "counter")
	for i, k := range []string{"a", "b", "gone", "purged", "b"} {
		if _, err := plain.Put(ctx, k, counter{N: i + 1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := kv.Delete(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if err := kv.Purge(ctx, "purged"); err != nil {
		t.Fatal(err)
	}
	batched := plain
	lr := NewLastReader(tj.NC)
	batched.lr = lr

	cases := []struct {
		name string
		keys []string
	}{
		{"both found", []string{"a", "b"}},
		{"none found", []string{"x", "y"}},
		{"one of two", []string{"x", "b"}},
		{"deleted and purged", []string{"gone", "purged", "a"}},
		{"repeated and empty", []string{"b", "", "b", "x"}},
		{"one key", []string{"a"}},
		{"invalid key", []string{"a", "not a key", ".b"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, s := range []struct {
				name string
				kv   KV[counter]
			}{{"batched", batched}, {"key by key", plain}} {
				vals, revs, found, err := s.kv.GetMany(ctx, c.keys)
				if err != nil {
					t.Fatalf("%s: %v", s.name, err)
				}
				for i, k := range c.keys {
					want, rev, err := plain.Get(ctx, k)
					wantFound := err == nil
					if found[i] != wantFound || vals[i] != want || revs[i] != rev {
						t.Errorf("%s: key %q: got %+v rev %d found %v, want %+v rev %d found %v",
							s.name, k, vals[i], revs[i], found[i], want, rev, wantFound)
					}
				}
			}
		})
	}
	// The batched form itself answered (not the fallback): two of three.
	got, err := lr.last(ctx, "KV_many", "$KV.many.", []string{"a", "b", "x"})
	if err != nil || len(got) != 2 || got["a"].rev == 0 || got["b"].rev <= got["a"].rev {
		t.Fatalf("batched read: %v %v", got, err)
	}
	if lr.unsupported.Load() {
		t.Fatal("the embedded server answered the batched form as unsupported")
	}
	// The same values with the server's batched form refused: key by key.
	lr.unsupported.Store(true)
	vals, _, found, err := batched.GetMany(ctx, []string{"a", "b", "x"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(found, []bool{true, true, false}) || vals[0].N != 1 || vals[1].N != 5 {
		t.Fatalf("fallback: %+v %v", vals, found)
	}
}

// TestLastReaderNoDirect: a request the server cannot serve as a batch
// (here: a stream without direct gets, which nobody answers) is read key by
// key, with the same result.
func TestLastReaderNoDirect(t *testing.T) {
	tj := testutil.StartJS(t, config.DurabilityOS)
	ctx := testutil.Ctx(t)
	kv, err := tj.JS.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "nodirect"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := tj.JS.Stream(ctx, "KV_nodirect")
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.AllowDirect = false
	if _, err := tj.JS.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	// A fresh handle: jetstream reads the stream's direct-get setting once.
	kv, err = tj.JS.KeyValue(ctx, "nodirect")
	if err != nil {
		t.Fatal(err)
	}
	st := NewKV[counter](kv, "counter")
	st.lr = NewLastReader(tj.NC)
	if _, err := st.Put(ctx, "a", counter{N: 7}); err != nil {
		t.Fatal(err)
	}
	vals, _, found, err := st.GetMany(ctx, []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	if !found[0] || found[1] || vals[0].N != 7 {
		t.Fatalf("got %+v %v", vals, found)
	}
}

// TestKVDirectGetPut: with a LastReader, Get reads with one direct get and
// Put publishes to the key's subject; both answer as jetstream's KeyValue
// does (records, revisions, the same keys missing, the entry Put wrote is
// the one KeyValue.Get finds).
func TestKVDirectGetPut(t *testing.T) {
	tj := testutil.StartJS(t, config.DurabilityOS)
	ctx := testutil.Ctx(t)
	kv, err := tj.JS.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "direct", History: 3})
	if err != nil {
		t.Fatal(err)
	}
	plain := NewKV[counter](kv, "counter")
	lr := NewLastReader(tj.NC)
	direct := plain
	direct.lr = lr
	for i, k := range []string{"a", "b", "gone", "purged", "b"} {
		rev, err := direct.Put(ctx, k, counter{N: i + 1})
		if err != nil {
			t.Fatal(err)
		}
		e, err := kv.Get(ctx, k)
		if err != nil || e.Revision() != rev || string(e.Value()) != fmt.Sprintf(`{"n":%d}`, i+1) {
			t.Fatalf("Put %s: revision %d; KeyValue has %v %v", k, rev, e, err)
		}
	}
	if err := kv.Delete(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if err := kv.Purge(ctx, "purged"); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b", "gone", "purged", "missing", "not a key", ".x", "x."} {
		want, wantRev, wantErr := plain.Get(ctx, k)
		got, rev, err := direct.Get(ctx, k)
		if got != want || rev != wantRev || (err == nil) != (wantErr == nil) || (err != nil && !errors.Is(err, errNotFound)) {
			t.Errorf("Get %q: direct %+v rev %d err %v; jetstream %+v rev %d err %v", k, got, rev, err, want, wantRev, wantErr)
		}
	}
	// The direct form itself answered, not the fallback.
	e, found, err := lr.one(ctx, "KV_direct", "$KV.direct.", "b")
	if err != nil || !found || e.rev == 0 || string(e.value) != `{"n":5}` {
		t.Fatalf("direct read: %+v %v %v", e, found, err)
	}
	if _, found, err := lr.one(ctx, "KV_direct", "$KV.direct.", "gone"); err != nil || found {
		t.Fatalf("direct read of a deleted key: found %v, %v", found, err)
	}
}
