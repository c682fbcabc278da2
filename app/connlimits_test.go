package app

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/resultgate/resultgate/hl7/mllp"
	"github.com/resultgate/resultgate/internal/loadgen"
	"github.com/resultgate/resultgate/internal/testutil"
)

// dialMLLPFrom connects to addr from the loopback address local (on Linux
// every address of 127.0.0.0/8 reaches 127.0.0.1), standing for a peer.
func dialMLLPFrom(t *testing.T, addr, local string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

// sendRaw writes msg framed on c and returns the ACK, or the error that ended
// the connection instead.
func sendRaw(c net.Conn, msg []byte) ([]byte, error) {
	if err := mllp.WriteFrame(c, msg); err != nil {
		return nil, err
	}
	return mllp.NewReader(c, 0).ReadFrame()
}

// TestServeConnectionLimits checks that serve's configuration reaches the
// MLLP listener: a peer outside mllp.allowed_networks (a bare address here)
// is refused before its message is read, and at mllp.max_conns a new sender
// evicts the idle connection instead of being refused; /metrics counts both
// by reason, with no address in a label.
func TestServeConnectionLimits(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.MLLP.AllowedNetworks = []string{"127.0.0.1"}
	cfg.MLLP.MaxConns = 2
	a := startApp(t, cfg)
	addr := a.MLLPAddr().String()
	tmpl := fixture(t)

	outsider := dialMLLPFrom(t, addr, "127.0.0.2")
	if ack, err := sendRaw(outsider, loadgen.WithControlID(nil, tmpl, "LIM-OUT")); err == nil {
		t.Fatalf("peer 127.0.0.2 outside allowed_networks got ACK %q", ack)
	} else if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("peer 127.0.0.2 not refused: %v", err)
	}

	idle := dialMLLPFrom(t, addr, "127.0.0.1") // connects and sends nothing
	busy := dialMLLPFrom(t, addr, "127.0.0.1")
	for i := range 2 {
		c := busy
		if i == 1 { // the server is full: this one evicts the idle connection
			c = dialMLLPFrom(t, addr, "127.0.0.1")
		}
		ack, err := sendRaw(c, loadgen.WithControlID(nil, tmpl, fmt.Sprintf("LIM-%d", i)))
		if err != nil || loadgen.AckCode(ack) != "CA" {
			t.Fatalf("sender %d at max_conns: ACK %q, %v; want CA", i, ack, err)
		}
	}
	if _, err := mllp.NewReader(idle, 0).ReadFrame(); err == nil {
		t.Fatal("the idle connection got a frame, want it closed")
	} else if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the idle connection was not evicted: %v", err)
	}

	got := storedControlIDs(t, a.JetStream())
	if len(got) != 2 || got["LIM-0"] != 1 || got["LIM-1"] != 1 {
		t.Errorf("stored %v, want LIM-0 and LIM-1 once each (nothing from the refused peer)", got)
	}
	base := "http://" + a.HTTPAddr().String()
	var body string
	testutil.Eventually(t, 10*time.Second, "connection metrics", func() bool {
		_, body = httpGet(t, base+"/metrics")
		for _, want := range []string{
			`resultgate_mllp_connections_rejected_total{reason="not_allowed"} 1`,
			`resultgate_mllp_connections_rejected_total{reason="evicted_idle"} 1`,
			`resultgate_mllp_connections_rejected_total{reason="limit"} 0`,
			`resultgate_mllp_connections_rejected_total{reason="per_peer"} 0`,
		} {
			if !strings.Contains(body, want) {
				return false
			}
		}
		return true
	})
	if strings.Contains(body, "127.0.0.") {
		t.Error("/metrics contains a peer address")
	}
}
