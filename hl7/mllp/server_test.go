package mllp

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/rs/zerolog"
)

// testTimeout bounds every wait in these tests.
const testTimeout = 10 * time.Second

// call is one Handler invocation seen by testHandler.
type call struct {
	peer     Peer
	frame    string
	tooLarge bool
	size     int64
	ctxErr   error
}

// testHandler acknowledges each frame with "ACK:" + frame and records the calls.
// A frame starting with "BLOCK" makes HandleMessage signal entered and wait for
// release (or its context) before answering.
type testHandler struct {
	mu      sync.Mutex
	calls   []call
	entered chan struct{}
	release chan struct{}
	done    chan call // every finished call, when not nil
}

func newTestHandler() *testHandler {
	return &testHandler{entered: make(chan struct{}, 16), release: make(chan struct{}), done: make(chan call, 64)}
}

func (h *testHandler) HandleMessage(ctx context.Context, peer Peer, frame []byte) []byte {
	c := call{peer: peer, frame: string(frame)}
	if bytes.HasPrefix(frame, []byte("BLOCK")) {
		h.entered <- struct{}{}
		select {
		case <-h.release:
		case <-ctx.Done():
			c.ctxErr = ctx.Err()
		}
	}
	if bytes.HasPrefix(frame, []byte("PANIC")) {
		var empty []byte
		_ = empty[len(frame)] // a runtime error
	}
	if bytes.HasPrefix(frame, []byte("SILENT")) {
		h.record(c)
		return nil
	}
	h.record(c)
	return append([]byte("ACK:"), frame...)
}

func (h *testHandler) HandleTooLarge(ctx context.Context, peer Peer, prefix []byte, size int64) []byte {
	h.record(call{peer: peer, frame: string(prefix), tooLarge: true, size: size})
	return []byte("NAK:too large")
}

func (h *testHandler) record(c call) {
	h.mu.Lock()
	h.calls = append(h.calls, c)
	h.mu.Unlock()
	select {
	case h.done <- c:
	default:
	}
}

func (h *testHandler) Calls() []call {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]call(nil), h.calls...)
}

// startServer serves h on 127.0.0.1:0 and shuts the server down at the end of the
// test, checking that Serve returned ErrServerClosed.
func startServer(t *testing.T, cfg ServerConfig, h Handler) (*Server, string) {
	t.Helper()
	s := NewServer(cfg, h)
	return s, serveTest(t, s)
}

// serveTest serves s on 127.0.0.1:0 like startServer, for a server the test
// adjusted after NewServer.
func serveTest(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return ln.Addr().String()
}

// rawConn is a test-side connection speaking MLLP by hand.
type rawConn struct {
	t testing.TB
	net.Conn
	r *Reader
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(testTimeout))
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, Conn: c, r: NewReader(c, 0)}
}

