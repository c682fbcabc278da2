package store

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/hold"
)

type counter struct {
	N int `json:"n"`
}

func testBucket(t *testing.T) jetstream.KeyValue {
	t.Helper()
	tj := testutil.StartJS(t, config.DurabilityOS)
	kv, err := tj.JS.CreateKeyValue(testutil.Ctx(t), jetstream.KeyValueConfig{Bucket: "test", History: 8})
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// TestKVUpdateConcurrent has 8 writers increment one record 10 times each
// through Update: compare-and-set loses no increment.
func TestKVUpdateConcurrent(t *testing.T) {
	s := NewKV[counter](testBucket(t), "counter")
	ctx := testutil.Ctx(t)
	var wg sync.WaitGroup
	errs := make(chan error, 80)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				if _, _, err := s.Update(ctx, "k", func(c counter, _ uint64) (counter, error) {
					c.N++
					return c, nil
				}); err != nil && !errors.Is(err, hold.ErrConflict) {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	c, _, err := s.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	// A writer that lost maxCASAttempts races in a row gives up with
	// ErrConflict; with 8 writers that is possible but must be rare, and
	// nothing is ever counted twice.
	if c.N > 80 || c.N < 70 {
		t.Fatalf("counter = %d after 80 increments", c.N)
	}
}

// TestKVUpdateNoChangeAndAbort: ErrNoChange writes nothing and answers the
// current record; another error aborts with it and the current record.
func TestKVUpdateNoChangeAndAbort(t *testing.T) {
	s := NewKV[counter](testBucket(t), "counter")
	ctx := testutil.Ctx(t)
	if _, _, err := s.Get(ctx, "k"); !errors.Is(err, errNotFound) {
		t.Fatalf("Get of a missing key = %v", err)
	}
	if _, created, err := s.Create(ctx, "k", counter{N: 1}); err != nil || !created {
		t.Fatalf("Create = %t, %v", created, err)
	}
	if _, created, err := s.Create(ctx, "k", counter{N: 9}); err != nil || created {
		t.Fatalf("second Create = %t, %v", created, err)
	}
	cur, rev, err := s.Update(ctx, "k", func(c counter, rev uint64) (counter, error) {
		if rev == 0 {
			t.Error("existing record reported missing")
		}
		return c, ErrNoChange
	})
	if err != nil || cur.N != 1 || rev == 0 {
		t.Fatalf("no-change Update = %+v, %d, %v", cur, rev, err)
	}
	boom := errors.New("boom")
	cur, _, err = s.Update(ctx, "k", func(c counter, _ uint64) (counter, error) { c.N = 5; return c, boom })
	if !errors.Is(err, boom) || cur.N != 1 {
		t.Fatalf("aborted Update = %+v, %v", cur, err)
	}
	got, rev2, _ := s.Get(ctx, "k")
	if got.N != 1 || rev2 != rev {
		t.Fatalf("record changed by a no-change or aborted Update: %+v rev %d (was %d)", got, rev2, rev)
	}
	hist, revs, err := s.History(ctx, "k")
	if err != nil || len(hist) != 1 || revs[0] != rev {
		t.Fatalf("History = %+v %v, %v", hist, revs, err)
	}
}

// TestHoldsMutateMissing: a mutation of a hold that does not exist answers
// hold.ErrHoldNotFound and creates nothing.
func TestHoldsMutateMissing(t *testing.T) {
	h := NewHolds(testBucket(t))
	ctx := context.Background()
	if _, err := h.Mutate(ctx, "hnope", func(*hold.Hold) error { return nil }); !errors.Is(err, hold.ErrHoldNotFound) {
		t.Fatalf("Mutate(missing) = %v", err)
	}
	if _, err := h.Get(ctx, "hnope"); !errors.Is(err, hold.ErrHoldNotFound) {
		t.Fatalf("Get after Mutate(missing) = %v", err)
	}
}
