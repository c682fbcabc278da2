package mllp

import (
	"bytes"
	"errors"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// event is one result of ReadFrame, comparable across implementations.
type event struct {
	frame    string
	tooLarge bool
	prefix   string
	size     int64
	err      error
}

func frameEvent(s string) event { return event{frame: s} }

func (e event) String() string {
	switch {
	case e.err != nil:
		return "error " + e.err.Error()
	case e.tooLarge:
		return "too large: size " + strconv.FormatInt(e.size, 10) + ", prefix " + quoteShort(e.prefix)
	default:
		return "frame " + quoteShort(e.frame)
	}
}

func quoteShort(s string) string {
	if len(s) > 40 {
		return strings.ReplaceAll(s[:40], "\r", `\r`) + "…(" + strconv.Itoa(len(s)) + " bytes)"
	}
	return `"` + strings.ReplaceAll(s, "\r", `\r`) + `"`
}

// readAll reads events until the first error, checking the Reader's memory bound
// after each call.
func readAll(t testing.TB, r *Reader) []event {
	t.Helper()
	var evs []event
	for {
		frame, err := r.ReadFrame()
		if cap(r.frame) > r.max {
			t.Fatalf("frame buffer capacity %d exceeds the maximum frame size %d", cap(r.frame), r.max)
		}
		var tl *FrameTooLargeError
		switch {
		case err == nil:
			evs = append(evs, frameEvent(string(frame)))
		case errors.As(err, &tl):
			if !errors.Is(err, ErrFrameTooLarge) {
				t.Fatalf("errors.Is(%v, ErrFrameTooLarge) = false", err)
			}
			if len(tl.Prefix) > TooLargePrefixSize || len(tl.Prefix) > r.max {
				t.Fatalf("prefix of %d bytes is longer than allowed", len(tl.Prefix))
			}
			evs = append(evs, event{tooLarge: true, prefix: string(tl.Prefix), size: tl.Size})
		default:
			return append(evs, event{err: err})
		}
	}
}

// referenceFrames is a deliberately simple, unbounded model of Reader: it finds
// the frames in the whole input at once.
func referenceFrames(data []byte, maxFrame int) (evs []event, skipped int64) {
	i := 0
	afterEnd := false
	for {
		if afterEnd && i < len(data) && data[i] == CarriageReturn {
			i++
		}
		afterEnd = false
		j := bytes.IndexByte(data[i:], StartBlock)
		if j < 0 {
			skipped += int64(len(data) - i)
			return append(evs, event{err: io.EOF}), skipped
		}
		skipped += int64(j)
		i += j + 1
		for {
			k := bytes.IndexAny(data[i:], "\x0b\x1c")
			if k < 0 {
				skipped += int64(1 + len(data) - i)
				return append(evs, event{err: io.ErrUnexpectedEOF}), skipped
			}
			if data[i+k] == StartBlock {
				skipped += int64(1 + k)
				i += k + 1
				continue
			}
			content := data[i : i+k]
			i += k + 1
			afterEnd = true
			if len(content) > maxFrame {
				n := min(maxFrame, TooLargePrefixSize)
				evs = append(evs, event{tooLarge: true, prefix: string(content[:n]), size: int64(len(content))})
			} else {
				evs = append(evs, frameEvent(string(content)))
			}
			break
		}
	}
}

func sameEvents(a, b []event) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.frame != y.frame || x.tooLarge != y.tooLarge || x.prefix != y.prefix || x.size != y.size || !errors.Is(x.err, y.err) {
			return false
		}
	}
	return true
}

// chunkReader returns the data in reads of the given sizes, cycling.
type chunkReader struct {
	data   []byte
	chunks []int
	n      int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	size := len(c.data)
	if len(c.chunks) > 0 {
		size = c.chunks[c.n%len(c.chunks)]
		c.n++
	}
	size = max(1, min(size, len(p), len(c.data)))
	copy(p, c.data[:size])
	c.data = c.data[size:]
	return size, nil
}