func (c *rawConn) write(s string) {
	c.t.Helper()
	if _, err := c.Write([]byte(s)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *rawConn) expectFrame(want string) {
	c.t.Helper()
	f, err := c.r.ReadFrame()
	if err != nil {
		c.t.Fatalf("reading ACK: %v (want %q)", err, want)
	}
	if string(f) != want {
		c.t.Fatalf("ACK = %q, want %q", f, want)
	}
}

// expectClosed checks that the server closes the connection (within testTimeout).
func (c *rawConn) expectClosed() {
	c.t.Helper()
	f, err := c.r.ReadFrame()
	if err == nil {
		c.t.Fatalf("got frame %q, want the connection closed", f)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.t.Fatalf("connection still open after %s", testTimeout)
	}
}

func TestServerFraming(t *testing.T) {
	msh := "MSH|^~\\&|LIS|HOSP|RG|HOSP|20260101||ORU^R01|1|P|2.5.1\rPID|1\r"
	tests := []struct {
		name    string
		send    []string // written one after the other
		want    []string // ACKs in order
		skipped uint64
	}{
		{name: "one frame", send: []string{framed(msh)}, want: []string{"ACK:" + msh}},
		{name: "split byte by byte", send: strings.Split(framed(msh), ""), want: []string{"ACK:" + msh}},
		{name: "pipelined frames in one write", send: []string{framed("a") + framed("b") + framed("c")},
			want: []string{"ACK:a", "ACK:b", "ACK:c"}},
		{name: "junk before start byte", send: []string{"\r\n\x00junk", framed("a")}, want: []string{"ACK:a"}, skipped: 7},
		{name: "missing CR", send: []string{vt + "a" + fs, vt + "b" + fs}, want: []string{"ACK:a", "ACK:b"}},
		{name: "empty frame", send: []string{framed("")}, want: []string{"ACK:"}},
		{name: "no ACK for nil", send: []string{framed("SILENT"), framed("b")}, want: []string{"ACK:b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHandler()
			s, addr := startServer(t, ServerConfig{}, h)
			c := dialRaw(t, addr)
			for _, p := range tt.send {
				c.write(p)
			}
			for _, w := range tt.want {
				c.expectFrame(w)
			}
			st := s.Stats()
			if st.BytesSkipped != tt.skipped {
				t.Errorf("Stats.BytesSkipped = %d, want %d", st.BytesSkipped, tt.skipped)
			}
			calls := h.Calls()
			if len(calls) == 0 || calls[0].peer.ConnID == 0 || calls[0].peer.Addr.Addr() != netip.MustParseAddr("127.0.0.1") {
				t.Errorf("peer = %+v, want a conn id and 127.0.0.1", calls[0].peer)
			}
		})
	}
}

func TestServerOversizeFrame(t *testing.T) {
	const maxFrame = 1024
	h := newTestHandler()
	s, addr := startServer(t, ServerConfig{MaxFrameSize: maxFrame}, h)
	c := dialRaw(t, addr)
	big := "MSH|^~\\&|LIS|HOSP|RG|HOSP|20260101||ORU^R01|BIG1|P|2.5.1\r" + strings.Repeat("OBX|1|ED|PDF||AAAA\r", 500_000)
	payload := []byte(framed(big) + framed("next"))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	go func() { // the server answers only after the whole frame, so write concurrently
		c.Write(payload)
	}()
	c.expectFrame("NAK:too large")
	c.expectFrame("ACK:next")
	runtime.ReadMemStats(&after)
	// The 9.5 MB frame must not be buffered: the whole exchange (both ends, the
	// race detector's bookkeeping aside) allocates a small fraction of it.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > uint64(len(big))/8 {
		t.Errorf("a %d-byte oversize frame made the process allocate %d bytes", len(big), alloc)
	}
	calls := h.Calls()
	if len(calls) != 2 || !calls[0].tooLarge || calls[0].size != int64(len(big)) || calls[0].frame != big[:maxFrame] {
		t.Fatalf("calls = %d, first tooLarge=%v size=%d prefix ok=%v; want the oversize call with a %d-byte prefix",
			len(calls), calls[0].tooLarge, calls[0].size, calls[0].frame == big[:maxFrame], maxFrame)
	}
	if st := s.Stats(); st.OversizeFrames != 1 || st.Frames != 1 {
		t.Errorf("Stats: OversizeFrames %d, Frames %d; want 1, 1", st.OversizeFrames, st.Frames)
	}
}

func TestServerTimeouts(t *testing.T) {
	tests := []struct {
		name      string
		cfg       ServerConfig
		send      string
		wantIdle  uint64
		wantRead  uint64
		wantFirst string // an ACK expected before the timeout
	}{
		{name: "idle peer", cfg: ServerConfig{IdleTimeout: 100 * time.Millisecond}, wantIdle: 1},
		{name: "idle after a message", cfg: ServerConfig{IdleTimeout: 500 * time.Millisecond}, send: framed("a"), wantFirst: "ACK:a", wantIdle: 1},
		{name: "junk does not reset the idle deadline", cfg: ServerConfig{IdleTimeout: 100 * time.Millisecond}, send: "junk", wantIdle: 1},
		{name: "slow-loris peer mid-frame", cfg: ServerConfig{ReadTimeout: 100 * time.Millisecond, IdleTimeout: time.Hour},
			send: vt + "MSH|^~\\&|", wantRead: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, addr := startServer(t, tt.cfg, newTestHandler())
			c := dialRaw(t, addr)
			if tt.send != "" {
				c.write(tt.send)
			}
			if tt.wantFirst != "" {
				c.expectFrame(tt.wantFirst)
			}
			c.expectClosed()
			testutil.Eventually(t, testTimeout, "timeout counted", func() bool {
				st := s.Stats()
				return st.IdleTimeouts == tt.wantIdle && st.ReadTimeouts == tt.wantRead && st.ActiveConns == 0
			})
		})
	}
}

// TestServerSlowLorisKeepsSending checks that the read deadline covers the whole
// frame: a peer trickling bytes does not extend it.
func TestServerSlowLorisKeepsSending(t *testing.T) {
	s, addr := startServer(t, ServerConfig{ReadTimeout: 200 * time.Millisecond, IdleTimeout: time.Hour}, newTestHandler())
	c := dialRaw(t, addr)
	c.write(vt)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(20 * time.Millisecond) // trickle a byte per tick
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := c.Write([]byte("x")); err != nil {
					return
				}
			}
		}
	}()
	c.expectClosed()
	testutil.Eventually(t, testTimeout, "read timeout counted", func() bool { return s.Stats().ReadTimeouts == 1 })
}

func TestServerClientClosesBeforeACK(t *testing.T) {
	h := newTestHandler()
	s, addr := startServer(t, ServerConfig{}, h)
	c := dialRaw(t, addr)
	c.write(framed("BLOCK-1"))
	<-h.entered
	c.Close() // the sender gives up before the ACK
	close(h.release)
	select {
	case got := <-h.done:
		if got.frame != "BLOCK-1" || got.ctxErr != nil {
			t.Fatalf("handler finished with %+v, want BLOCK-1 completed with a live context", got)
		}
	case <-time.After(testTimeout):
		t.Fatal("handler did not complete")
	}
	testutil.Eventually(t, testTimeout, "connection gone", func() bool { return s.ActiveConns() == 0 })
	// The server carries on.
	c2 := dialRaw(t, addr)
	c2.write(framed("after"))
	c2.expectFrame("ACK:after")
}

