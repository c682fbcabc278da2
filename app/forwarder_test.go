package app

import (
	"context"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/hl7"
	"github.com/resultgate/resultgate/hl7/mllp"
	"github.com/resultgate/resultgate/internal/testutil"
)

// downstream is a portal interface engine on loopback that ACKs everything.
type downstream struct {
	mu   sync.Mutex
	msgs []string
}

func (d *downstream) HandleMessage(_ context.Context, _ mllp.Peer, frame []byte) []byte {
	m, err := hl7.Parse(frame)
	if err != nil {
		return hl7.BuildACKFromBytes(frame, hl7.AR)
	}
	d.mu.Lock()
	d.msgs = append(d.msgs, m.ControlID())
	d.mu.Unlock()
	return hl7.BuildACK(m, hl7.AA)
}

func (d *downstream) HandleTooLarge(context.Context, mllp.Peer, []byte, int64) []byte { return nil }

func (d *downstream) got() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.msgs...)
}

func TestServeForwardsPortalFeedOverMLLP(t *testing.T) {
	ds := &downstream{}
	srv := mllp.NewServer(mllp.ServerConfig{Logger: zerolog.Nop()}, ds)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})

	cfg, err := config.Parse([]byte("forwarder:\n  enabled: true\n  addr: " + ln.Addr().String() + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	base := testConfig(t, t.TempDir())
	cfg.DataDir, cfg.Durability, cfg.MLLP, cfg.HTTP, cfg.NATS = base.DataDir, base.Durability, base.MLLP, base.HTTP, base.NATS
	a := startApp(t, cfg)
	sendAll(t, a.MLLPAddr().String(), msg(labORU, "FWD1"), msg(labORU, "FWD2"))
	testutil.Eventually(t, 20*time.Second, "both results delivered downstream", func() bool {
		return len(ds.got()) >= 2
	})
	got := ds.got()
	slices.Sort(got) // two patients: two partitions, no order between them
	if strings.Join(got, ",") != "FWD1,FWD2" {
		t.Errorf("downstream received %v, want FWD1 and FWD2 once each", got)
	}
}