const vt, fs, cr = "\x0b", "\x1c", "\r"

func framed(s string) string { return vt + s + fs + cr }

func TestReader(t *testing.T) {
	msh := "MSH|^~\\&|LAB|HOSP|RG|HOSP|20260101120000||ORU^R01|MSG0001|P|2.5.1\rPID|1||X\r"
	big := strings.Repeat("A", 100_000)
	tests := []struct {
		name     string
		in       string
		maxFrame int
		want     []event
		skipped  int64
	}{
		{name: "one frame", in: framed(msh), want: []event{frameEvent(msh), {err: io.EOF}}},
		{name: "empty input", in: "", want: []event{{err: io.EOF}}},
		{name: "empty frame", in: framed(""), want: []event{frameEvent(""), {err: io.EOF}}},
		{name: "pipelined frames", in: framed("a") + framed("b") + framed("c"),
			want: []event{frameEvent("a"), frameEvent("b"), frameEvent("c"), {err: io.EOF}}},
		{name: "junk before start byte", in: "junk\r\n" + framed("a") + "xx" + framed("b"),
			want: []event{frameEvent("a"), frameEvent("b"), {err: io.EOF}}, skipped: 8},
		{name: "missing CR", in: vt + "a" + fs + vt + "b" + fs,
			want: []event{frameEvent("a"), frameEvent("b"), {err: io.EOF}}},
		{name: "two CRs: the second is junk", in: vt + "a" + fs + cr + cr + framed("b"),
			want: []event{frameEvent("a"), frameEvent("b"), {err: io.EOF}}, skipped: 1},
		{name: "LF after end block is junk", in: framed("a") + "\n",
			want: []event{frameEvent("a"), {err: io.EOF}}, skipped: 1},
		{name: "trailing junk only", in: "\r\n\r\n", want: []event{{err: io.EOF}}, skipped: 4},
		{name: "unfinished frame", in: framed("a") + vt + "partial",
			want: []event{frameEvent("a"), {err: io.ErrUnexpectedEOF}}, skipped: 8},
		{name: "start byte inside frame restarts it", in: vt + "lost" + framed("b"),
			want: []event{frameEvent("b"), {err: io.EOF}}, skipped: 5},
		{name: "frame at the limit", in: framed("12345"), maxFrame: 5,
			want: []event{frameEvent("12345"), {err: io.EOF}}},
		{name: "frame over the limit", in: framed("123456") + framed("ok"), maxFrame: 5,
			want: []event{{tooLarge: true, prefix: "12345", size: 6}, frameEvent("ok"), {err: io.EOF}}},
		{name: "large frame over the limit keeps a 64 KiB prefix", in: framed(big) + framed("next"), maxFrame: 90_000,
			want: []event{{tooLarge: true, prefix: big[:TooLargePrefixSize], size: int64(len(big))}, frameEvent("next"), {err: io.EOF}}},
		{name: "large frame under the limit", in: framed(big) + framed("next"), maxFrame: 200_000,
			want: []event{frameEvent(big), frameEvent("next"), {err: io.EOF}}},
		{name: "oversize frame cut short", in: vt + big + framed("next"), maxFrame: 1000,
			want: []event{frameEvent("next"), {err: io.EOF}}, skipped: int64(1 + len(big))},
		{name: "oversize frame unfinished", in: vt + big, maxFrame: 1000,
			want: []event{{err: io.ErrUnexpectedEOF}}, skipped: int64(1 + len(big))},
	}
	readers := []struct {
		name string
		wrap func(string) io.Reader
	}{
		{"whole", func(s string) io.Reader { return strings.NewReader(s) }},
		{"byte by byte", func(s string) io.Reader { return iotest.OneByteReader(strings.NewReader(s)) }},
		{"EOF with data", func(s string) io.Reader { return iotest.DataErrReader(strings.NewReader(s)) }},
		{"odd chunks", func(s string) io.Reader { return &chunkReader{data: []byte(s), chunks: []int{3, 1, 7, 2, 4096}} }},
		{"half chunks", func(s string) io.Reader { return iotest.HalfReader(strings.NewReader(s)) }},
	}
	for _, tt := range tests {
		for _, rd := range readers {
			t.Run(tt.name+"/"+rd.name, func(t *testing.T) {
				max := tt.maxFrame
				if max == 0 {
					max = DefaultMaxFrameSize
				}
				r := NewReader(rd.wrap(tt.in), tt.maxFrame)
				got := readAll(t, r)
				if !sameEvents(got, tt.want) {
					t.Errorf("events:\n got  %v\n want %v", got, tt.want)
				}
				if r.Skipped() != tt.skipped {
					t.Errorf("Skipped() = %d, want %d", r.Skipped(), tt.skipped)
				}
				ref, refSkipped := referenceFrames([]byte(tt.in), max)
				if !sameEvents(ref, tt.want) || refSkipped != tt.skipped {
					t.Errorf("reference model disagrees with the table: %v skipped %d", ref, refSkipped)
				}
			})
		}
	}
}