// dialFrom dials addr from the loopback address local, to stand for another
// peer: on Linux every address of 127.0.0.0/8 reaches a listener on 127.0.0.1.
func dialFrom(t testing.TB, addr, local string) *rawConn {
	t.Helper()
	d := net.Dialer{Timeout: testTimeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(testTimeout))
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, Conn: c, r: NewReader(c, 0)}
}

// connStates counts the server's connections that are idle and busy.
func connStates(s *Server) (idle, busy int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		switch c.state.Load() {
		case connIdle:
			idle++
		case connBusy:
			busy++
		}
	}
	return idle, busy
}

// waitStates waits until the server has idle idle and busy busy connections.
func waitStates(t *testing.T, s *Server, idle, busy int) {
	t.Helper()
	testutil.Eventually(t, testTimeout, fmt.Sprintf("%d idle and %d busy connections", idle, busy), func() bool {
		i, b := connStates(s)
		return i == idle && b == busy
	})
}

// exchange sends one frame on c and expects its ACK.
func (c *rawConn) exchange(msg string) {
	c.t.Helper()
	c.write(framed(msg))
	c.expectFrame("ACK:" + msg)
}

// TestServerEvictsLongestIdle fills the server with idle connections and checks
// that a new sender is served (it gets its ACK) while the connection idle
// longest is closed, and only that one.
func TestServerEvictsLongestIdle(t *testing.T) {
	const maxConns = 4
	var logs syncBuffer
	s, addr := startServer(t, ServerConfig{MaxConns: maxConns, Logger: zerolog.New(&logs)}, newTestHandler())
	var idle []*rawConn
	for i := range maxConns {
		c := dialRaw(t, addr)
		c.exchange("hi-" + strconv.Itoa(i))
		waitStates(t, s, i+1, 0) // so that each became idle after the previous one
		idle = append(idle, c)
	}
	newcomer := dialRaw(t, addr)
	newcomer.exchange("new sender")
	idle[0].expectClosed()
	for i, c := range idle[1:] {
		c.exchange("still served " + strconv.Itoa(i+1))
	}
	st := s.Stats()
	if st.ConnsEvictedIdle != 1 || st.ConnsRejectedLimit != 0 || st.ConnsAccepted != maxConns+1 {
		t.Errorf("Stats = %+v, want 1 evicted, 0 rejected, %d accepted", st, maxConns+1)
	}
	testutil.Eventually(t, testTimeout, "evicted connection gone", func() bool { return s.ActiveConns() == maxConns })
	var evicted, closed bool
	for _, l := range strings.Split(logs.String(), "\n") {
		evicted = evicted || strings.Contains(l, "mllp idle connection evicted to admit a new one") &&
			strings.Contains(l, `"reason":"evicted_idle"`) && strings.Contains(l, `"limit":"max_conns"`) &&
			strings.Contains(l, `"evicted_conn_id":1,`) && strings.Contains(l, `"conn_id":5,`)
		closed = closed || strings.Contains(l, "mllp connection closed") &&
			strings.Contains(l, `"conn_id":1,`) && strings.Contains(l, `"reason":"evicted while idle"`)
	}
	if !evicted || !closed {
		t.Errorf("log lacks the eviction (%v) or the evicted connection's close (%v):\n%s", evicted, closed, logs.String())
	}
}

// TestServerNeverEvictsBusy checks that connections receiving a frame or
// waiting for their handler are not evicted, that idle ones are evicted in
// their stead, that a new connection is refused when every connection is busy,
// and that the busy ones then get their ACKs.
func TestServerNeverEvictsBusy(t *testing.T) {
	const maxConns = 4
	h := newTestHandler()
	s, addr := startServer(t, ServerConfig{MaxConns: maxConns}, h)

	midFrame := dialRaw(t, addr) // the longest-idle if busy counted as idle
	midFrame.write(vt + "PART")
	waitStates(t, s, 0, 1)
	inHandler := dialRaw(t, addr)
	inHandler.write(framed("BLOCK-stored"))
	<-h.entered
	idle1 := dialRaw(t, addr)
	idle1.exchange("idle 1")
	waitStates(t, s, 1, 2)
	idle2 := dialRaw(t, addr)
	idle2.exchange("idle 2")
	waitStates(t, s, 2, 2)

	// Two newcomers take the idle connections' slots, oldest idle first.
	late1 := dialRaw(t, addr)
	late1.exchange("late 1")
	idle1.expectClosed()
	waitStates(t, s, 2, 2)
	late2 := dialRaw(t, addr)
	late2.exchange("late 2")
	idle2.expectClosed()

	// Now every connection is busy: a newcomer is refused.
	late1.write(vt + "PART-1")
	late2.write(vt + "PART-2")
	waitStates(t, s, 0, maxConns)
	refused := dialRaw(t, addr)
	refused.write(framed("refused"))
	refused.expectClosed()

	midFrame.write("IAL" + fs + cr)
	midFrame.expectFrame("ACK:PARTIAL")
	close(h.release)
	inHandler.expectFrame("ACK:BLOCK-stored")
	late1.write(fs + cr)
	late1.expectFrame("ACK:PART-1")
	late2.write(fs + cr)
	late2.expectFrame("ACK:PART-2")

	st := s.Stats()
	if st.ConnsEvictedIdle != 2 || st.ConnsRejectedLimit != 1 || st.ConnsAccepted != 6 {
		t.Errorf("Stats = %+v, want 2 evicted, 1 rejected at the limit, 6 accepted", st)
	}
	for _, c := range h.Calls() {
		if c.frame == "refused" {
			t.Error("a refused connection's frame reached the handler")
		}
	}
}

