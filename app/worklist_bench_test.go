package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/auth"
	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/hl7/mllp"
	"github.com/resultgate/resultgate/internal/loadgen"
	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/hold"
	"github.com/resultgate/resultgate/router/holdview"
)

// BenchmarkWorklist measures GET /api/holds as the web page asks it (issue
// 13 point 2): each row's bases in words and its patient and test are read
// from the hold's record and its held message, a bucket read and a stream
// read per row, bounded by the page's limit. "view" is the view's list of the
// same holds without them (what the worklist cost before), so the ratio is
// the price of a readable row. 200 held pathology results, on-call (who reads
// every row).
func BenchmarkWorklist(b *testing.B) {
	const holds = 200
	cfg, err := config.Parse([]byte("policy:\n  time_zone: America/New_York\n  jurisdiction: US-KY\n  jurisdictions:\n    US-KY:\n      statute: US-KY-KRS-333.152\n"))
	if err != nil {
		b.Fatal(err)
	}
	cfg.DataDir, cfg.Durability = b.TempDir(), config.DurabilityOS
	cfg.MLLP.Addr, cfg.HTTP.Addr, cfg.NATS.Listen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:-1"
	tok, err := auth.NewToken(filepath.Join(cfg.DataDir, "tokens.yaml"), "Dr Night", auth.RoleOnCall, "", time.Now())
	if err != nil {
		b.Fatal(err)
	}
	a := New(cfg, zerolog.Nop())
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer scancel()
		a.Stop(sctx)
	}()
	cl, err := mllp.Dial(ctx, mllp.ClientConfig{Addr: a.MLLPAddr().String(), AckTimeout: 10 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	for i := range holds {
		if ack, err := cl.Send(ctx, msg(pathORU, fmt.Sprintf("WLB%04d", i))); err != nil || loadgen.AckCode(ack) != "AA" {
			b.Fatalf("send: %q %v", ack, err)
		}
	}
	_ = cl.Close()
	testutil.Eventually(b, 60*time.Second, "all holds in the view", func() bool {
		hs, _ := a.Service().ListHolds(ctx, holdview.Filter{State: hold.StateHeld})
		return len(hs) == holds
	})
	base := "http://" + a.HTTPAddr().String()
	get := func(b *testing.B, limit int) {
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s/api/holds?limit=%d", base, limit), nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("GET /api/holds: %d", resp.StatusCode)
		}
	}
	for _, rows := range []int{20, 200} {
		b.Run(fmt.Sprintf("api/rows=%d", rows), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				get(b, rows)
			}
		})
	}
	b.Run("view/rows=200", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if hs, _ := a.Service().ListHolds(ctx, holdview.Filter{State: hold.StateHeld, Limit: holds}); len(hs) != holds {
				b.Fatalf("%d holds", len(hs))
			}
		}
	})
}