// TestReaderMissingCRDoesNotBlock checks that a frame whose end block is the last
// byte available is returned at once, without waiting for a CR that a sender
// omitting it will never send.
func TestReaderMissingCRDoesNotBlock(t *testing.T) {
	pr, pw := io.Pipe()
	defer pr.Close()
	r := NewReader(pr, 0)
	go func() {
		pw.Write([]byte(vt + "a" + fs)) // no CR; the writer then waits
	}()
	frame, err := r.ReadFrame()
	if err != nil || string(frame) != "a" {
		t.Fatalf("ReadFrame = %q, %v; want \"a\", nil", frame, err)
	}
	go func() {
		pw.Write([]byte(cr + framed("b")))
		pw.Close()
	}()
	frame, err = r.ReadFrame()
	if err != nil || string(frame) != "b" {
		t.Fatalf("ReadFrame = %q, %v; want \"b\", nil", frame, err)
	}
	if r.Skipped() != 0 {
		t.Errorf("Skipped() = %d, want 0 (the late CR belongs to the frame)", r.Skipped())
	}
}

// TestReaderErrorKeepsState checks that a read error (as a timeout) mid-frame
// leaves the Reader able to continue.
func TestReaderErrorKeepsState(t *testing.T) {
	errTimeout := errors.New("timeout")
	src := &scriptReader{steps: []step{{data: vt + "MSH|pa"}, {err: errTimeout}, {data: "rt" + fs + cr}}}
	r := NewReader(src, 0)
	if _, err := r.ReadFrame(); !errors.Is(err, errTimeout) {
		t.Fatalf("first ReadFrame error = %v, want %v", err, errTimeout)
	}
	if !r.inFrame() {
		t.Fatalf("reader lost its partial frame")
	}
	frame, err := r.ReadFrame()
	if err != nil || string(frame) != "MSH|part" {
		t.Fatalf("ReadFrame = %q, %v; want \"MSH|part\", nil", frame, err)
	}
}

type step struct {
	data string
	err  error
}

type scriptReader struct{ steps []step }

func (s *scriptReader) Read(p []byte) (int, error) {
	if len(s.steps) == 0 {
		return 0, io.EOF
	}
	st := s.steps[0]
	s.steps = s.steps[1:]
	return copy(p, st.data), st.err
}

type zeroReader struct{}

func (zeroReader) Read([]byte) (int, error) { return 0, nil }

func TestReaderNoProgress(t *testing.T) {
	if _, err := NewReader(zeroReader{}, 0).ReadFrame(); !errors.Is(err, io.ErrNoProgress) {
		t.Fatalf("err = %v, want io.ErrNoProgress", err)
	}
}