// TestServerMaxConnsPerPeer uses 127.0.0.1, .2 and .3 as three peers: a peer
// at its cap evicts its own longest-idle connection, never another peer's, and
// is refused when all of its connections are busy; other peers are served.
func TestServerMaxConnsPerPeer(t *testing.T) {
	s, addr := startServer(t, ServerConfig{MaxConns: 4, MaxConnsPerPeer: 2}, newTestHandler())
	const peerA, peerB, peerC = "127.0.0.1", "127.0.0.2", "127.0.0.3"

	a1 := dialFrom(t, addr, peerA)
	a1.exchange("a1")
	waitStates(t, s, 1, 0)
	a2 := dialFrom(t, addr, peerA)
	a2.exchange("a2")
	waitStates(t, s, 2, 0)
	b1 := dialFrom(t, addr, peerB)
	b1.exchange("b1")
	waitStates(t, s, 3, 0)

	// A at its cap: its own longest-idle connection goes, not B's, though B's
	// is as old.
	a3 := dialFrom(t, addr, peerA)
	a3.exchange("a3")
	a1.expectClosed()
	b1.exchange("b1 still served")

	// A's connections both busy: A's next connection is refused; B is served.
	a2.write(vt + "A2")
	a3.write(vt + "A3")
	waitStates(t, s, 1, 2)
	a4 := dialFrom(t, addr, peerA)
	a4.write(framed("a4"))
	a4.expectClosed()
	b2 := dialFrom(t, addr, peerB)
	b2.exchange("b2")
	waitStates(t, s, 2, 2)

	// The server is full (a2, a3 busy; b1, b2 idle): a third peer evicts the
	// longest-idle connection of any peer, b1.
	c1 := dialFrom(t, addr, peerC)
	c1.exchange("c1")
	b1.expectClosed()
	b2.exchange("b2 still served")
	a2.write(fs + cr)
	a2.expectFrame("ACK:A2")
	a3.write(fs + cr)
	a3.expectFrame("ACK:A3")

	st := s.Stats()
	if st.ConnsEvictedIdle != 2 || st.ConnsRejectedPerPeer != 1 || st.ConnsRejectedLimit != 0 {
		t.Errorf("Stats = %+v, want 2 evicted, 1 rejected per peer, 0 at the limit", st)
	}
}

// TestServerRejectLogRateLimited checks that refusals are logged at most once
// per interval and reason, with the peer address only, and that the next line
// says how many were held back.
func TestServerRejectLogRateLimited(t *testing.T) {
	var buf syncBuffer
	s := NewServer(ServerConfig{
		Logger:          zerolog.New(&buf),
		AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
	}, newTestHandler())
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s.rejectLog.now = clock.Now
	addr := serveTest(t, s)

	lines := func() []string {
		var out []string
		for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			if strings.Contains(l, "peer not in allowed networks") {
				out = append(out, l)
			}
		}
		return out
	}
	const secret = "PID|1||SECRET-MRN"
	for range 3 {
		c := dialFrom(t, addr, "127.0.0.2")
		c.write(framed(secret))
		c.expectClosed()
	}
	if got := lines(); len(got) != 1 || !strings.Contains(got[0], `"suppressed":0`) ||
		!strings.Contains(got[0], `"reason":"not_allowed"`) || !strings.Contains(got[0], `"peer":"127.0.0.2:`) {
		t.Fatalf("after 3 refusals, log lines:\n%s\nwant one, not_allowed, peer 127.0.0.2, suppressed 0", strings.Join(got, "\n"))
	}
	clock.Advance(rejectLogInterval)
	c := dialFrom(t, addr, "127.0.0.2")
	c.expectClosed()
	if got := lines(); len(got) != 2 || !strings.Contains(got[1], `"suppressed":2`) {
		t.Fatalf("after the interval, log lines:\n%s\nwant a second one with suppressed 2", strings.Join(got, "\n"))
	}
	if st := s.Stats(); st.ConnsRejectedNetwork != 4 || st.ConnsAccepted != 0 {
		t.Errorf("Stats = %+v, want 4 rejected by network, 0 accepted", st)
	}
	if strings.Contains(buf.String(), "SECRET") {
		t.Errorf("log contains message content:\n%s", buf.String())
	}
}

