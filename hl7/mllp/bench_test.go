package mllp

import (
	"context"
	"io"
	"net"
	"testing"
)

// The benchmarks use a synthetic 2 KB ORU^R01, the size the targets use.

// BenchmarkReadFrame reads 2 KB frames that arrive whole (several per read).
func BenchmarkReadFrame(b *testing.B) {
	benchRead(b, 0)
}

// BenchmarkReadFrameSplit reads 2 KB frames delivered in 700-byte reads, so every
// frame spans reads and is assembled in the frame buffer.
func BenchmarkReadFrameSplit(b *testing.B) {
	benchRead(b, 700)
}

func benchRead(b *testing.B, chunk int) {
	msg := testMessage(2048)
	r := NewReader(newLoopReader(framed(string(msg)), chunk), 0)
	b.SetBytes(int64(len(msg) + 3))
	b.ReportAllocs()
	for b.Loop() {
		f, err := r.ReadFrame()
		if err != nil || len(f) != len(msg) {
			b.Fatalf("ReadFrame: %d bytes, %v", len(f), err)
		}
	}
}

// BenchmarkWriteFrame writes a 2 KB frame to a plain io.Writer (pooled buffer,
// one Write).
func BenchmarkWriteFrame(b *testing.B) {
	msg := testMessage(2048)
	b.SetBytes(int64(len(msg) + 3))
	b.ReportAllocs()
	for b.Loop() {
		if err := WriteFrame(io.Discard, msg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteFrameTCP writes a 2 KB frame to a loopback TCP connection
// (vectored write, one writev system call); a goroutine drains the other end.
func BenchmarkWriteFrameTCP(b *testing.B) {
	msg := testMessage(2048)
	w, r := tcpPair(b)
	go io.Copy(io.Discard, r)
	b.SetBytes(int64(len(msg) + 3))
	b.ReportAllocs()
	for b.Loop() {
		if err := WriteFrame(w, msg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRoundTrip measures one Client.Send of a 2 KB message to a Server on
// loopback and its 64-byte ACK, end to end, one message in flight.
func BenchmarkRoundTrip(b *testing.B) {
	s := NewServer(ServerConfig{}, echoHandler{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go s.Serve(ln)
	defer s.Close()
	ctx := context.Background()
	c, err := Dial(ctx, ClientConfig{Addr: ln.Addr().String()})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	msg := testMessage(2048)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Send(ctx, msg); err != nil {
			b.Fatal(err)
		}
	}
}

type echoHandler struct{}

func (echoHandler) HandleMessage(_ context.Context, _ Peer, frame []byte) []byte { return frame[:64] }
func (echoHandler) HandleTooLarge(context.Context, Peer, []byte, int64) []byte   { return nil }