func TestReaderOnMoreCalledOncePerFrame(t *testing.T) {
	r := NewReader(iotest.OneByteReader(strings.NewReader(framed("abc")+framed("de"))), 0)
	calls := 0
	r.onMore = func() error { calls++; return nil }
	for range 2 {
		calls = 0
		if _, err := r.ReadFrame(); err != nil {
			t.Fatal(err)
		}
		if calls != 1 {
			t.Errorf("onMore called %d times for one frame, want 1", calls)
		}
	}
	// A frame found whole in the buffer needs no further read and no hook.
	r = NewReader(strings.NewReader(framed("abc")), 0)
	r.onMore = func() error { t.Error("onMore called for a frame read whole"); return nil }
	if _, err := r.ReadFrame(); err != nil {
		t.Fatal(err)
	}
}

// TestReaderOversizeMemory checks that an oversize frame is skipped without being
// buffered: reading 32 MiB through a Reader limited to 64 KiB allocates little.
func TestReaderOversizeMemory(t *testing.T) {
	const maxFrame = 64 << 10
	const size = 32 << 20
	src := io.MultiReader(strings.NewReader(vt), &repeatReader{b: 'A', n: size}, strings.NewReader(fs+cr+framed("next")))
	r := NewReader(src, maxFrame)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := r.ReadFrame()
	runtime.ReadMemStats(&after)
	var tl *FrameTooLargeError
	if !errors.As(err, &tl) || tl.Size != size || len(tl.Prefix) != maxFrame {
		t.Fatalf("err = %v, want a FrameTooLargeError of %d bytes with a %d-byte prefix", err, size, maxFrame)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4*maxFrame {
		t.Errorf("reading a %d-byte oversize frame allocated %d bytes, want at most %d", size, alloc, 4*maxFrame)
	}
	if cap(r.frame) > maxFrame {
		t.Errorf("frame buffer capacity %d > max %d", cap(r.frame), maxFrame)
	}
	if frame, err := r.ReadFrame(); err != nil || string(frame) != "next" {
		t.Fatalf("after the oversize frame: %q, %v; want \"next\"", frame, err)
	}
}

// TestReaderReleasesLargeBuffer checks that a large frame's buffer is not kept for
// the life of the connection.
func TestReaderReleasesLargeBuffer(t *testing.T) {
	big := strings.Repeat("B", 1<<20)
	r := NewReader(iotest.HalfReader(strings.NewReader(framed(big)+framed("small"))), 0)
	if f, err := r.ReadFrame(); err != nil || len(f) != len(big) {
		t.Fatalf("big frame: %d bytes, %v", len(f), err)
	}
	if f, err := r.ReadFrame(); err != nil || string(f) != "small" {
		t.Fatalf("small frame: %q, %v", f, err)
	}
	if cap(r.frame) > retainLimit {
		t.Errorf("reader keeps a %d-byte buffer after a large frame", cap(r.frame))
	}
}

type repeatReader struct {
	b byte
	n int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	n := min(len(p), r.n)
	for i := range p[:n] {
		p[i] = r.b
	}
	r.n -= n
	return n, nil
}

func TestReaderSteadyStateAllocs(t *testing.T) {
	msg := testMessage(2048)
	for _, tc := range []struct {
		name  string
		chunk int
	}{{"whole frames", 0}, {"split frames", 700}} {
		t.Run(tc.name, func(t *testing.T) {
			src := newLoopReader(framed(string(msg)), tc.chunk)
			r := NewReader(src, 0)
			if _, err := r.ReadFrame(); err != nil { // warm up: grow the frame buffer
				t.Fatal(err)
			}
			allocs := testing.AllocsPerRun(200, func() {
				if _, err := r.ReadFrame(); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Errorf("ReadFrame allocates %.1f times per frame, want 0", allocs)
			}
		})
	}
}

func TestReset(t *testing.T) {
	r := NewReader(strings.NewReader("junk"+vt+"partial"), 100)
	if _, err := r.ReadFrame(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v", err)
	}
	r.Reset(strings.NewReader(framed("x")))
	if f, err := r.ReadFrame(); err != nil || string(f) != "x" {
		t.Fatalf("after Reset: %q, %v", f, err)
	}
	if r.Skipped() != 0 || r.MaxFrameSize() != 100 {
		t.Errorf("after Reset: Skipped %d, MaxFrameSize %d", r.Skipped(), r.MaxFrameSize())
	}
}

func TestWriteFrame(t *testing.T) {
	big := strings.Repeat("x", maxPooledFrame+10)
	tests := []struct {
		name    string
		msg     string
		wantErr error
	}{
		{name: "message", msg: "MSH|^~\\&|A\rMSA|AA|1\r"},
		{name: "empty", msg: ""},
		{name: "larger than the pooled buffer", msg: big},
		{name: "start byte in message", msg: "MSH" + vt, wantErr: ErrFramingByte},
		{name: "end byte in message", msg: "MSH" + fs, wantErr: ErrFramingByte},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := &countingWriter{w: &buf}
			err := WriteFrame(w, []byte(tt.msg))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr != nil {
				if buf.Len() != 0 {
					t.Errorf("wrote %d bytes for a refused message", buf.Len())
				}
				return
			}
			if got := buf.String(); got != framed(tt.msg) {
				t.Errorf("wrote %s, want %s", quoteShort(got), quoteShort(framed(tt.msg)))
			}
			if len(tt.msg)+3 <= maxPooledFrame && w.writes != 1 {
				t.Errorf("%d writes, want 1", w.writes)
			}
		})
	}
}