func TestRateLog(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := rateLog{interval: time.Minute, now: clock.Now}
	type step struct {
		advance    time.Duration
		reason     admission
		ok         bool
		suppressed uint64
	}
	for i, st := range []step{
		{reason: reasonLimit, ok: true},
		{reason: reasonLimit},
		{reason: reasonEvictedIdle, ok: true}, // reasons are limited apart
		{advance: 59 * time.Second, reason: reasonLimit},
		{reason: reasonPerPeer, ok: true},
		{advance: time.Second, reason: reasonLimit, ok: true, suppressed: 2},
		{reason: reasonLimit},
		{advance: time.Hour, reason: reasonLimit, ok: true, suppressed: 1},
		{reason: reasonEvictedIdle, ok: true},
	} {
		clock.Advance(st.advance)
		ok, n := l.allow(st.reason)
		if ok != st.ok || n != st.suppressed {
			t.Errorf("step %d (%s): allow = %v, %d; want %v, %d", i, st.reason, ok, n, st.ok, st.suppressed)
		}
	}
}

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestServerAllowedNetworks(t *testing.T) {
	tests := []struct {
		name    string
		allowed []netip.Prefix
		local   string // the client's address; 127.0.0.1 if empty
		served  bool
	}{
		{name: "no list allows all", served: true},
		{name: "loopback allowed", allowed: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32")}, served: true},
		{name: "loopback not allowed", allowed: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}},
		{name: "unmasked prefix", allowed: []netip.Prefix{netip.MustParsePrefix("127.0.0.9/8")}, served: true},
		{name: "IPv4-mapped prefix", allowed: []netip.Prefix{netip.MustParsePrefix("::ffff:127.0.0.0/104")}, served: true},
		{name: "other peer not allowed", allowed: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, local: "127.0.0.2"},
		{name: "other peer allowed", allowed: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}, local: "127.0.0.2", served: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHandler()
			s, addr := startServer(t, ServerConfig{AllowedNetworks: tt.allowed}, h)
			c := dialFrom(t, addr, cmp.Or(tt.local, "127.0.0.1"))
			c.write(framed("hi"))
			if tt.served {
				c.expectFrame("ACK:hi")
				return
			}
			c.expectClosed()
			if st := s.Stats(); st.ConnsRejectedNetwork != 1 || st.ConnsAccepted != 0 {
				t.Errorf("Stats = %+v, want 1 rejected by network, 0 accepted", st)
			}
			if calls := h.Calls(); len(calls) != 0 {
				t.Errorf("a refused connection reached the handler: %+v", calls)
			}
		})
	}
}

func TestServerHandlerPanic(t *testing.T) {
	s, addr := startServer(t, ServerConfig{}, newTestHandler())
	c := dialRaw(t, addr)
	c.write(framed("PANIC"))
	c.expectClosed()
	if s.Stats().HandlerPanics != 1 {
		t.Errorf("HandlerPanics = %d, want 1", s.Stats().HandlerPanics)
	}
	c2 := dialRaw(t, addr)
	c2.write(framed("ok"))
	c2.expectFrame("ACK:ok")
}

// TestServerShutdownInFlight checks that Shutdown closes idle connections, lets an
// in-flight message finish and delivers its ACK, and then returns.
func TestServerShutdownInFlight(t *testing.T) {
	h := newTestHandler()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(ServerConfig{}, h)
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	addr := ln.Addr().String()

	idle := dialRaw(t, addr)
	idle.write(framed("hi"))
	idle.expectFrame("ACK:hi")
	busy := dialRaw(t, addr)
	busy.write(framed("BLOCK-inflight"))
	<-h.entered

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		shut <- s.Shutdown(ctx)
	}()
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve = %v, want ErrServerClosed", err)
	}
	idle.expectClosed()
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Error("listener still accepting after Shutdown")
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a message in flight", err)
	default:
	}
	close(h.release)
	busy.expectFrame("ACK:BLOCK-inflight")
	busy.expectClosed()
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Errorf("second Shutdown = %v, want nil", err)
	}
	if err := s.Serve(ln); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Shutdown = %v", err)
	}
	if err := s.ListenAndServe("127.0.0.1:0"); !errors.Is(err, ErrServerClosed) {
		t.Errorf("ListenAndServe after Shutdown = %v", err)
	}
}

