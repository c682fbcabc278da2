package mllp

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/netip"
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(cfg, h)
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
	return s, ln.Addr().String()
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

func TestServerMaxConns(t *testing.T) {
	s, addr := startServer(t, ServerConfig{MaxConns: 2}, newTestHandler())
	c1, c2 := dialRaw(t, addr), dialRaw(t, addr)
	for _, c := range []*rawConn{c1, c2} { // an ACK proves the connection is being served
		c.write(framed("hi"))
		c.expectFrame("ACK:hi")
	}
	c3 := dialRaw(t, addr)
	c3.expectClosed()
	if st := s.Stats(); st.ConnsRejectedLimit != 1 || st.ConnsAccepted != 2 || st.ActiveConns != 2 {
		t.Errorf("Stats = %+v, want 1 rejected, 2 accepted, 2 active", st)
	}
	c1.Close()
	testutil.Eventually(t, testTimeout, "slot freed", func() bool { return s.ActiveConns() == 1 })
	c4 := dialRaw(t, addr)
	c4.write(framed("again"))
	c4.expectFrame("ACK:again")
}

func TestServerAllowedNetworks(t *testing.T) {
	tests := []struct {
		name    string
		allowed []netip.Prefix
		served  bool
	}{
		{name: "no list allows all", served: true},
		{name: "loopback allowed", allowed: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32")}, served: true},
		{name: "loopback not allowed", allowed: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}},
		{name: "unmasked prefix", allowed: []netip.Prefix{netip.MustParsePrefix("127.0.0.9/8")}, served: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, addr := startServer(t, ServerConfig{AllowedNetworks: tt.allowed}, newTestHandler())
			c := dialRaw(t, addr)
			c.write(framed("hi"))
			if tt.served {
				c.expectFrame("ACK:hi")
				return
			}
			c.expectClosed()
			if st := s.Stats(); st.ConnsRejectedNetwork != 1 || st.ConnsAccepted != 0 {
				t.Errorf("Stats = %+v, want 1 rejected by network, 0 accepted", st)
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