type countingWriter struct {
	w      io.Writer
	writes int
}

func (c *countingWriter) Write(p []byte) (int, error) { c.writes++; return c.w.Write(p) }

// TestWriteFrameTCP checks the vectored path end to end on a loopback connection.
func TestWriteFrameTCP(t *testing.T) {
	client, server := tcpPair(t)
	msgs := []string{"one", string(testMessage(2048)), strings.Repeat("z", 200_000)}
	go func() {
		for _, m := range msgs {
			if err := WriteFrame(client, []byte(m)); err != nil {
				t.Error(err)
			}
		}
		client.Close()
	}()
	server.SetDeadline(time.Now().Add(10 * time.Second))
	r := NewReader(server, 0)
	for _, m := range msgs {
		f, err := r.ReadFrame()
		if err != nil || string(f) != m {
			t.Fatalf("ReadFrame = %s, %v; want %s", quoteShort(string(f)), err, quoteShort(m))
		}
	}
	if _, err := r.ReadFrame(); err != io.EOF {
		t.Fatalf("at end: %v, want io.EOF", err)
	}
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t testing.TB) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { c.Close(); r.c.Close() })
	return c.(*net.TCPConn), r.c.(*net.TCPConn)
}

// testMessage returns a synthetic ORU^R01 of about size bytes (no real patient
// data), segments separated by CR.
func testMessage(size int) []byte {
	var b bytes.Buffer
	b.WriteString("MSH|^~\\&|LIS|GENHOSP|RESULTGATE|GENHOSP|20260315083000||ORU^R01^ORU_R01|CTRL000001|P|2.5.1|||AL|NE\r")
	b.WriteString("PID|1||TEST000001^^^GENHOSP^MR||TESTPATIENT^ALPHA^Q||19700101|U|||1 TEST ST^^TESTVILLE^TS^00000\r")
	b.WriteString("PV1|1|O|LAB^^^GENHOSP||||D0001^DOCTOR^TEST\r")
	b.WriteString("ORC|RE|ORD0001|FIL0001||CM\r")
	b.WriteString("OBR|1|ORD0001|FIL0001|24323-8^Comprehensive metabolic panel^LN|||20260315073000|||||||||D0001^DOCTOR^TEST||||||20260315082900|||F\r")
	for i := 1; b.Len() < size-80; i++ {
		b.WriteString("OBX|")
		b.WriteString(strconv.Itoa(i))
		b.WriteString("|NM|2345-7^Glucose^LN||95|mg/dL|70-99|N|||F|||20260315080000\r")
	}
	for b.Len() < size-1 {
		b.WriteByte('Z')
	}
	b.WriteByte('\r')
	return b.Bytes()
}