// TestServerShutdownDeadline checks that Shutdown gives up when its context ends:
// busy connections are closed and their handler contexts cancelled.
func TestServerShutdownDeadline(t *testing.T) {
	h := newTestHandler()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(ServerConfig{}, h)
	go s.Serve(ln)
	c := dialRaw(t, ln.Addr().String())
	c.write(framed("BLOCK-stuck"))
	<-h.entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown = %v, want context.Canceled", err)
	}
	select {
	case got := <-h.done:
		if !errors.Is(got.ctxErr, context.Canceled) {
			t.Errorf("handler context error = %v, want context.Canceled", got.ctxErr)
		}
	case <-time.After(testTimeout):
		t.Fatal("handler context not cancelled")
	}
	c.expectClosed()
	testutil.Eventually(t, testTimeout, "connections gone", func() bool { return s.ActiveConns() == 0 })
}

func TestServerListenAndServe(t *testing.T) {
	s := NewServer(ServerConfig{}, newTestHandler())
	served := make(chan error, 1)
	go func() { served <- s.ListenAndServe("127.0.0.1:0") }()
	testutil.Eventually(t, testTimeout, "listening", func() bool { return s.Addr() != nil })
	c := dialRaw(t, s.Addr().String())
	c.write(framed("x"))
	c.expectFrame("ACK:x")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("ListenAndServe = %v", err)
	}
	if err := NewServer(ServerConfig{}, newTestHandler()).ListenAndServe("256.0.0.1:1"); err == nil {
		t.Error("ListenAndServe on a bad address succeeded")
	}
}

// failingListener returns a temporary error a few times before accepting.
type failingListener struct {
	net.Listener
	fails atomic.Int32
}

type tempErr struct{}

func (tempErr) Error() string   { return "temporary accept failure" }
func (tempErr) Timeout() bool   { return false }
func (tempErr) Temporary() bool { return true }

func (l *failingListener) Accept() (net.Conn, error) {
	if l.fails.Add(-1) >= 0 {
		return nil, tempErr{}
	}
	return l.Listener.Accept()
}

func TestServerAcceptBackoff(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &failingListener{Listener: ln}
	fl.fails.Store(3)
	s := NewServer(ServerConfig{}, newTestHandler())
	served := make(chan error, 1)
	go func() { served <- s.Serve(fl) }()
	c := dialRaw(t, ln.Addr().String())
	c.write(framed("x"))
	c.expectFrame("ACK:x")
	s.Close()
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve = %v", err)
	}
}

// --- TLS ---

type testPKI struct {
	caPool      *x509.CertPool
	server      tls.Certificate
	client      tls.Certificate
	otherCA     *x509.CertPool
	rogueClient tls.Certificate
}

// newTestPKI makes a CA, a server certificate for 127.0.0.1 and a client
// certificate (CN "lis-01"), plus a client certificate from an unrelated CA.
func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	ca := testutil.NewCA(t, "resultgate test CA")
	rogue := testutil.NewCA(t, "rogue CA")
	return &testPKI{
		caPool:      ca.Pool,
		otherCA:     rogue.Pool,
		server:      ca.Issue(t, "mllp.test", x509.ExtKeyUsageServerAuth, "mllp.test").Pair,
		client:      ca.Issue(t, "lis-01", x509.ExtKeyUsageClientAuth, "mllp.test").Pair,
		rogueClient: rogue.Issue(t, "lis-01", x509.ExtKeyUsageClientAuth, "mllp.test").Pair,
	}
}

