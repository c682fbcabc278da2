package mllp

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/resultgate/resultgate/internal/testutil"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func dialClient(t *testing.T, cfg ClientConfig) *Client {
	t.Helper()
	c, err := Dial(testCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestClientSend(t *testing.T) {
	h := newTestHandler()
	_, addr := startServer(t, ServerConfig{}, h)
	c := dialClient(t, ClientConfig{Addr: addr})
	ctx := testCtx(t)
	msg := testMessage(2048)
	ack1, err := c.Send(ctx, msg)
	if err != nil {
		t.Fatal(err)
	}
	ack2, err := c.Send(ctx, []byte("second"))
	if err != nil {
		t.Fatal(err)
	}
	if string(ack1) != "ACK:"+string(msg) || string(ack2) != "ACK:second" {
		t.Errorf("ACKs = %s, %q (the first must survive the second Send)", quoteShort(string(ack1)), ack2)
	}
	calls := h.Calls()
	if len(calls) != 2 || calls[0].peer.ConnID != calls[1].peer.ConnID {
		t.Errorf("messages not sent on one connection: %+v", calls)
	}
}

func TestClientErrors(t *testing.T) {
	_, addr := startServer(t, ServerConfig{}, newTestHandler())
	tests := []struct {
		name string
		run  func(t *testing.T) error
		want error
	}{
		{"framing byte in message", func(t *testing.T) error {
			_, err := dialClient(t, ClientConfig{Addr: addr}).Send(testCtx(t), []byte("MSH"+fs))
			return err
		}, ErrFramingByte},
		{"send after close", func(t *testing.T) error {
			c := dialClient(t, ClientConfig{Addr: addr})
			c.Close()
			_, err := c.Send(testCtx(t), []byte("x"))
			return err
		}, ErrClientClosed},
		{"ACK larger than the client's maximum", func(t *testing.T) error {
			_, err := dialClient(t, ClientConfig{Addr: addr, MaxFrameSize: 8}).Send(testCtx(t), []byte(strings.Repeat("x", 100)))
			return err
		}, ErrFrameTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.run(t); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestClientOversizeACKKeepsConnection(t *testing.T) {
	h := newTestHandler()
	_, addr := startServer(t, ServerConfig{}, h)
	c := dialClient(t, ClientConfig{Addr: addr, MaxFrameSize: 16})
	ctx := testCtx(t)
	if _, err := c.Send(ctx, []byte(strings.Repeat("x", 100))); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("err = %v, want ErrFrameTooLarge", err)
	}
	if ack, err := c.Send(ctx, []byte("y")); err != nil || string(ack) != "ACK:y" {
		t.Fatalf("next Send = %q, %v", ack, err)
	}
	if calls := h.Calls(); calls[0].peer.ConnID != calls[1].peer.ConnID {
		t.Error("connection dropped after an oversize ACK")
	}
}

func TestDialErrors(t *testing.T) {
	for _, tt := range []struct{ name, addr string }{
		{"nothing listening", freeAddr(t)},
		{"empty address", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if c, err := Dial(testCtx(t), ClientConfig{Addr: tt.addr, DialTimeout: time.Second}); err == nil {
				c.Close()
				t.Fatal("Dial succeeded")
			}
		})
	}
}

// TestClientAckTimeoutReconnects checks that an ACK timeout returns ErrAckTimeout,
// drops the connection, and that the next Send reconnects.
func TestClientAckTimeoutReconnects(t *testing.T) {
	h := newTestHandler()
	s, addr := startServer(t, ServerConfig{}, h)
	t.Cleanup(func() { close(h.release) }) // runs before the server's shutdown
	c := dialClient(t, ClientConfig{Addr: addr, AckTimeout: 100 * time.Millisecond, Backoff: Backoff{Min: time.Millisecond, Max: 10 * time.Millisecond}})
	ctx := testCtx(t)
	start := time.Now()
	_, err := c.Send(ctx, []byte("BLOCK-1"))
	if !errors.Is(err, ErrAckTimeout) {
		t.Fatalf("err = %v, want ErrAckTimeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("ACK timeout took %s", d)
	}
	c.cfg.AckTimeout = testTimeout // so that a loaded machine cannot fail the next Send
	ack, err := c.Send(ctx, []byte("after"))
	if err != nil || string(ack) != "ACK:after" {
		t.Fatalf("Send after timeout = %q, %v", ack, err)
	}
	if st := s.Stats(); st.ConnsAccepted != 2 {
		t.Errorf("ConnsAccepted = %d, want 2 (a new connection after the timeout)", st.ConnsAccepted)
	}
}

func TestClientContextCancel(t *testing.T) {
	h := newTestHandler()
	_, addr := startServer(t, ServerConfig{}, h)
	t.Cleanup(func() { close(h.release) })
	c := dialClient(t, ClientConfig{Addr: addr})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-h.entered
		cancel()
	}()
	if _, err := c.Send(ctx, []byte("BLOCK-cancel")); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	// A ctx deadline shorter than the ACK timeout is reported as the ctx's.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if _, err := c.Send(ctx2, []byte("BLOCK-deadline")); !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrAckTimeout) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
}

// TestClientPeerClosedWhileIdle checks that a connection the server closed while
// idle (idle timeout, restart) is replaced before sending, without an error.
func TestClientPeerClosedWhileIdle(t *testing.T) {
	h := newTestHandler()
	s, addr := startServer(t, ServerConfig{IdleTimeout: 200 * time.Millisecond}, h)
	c := dialClient(t, ClientConfig{Addr: addr})
	ctx := testCtx(t)
	if _, err := c.Send(ctx, []byte("one")); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, testTimeout, "server closed the idle connection", func() bool { return s.Stats().IdleTimeouts >= 1 && s.ActiveConns() == 0 })
	if ack, err := c.Send(ctx, []byte("two")); err != nil || string(ack) != "ACK:two" {
		t.Fatalf("Send after idle close = %q, %v", ack, err)
	}
}

func TestClientReconnectsAfterServerRestart(t *testing.T) {
	addr := freeAddr(t)
	c := NewClient(ClientConfig{Addr: addr, DialTimeout: time.Second, Backoff: Backoff{Min: 5 * time.Millisecond, Max: 20 * time.Millisecond}})
	defer c.Close()

	// Nothing listens yet: Send keeps retrying until its context ends.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := c.Send(ctx, []byte("early"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send with no server = %v, want context.DeadlineExceeded", err)
	}

	serve := func() *Server {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		s := NewServer(ServerConfig{}, newTestHandler())
		go s.Serve(ln)
		return s
	}
	s1 := serve()
	if ack, err := c.Send(testCtx(t), []byte("one")); err != nil || string(ack) != "ACK:one" {
		t.Fatalf("Send = %q, %v", ack, err)
	}
	if err := s1.Shutdown(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	s2 := serve()
	defer s2.Close()
	if ack, err := c.Send(testCtx(t), []byte("two")); err != nil || string(ack) != "ACK:two" {
		t.Fatalf("Send after restart = %q, %v", ack, err)
	}
}

func TestClientConcurrentSends(t *testing.T) {
	h := newTestHandler()
	_, addr := startServer(t, ServerConfig{}, h)
	c := dialClient(t, ClientConfig{Addr: addr})
	ctx := testCtx(t)
	errs := make(chan error, 8)
	for i := range 8 {
		go func() {
			msg := "m" + strings.Repeat("x", i)
			ack, err := c.Send(ctx, []byte(msg))
			if err == nil && string(ack) != "ACK:"+msg {
				err = errors.New("ACK " + string(ack) + " for " + msg)
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestBackoff(t *testing.T) {
	c := NewClient(ClientConfig{Backoff: Backoff{Min: 100 * time.Millisecond, Max: time.Second}})
	tests := []struct {
		failures int
		ceiling  time.Duration
	}{
		{1, 100 * time.Millisecond},
		{2, 200 * time.Millisecond},
		{3, 400 * time.Millisecond},
		{4, 800 * time.Millisecond},
		{5, time.Second},
		{60, time.Second},
	}
	for _, tt := range tests {
		for range 200 {
			d := c.backoff(tt.failures)
			if d < tt.ceiling/2 || d > tt.ceiling {
				t.Fatalf("backoff(%d) = %s, want within [%s, %s]", tt.failures, d, tt.ceiling/2, tt.ceiling)
			}
		}
	}
}

func TestClientCloseInterruptsSend(t *testing.T) {
	h := newTestHandler()
	_, addr := startServer(t, ServerConfig{}, h)
	t.Cleanup(func() { close(h.release) })
	c := dialClient(t, ClientConfig{Addr: addr})
	go func() {
		<-h.entered
		c.Close()
	}()
	if _, err := c.Send(testCtx(t), []byte("BLOCK-close")); !errors.Is(err, ErrClientClosed) {
		t.Fatalf("err = %v, want ErrClientClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestClientCloseInterruptsReconnect(t *testing.T) {
	c := NewClient(ClientConfig{Addr: freeAddr(t), Backoff: Backoff{Min: time.Hour}})
	c.failed() // as if the last attempt had just failed: the next waits an hour
	go c.Close()
	if _, err := c.Send(testCtx(t), []byte("x")); !errors.Is(err, ErrClientClosed) {
		t.Fatalf("err = %v, want ErrClientClosed", err)
	}
}

// TestClientStrayFrame checks that a frame the receiver sent unasked (here a
// second ACK for the first message) is not taken for the next message's ACK.
func TestClientStrayFrame(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for first := true; ; first = false {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func(conn net.Conn, stray bool) {
				defer conn.Close()
				r := NewReader(conn, 0)
				for {
					f, err := r.ReadFrame()
					if err != nil {
						return
					}
					out := framed("ACK:" + string(f))
					if stray {
						out += framed("STRAY")
						stray = false
					}
					if _, err := conn.Write([]byte(out)); err != nil {
						return
					}
				}
			}(conn, first)
		}
	}()
	c := dialClient(t, ClientConfig{Addr: ln.Addr().String()})
	ctx := testCtx(t)
	for _, msg := range []string{"one", "two", "three"} {
		ack, err := c.Send(ctx, []byte(msg))
		if err != nil || string(ack) != "ACK:"+msg {
			t.Fatalf("Send(%s) = %q, %v", msg, ack, err)
		}
	}
}
