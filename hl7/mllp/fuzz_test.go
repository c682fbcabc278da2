package mllp

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/resultgate/resultgate/internal/hostile"
)

// FuzzReader checks the Reader against the unbounded reference model on arbitrary
// input, maximum frame size and read sizes: same frames, same oversize reports,
// same skipped count, the frame buffer never above the maximum, no panic, no hang.
func FuzzReader(f *testing.F) {
	f.Add([]byte(framed("MSH|^~\\&|A|B\rPID|1\r")), uint16(0), uint8(0))
	f.Add([]byte("junk"+framed("a")+framed("b")+vt+"c"+fs), uint16(4), uint8(1))
	f.Add([]byte(vt+"abc"+vt+"def"+fs+cr+cr+vt), uint16(2), uint8(3))
	// The adversarial HL7 shapes, framed twice (back to back) and unframed.
	for _, s := range hostile.Shapes() {
		m := string(s.Message(4 << 10))
		f.Add([]byte(framed(m)+framed(m)), uint16(0), uint8(7))
		f.Add([]byte(m), uint16(1<<10), uint8(200))
	}
	f.Fuzz(func(t *testing.T, data []byte, maxFrame uint16, chunk uint8) {
		max := int(maxFrame)
		if max == 0 {
			max = DefaultMaxFrameSize
		}
		src := &chunkReader{data: data, chunks: []int{int(chunk%17) + 1, 1, int(chunk/16) + 1, 1 << 20}}
		r := NewReader(src, int(maxFrame))
		got := readAll(t, r)
		want, skipped := referenceFrames(data, max)
		if !sameEvents(got, want) {
			t.Fatalf("events:\n got  %v\n want %v", got, want)
		}
		if r.Skipped() != skipped {
			t.Fatalf("Skipped() = %d, want %d", r.Skipped(), skipped)
		}
	})
}

// FuzzWriteRead checks that WriteFrame refuses exactly the messages containing a
// framing byte, and that ReadFrame gives back every other message unchanged.
func FuzzWriteRead(f *testing.F) {
	f.Add([]byte("MSH|^~\\&|A|B\rPID|1\r"))
	f.Add([]byte(""))
	f.Add([]byte("\r\r\n"))
	f.Add([]byte("bad\x1c"))
	for _, s := range hostile.Shapes() {
		f.Add(s.Message(4 << 10))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		var buf bytes.Buffer
		err := WriteFrame(&buf, msg)
		if bytes.ContainsAny(msg, "\x0b\x1c") {
			if !errors.Is(err, ErrFramingByte) || buf.Len() != 0 {
				t.Fatalf("WriteFrame = %v with %d bytes written, want ErrFramingByte and nothing", err, buf.Len())
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		r := NewReader(&buf, len(msg)+1)
		got, err := r.ReadFrame()
		if err != nil || !bytes.Equal(got, msg) || r.Skipped() != 0 {
			t.Fatalf("ReadFrame = %q, %v (skipped %d), want %q", got, err, r.Skipped(), msg)
		}
		if _, err := r.ReadFrame(); err != io.EOF {
			t.Fatalf("after the frame: %v, want io.EOF", err)
		}
	})
}