func TestServerTLS(t *testing.T) {
	pki := newTestPKI(t)
	tests := []struct {
		name       string
		serverAuth tls.ClientAuthType
		client     *tls.Config
		wantCN     string
		wantErr    bool
	}{
		{name: "TLS", client: &tls.Config{RootCAs: pki.caPool}},
		{name: "TLS with an unrequested client certificate", client: &tls.Config{RootCAs: pki.caPool, Certificates: []tls.Certificate{pki.client}}},
		{name: "mutual TLS", serverAuth: tls.RequireAndVerifyClientCert,
			client: &tls.Config{RootCAs: pki.caPool, Certificates: []tls.Certificate{pki.client}}, wantCN: "lis-01"},
		{name: "mutual TLS without a client certificate", serverAuth: tls.RequireAndVerifyClientCert,
			client: &tls.Config{RootCAs: pki.caPool}, wantErr: true},
		{name: "mutual TLS with a certificate from another CA", serverAuth: tls.RequireAndVerifyClientCert,
			client: &tls.Config{RootCAs: pki.caPool, Certificates: []tls.Certificate{pki.rogueClient}}, wantErr: true},
		{name: "client does not trust the server", client: &tls.Config{RootCAs: pki.otherCA}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHandler()
			srvTLS := &tls.Config{
				Certificates: []tls.Certificate{pki.server},
				ClientAuth:   tt.serverAuth,
				ClientCAs:    pki.caPool,
				MinVersion:   tls.VersionTLS10, // raised to 1.2 by the server
			}
			s, addr := startServer(t, ServerConfig{TLS: srvTLS}, h)
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			cl, err := Dial(ctx, ClientConfig{Addr: addr, TLS: tt.client})
			var ack []byte
			if err == nil {
				defer cl.Close()
				// With TLS 1.3 a rejected client certificate shows on the first
				// read, not in the client's handshake.
				ack, err = cl.Send(ctx, []byte("MSH|tls"))
			}
			if tt.wantErr {
				if err == nil {
					t.Fatalf("exchange succeeded, want a failure")
				}
				testutil.Eventually(t, testTimeout, "handshake failure counted", func() bool { return s.Stats().TLSHandshakeErrors == 1 })
				if len(h.Calls()) != 0 {
					t.Errorf("handler called on a failed handshake")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(ack) != "ACK:MSH|tls" {
				t.Errorf("ACK = %q", ack)
			}
			p := h.Calls()[0].peer
			if !p.TLS || p.ClientCertSubject != tt.wantCN {
				t.Errorf("peer TLS=%v CN=%q, want TLS=true CN=%q", p.TLS, p.ClientCertSubject, tt.wantCN)
			}
		})
	}
}

// TestServerRefusesOldTLS checks that the server raises a configured minimum
// below TLS 1.2: a TLS 1.1 client is refused by the server, not by itself.
func TestServerRefusesOldTLS(t *testing.T) {
	pki := newTestPKI(t)
	s, addr := startServer(t, ServerConfig{TLS: &tls.Config{Certificates: []tls.Certificate{pki.server}, MinVersion: tls.VersionTLS10}}, newTestHandler())
	d := &tls.Dialer{Config: &tls.Config{RootCAs: pki.caPool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", addr)
	if err == nil {
		c.Close()
		t.Fatal("TLS 1.1 handshake succeeded")
	}
	if !strings.Contains(err.Error(), "protocol version") {
		t.Errorf("handshake error = %v, want a protocol version alert from the server", err)
	}
	testutil.Eventually(t, testTimeout, "handshake failure counted", func() bool { return s.Stats().TLSHandshakeErrors == 1 })
}

func TestServerTLSHandshakeTimeout(t *testing.T) {
	pki := newTestPKI(t)
	s, addr := startServer(t, ServerConfig{ReadTimeout: 100 * time.Millisecond,
		TLS: &tls.Config{Certificates: []tls.Certificate{pki.server}}}, newTestHandler())
	c := dialRaw(t, addr) // connects but never starts the handshake
	if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("read = %v, want the server to close the connection", err)
	}
	testutil.Eventually(t, testTimeout, "handshake timeout counted", func() bool { return s.Stats().TLSHandshakeErrors == 1 })
}

// TestServerLogsNoContent checks, at debug level, that connection logs carry ids
// and sizes but never message content (no PHI in logs).
func TestServerLogsNoContent(t *testing.T) {
	var buf syncBuffer
	log := zerolog.New(&buf).Level(zerolog.DebugLevel)
	h := newTestHandler()
	s, addr := startServer(t, ServerConfig{Logger: log, MaxFrameSize: 64}, h)
	c := dialRaw(t, addr)
	const secret = "PID|1||SECRET-MRN^^^HOSP||DOE^JANE"
	c.write("junk" + framed(secret))
	c.expectFrame("ACK:" + secret)
	c.write(framed(secret + strings.Repeat("X", 100)))
	c.expectFrame("NAK:too large")
	c.write(framed("PANIC " + secret))
	c.expectClosed()
	testutil.Eventually(t, testTimeout, "connection closed", func() bool { return s.ActiveConns() == 0 })
	out := buf.String()
	for _, bad := range []string{"SECRET", "DOE", "JANE"} {
		if strings.Contains(out, bad) {
			t.Errorf("log contains message content %q:\n%s", bad, out)
		}
	}
	for _, want := range []string{`"conn_id":1`, `"peer":"127.0.0.1:`, "mllp frame handled", "mllp frame too large", "mllp handler panic", `"size":`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

func TestAddrPort(t *testing.T) {
	tests := []struct {
		name string
		in   net.Addr
		want netip.AddrPort
	}{
		{"IPv4", &net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 2575}, netip.MustParseAddrPort("10.1.2.3:2575")},
		{"IPv4-mapped IPv6 is unmapped", &net.TCPAddr{IP: net.ParseIP("::ffff:10.1.2.3"), Port: 2575}, netip.MustParseAddrPort("10.1.2.3:2575")},
		{"IPv6", &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 1}, netip.MustParseAddrPort("[2001:db8::1]:1")},
		{"other address parsed from its string", &net.UDPAddr{IP: net.ParseIP("192.0.2.1"), Port: 7}, netip.MustParseAddrPort("192.0.2.1:7")},
		{"not an IP address", pipeAddr{}, netip.AddrPort{}},
		{"nil", nil, netip.AddrPort{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := addrPort(tt.in); got != tt.want {
				t.Errorf("addrPort(%v) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

// TestServerManyConnections runs several clients at once, pipelining on raw
// connections and sending one at a time through Clients, and checks that every
// message is answered with its own ACK, in order on each connection.
func TestServerManyConnections(t *testing.T) {
	const conns, perConn = 8, 200
	s, addr := startServer(t, ServerConfig{}, echoHandlerFull{})
	var wg sync.WaitGroup
	errs := make(chan error, 2*conns)
	for i := range conns {
		wg.Add(2)
		c := dialRaw(t, addr)
		go func() { // pipelined: all frames in one go, then all ACKs
			defer wg.Done()
			var all bytes.Buffer
			for j := range perConn {
				all.WriteString(framed("raw-" + strconv.Itoa(i) + "-" + strconv.Itoa(j)))
			}
			go c.Write(all.Bytes())
			for j := range perConn {
				f, err := c.r.ReadFrame()
				if want := "raw-" + strconv.Itoa(i) + "-" + strconv.Itoa(j); err != nil || string(f) != want {
					errs <- errors.New("pipelined ACK " + string(f) + ", want " + want)
					return
				}
			}
		}()
		go func() { // request/response through a Client
			defer wg.Done()
			cl, err := Dial(context.Background(), ClientConfig{Addr: addr})
			if err != nil {
				errs <- err
				return
			}
			defer cl.Close()
			for j := range perConn {
				msg := "cl-" + strconv.Itoa(i) + "-" + strconv.Itoa(j)
				ack, err := cl.Send(context.Background(), []byte(msg))
				if err != nil || string(ack) != msg {
					errs <- errors.New("client ACK " + string(ack) + " for " + msg)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if st := s.Stats(); st.Frames != 2*conns*perConn || st.ConnsAccepted != 2*conns {
		t.Errorf("Stats: Frames %d, ConnsAccepted %d; want %d, %d", st.Frames, st.ConnsAccepted, 2*conns*perConn, 2*conns)
	}
}

// echoHandlerFull answers each frame with the frame itself.
type echoHandlerFull struct{}

func (echoHandlerFull) HandleMessage(_ context.Context, _ Peer, frame []byte) []byte { return frame }
func (echoHandlerFull) HandleTooLarge(context.Context, Peer, []byte, int64) []byte   { return nil }

// bigACKHandler answers with an ACK too large for the socket buffers.
type bigACKHandler struct{ ack []byte }

func (h bigACKHandler) HandleMessage(context.Context, Peer, []byte) []byte         { return h.ack }
func (h bigACKHandler) HandleTooLarge(context.Context, Peer, []byte, int64) []byte { return nil }

// TestServerWriteTimeout checks that a peer that stops reading ACKs cannot hold
// its connection: the ACK write times out and the connection is closed.
func TestServerWriteTimeout(t *testing.T) {
	h := bigACKHandler{ack: bytes.Repeat([]byte("A"), 64<<20)} // more than loopback socket buffers hold
	s, addr := startServer(t, ServerConfig{WriteTimeout: 200 * time.Millisecond}, h)
	c := dialRaw(t, addr)
	c.write(framed("x")) // and never read the ACK
	testutil.Eventually(t, testTimeout, "write timeout counted", func() bool {
		st := s.Stats()
		return st.WriteTimeouts == 1 && st.WriteErrors == 1 && st.ActiveConns == 0
	})
}

// TestServerTLSListener checks a listener wrapped by tls.NewListener.
func TestServerTLSListener(t *testing.T) {
	pki := newTestPKI(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := newTestHandler()
	s := NewServer(ServerConfig{}, h)
	go s.Serve(tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{pki.server}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pki.caPool}))
	defer s.Close()
	c := dialClient(t, ClientConfig{Addr: ln.Addr().String(), TLS: &tls.Config{RootCAs: pki.caPool, Certificates: []tls.Certificate{pki.client}}})
	if ack, err := c.Send(testCtx(t), []byte("x")); err != nil || string(ack) != "ACK:x" {
		t.Fatalf("Send = %q, %v", ack, err)
	}
	if p := h.Calls()[0].peer; !p.TLS || p.ClientCertSubject != "lis-01" {
		t.Errorf("peer = %+v, want TLS with CN lis-01", p)
	}
}

// TestServerPerPeerCapNeedsAnAddress checks that peers without an IP address
// (a Unix socket) do not share one per-peer bucket.
func TestServerPerPeerCapNeedsAnAddress(t *testing.T) {
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "mllp.sock"))
	if err != nil {
		t.Skipf("no Unix sockets: %v", err)
	}
	s := NewServer(ServerConfig{MaxConnsPerPeer: 1}, newTestHandler())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		<-served
	})
	for i := range 3 {
		c, err := net.DialTimeout("unix", ln.Addr().String(), testTimeout)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(testTimeout))
		t.Cleanup(func() { c.Close() })
		rc := &rawConn{t: t, Conn: c, r: NewReader(c, 0)}
		rc.exchange("unix " + strconv.Itoa(i))
	}
	if st := s.Stats(); st.ConnsRejectedPerPeer != 0 || st.ConnsEvictedIdle != 0 || st.ActiveConns != 3 {
		t.Errorf("Stats = %+v, want 3 active, none rejected or evicted", st)
	}
}