// loopReader returns the same framed data forever, in reads of at most chunk
// bytes (0: as much as asked for).
type loopReader struct {
	data  []byte
	off   int
	chunk int
}

func newLoopReader(frame string, chunk int) *loopReader {
	return &loopReader{data: []byte(strings.Repeat(frame, 64)), chunk: chunk}
}

func (l *loopReader) Read(p []byte) (int, error) {
	if l.chunk > 0 && len(p) > l.chunk {
		p = p[:l.chunk]
	}
	n := 0
	for n < len(p) {
		c := copy(p[n:], l.data[l.off:])
		n += c
		l.off = (l.off + c) % len(l.data)
		if l.chunk > 0 {
			break
		}
	}
	return n, nil
}

// TestReaderFrameCapacity checks that appending to a returned frame cannot
// overwrite the bytes of the next frame in the read buffer.
func TestReaderFrameCapacity(t *testing.T) {
	r := NewReader(strings.NewReader(framed("a")+framed("b")), 0)
	f, err := r.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	if cap(f) != len(f) {
		t.Errorf("frame capacity %d beyond its length %d", cap(f), len(f))
	}
	_ = append(f, "XXXXXXXX"...)
	if f, err := r.ReadFrame(); err != nil || string(f) != "b" {
		t.Fatalf("second frame = %q, %v", f, err)
	}
}

// TestReaderLargeFrameAllocations bounds what assembling a frame that spans many
// reads costs: the frame buffer doubles from 16 KiB and is capped at the maximum
// frame size, so a frame just under the 16 MiB default allocates about twice its
// size in all (the buffers it outgrew included), never more than twice the
// maximum, and holds at most the maximum; the buffer is released before the
// Reader waits for the next frame.
func TestReaderLargeFrameAllocations(t *testing.T) {
	for _, tc := range []struct {
		name      string
		size      int
		maxFactor float64 // bound on total allocation / frame size
	}{
		{"just under the maximum", DefaultMaxFrameSize - 4096, 2.01},
		// Just over a power of two: the last doubling is cut at the maximum.
		{"just over half the maximum", DefaultMaxFrameSize/2 + 1, 4.01},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := io.MultiReader(strings.NewReader(vt), &repeatReader{b: 'A', n: tc.size}, strings.NewReader(fs+cr))
			r := NewReader(src, 0)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			f, err := r.ReadFrame()
			runtime.ReadMemStats(&after)
			if err != nil || len(f) != tc.size || f[0] != 'A' || f[len(f)-1] != 'A' {
				t.Fatalf("ReadFrame: %d bytes, %v; want %d", len(f), err, tc.size)
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%d-byte frame: %d bytes allocated (%.2fx), buffer capacity %d", tc.size, alloc, float64(alloc)/float64(tc.size), cap(r.frame))
			if limit := uint64(float64(tc.size) * tc.maxFactor); alloc > limit {
				t.Errorf("allocated %d bytes for a %d-byte frame, want at most %d", alloc, tc.size, limit)
			}
			if alloc > 2*DefaultMaxFrameSize+64<<10 {
				t.Errorf("allocated %d bytes, more than twice the maximum frame size", alloc)
			}
			if cap(r.frame) > DefaultMaxFrameSize {
				t.Errorf("frame buffer capacity %d beyond the maximum %d", cap(r.frame), DefaultMaxFrameSize)
			}
			if _, err := r.ReadFrame(); err != io.EOF {
				t.Fatalf("after the frame: %v, want EOF", err)
			}
			if r.frame != nil {
				t.Errorf("the %d-byte frame buffer is kept after the frame", cap(r.frame))
			}
		})
	}
}
