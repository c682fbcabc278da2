package mllp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// The MLLP release 1 framing bytes.
const (
	// StartBlock (VT, 0x0B) opens a frame.
	StartBlock byte = 0x0B
	// EndBlock (FS, 0x1C) closes a frame; it is followed by CarriageReturn.
	EndBlock byte = 0x1C
	// CarriageReturn (CR, 0x0D) follows EndBlock. Readers tolerate its absence.
	CarriageReturn byte = 0x0D
)

const (
	// DefaultMaxFrameSize is the maximum frame size (message bytes between the
	// framing bytes) used when a size of zero or less is given: 16 MiB holds the
	// largest results seen in practice (embedded PDF reports and images in OBX-5)
	// while bounding what one connection can make us hold.
	DefaultMaxFrameSize = 16 << 20

	// TooLargePrefixSize is the most bytes of an oversize frame kept in
	// FrameTooLargeError.Prefix: enough for the MSH segment (and usually PID), which
	// is what a NAK needs (MSH-10 for MSA-2, sender and receiver to swap).
	TooLargePrefixSize = 64 << 10

	// readBufferSize is the Reader's fixed read buffer. A frame that fits in it and
	// arrives in one read is returned without copying.
	readBufferSize = 16 << 10

	// retainLimit is the largest frame buffer a Reader keeps between frames; after a
	// larger frame the buffer is released so that one big message does not pin its
	// size in memory for the life of the connection.
	retainLimit = 256 << 10

	// maxEmptyReads bounds how often Read may return (0, nil) in a row.
	maxEmptyReads = 100
)

var (
	// ErrFrameTooLarge is matched (with errors.Is) by the *FrameTooLargeError a Reader
	// returns for a frame larger than its maximum size. The reader has skipped the
	// whole frame and can read the next one.
	ErrFrameTooLarge = errors.New("mllp: frame too large")

	// ErrFramingByte is returned by WriteFrame (and Client.Send) for a message that
	// contains a start-block (0x0B) or end-block (0x1C) byte: it cannot be framed,
	// the receiver would split it or drop part of it.
	ErrFramingByte = errors.New("mllp: message contains a framing byte (0x0B or 0x1C)")
)

// FrameTooLargeError reports a frame larger than the Reader's maximum frame size.
// The frame's bytes beyond Prefix were discarded without being buffered.
type FrameTooLargeError struct {
	// Prefix holds the first bytes of the frame, at most TooLargePrefixSize (and at
	// most the maximum frame size), enough to build a NAK from MSH. It is owned by
	// the caller.
	Prefix []byte
	// Size is the frame's full size in bytes, framing excluded.
	Size int64
	// Limit is the maximum frame size that was exceeded.
	Limit int
}

// Error implements error. It names sizes only, never content.
func (e *FrameTooLargeError) Error() string {
	return fmt.Sprintf("mllp: frame of %d bytes exceeds the maximum of %d bytes", e.Size, e.Limit)
}

// Is makes errors.Is(err, ErrFrameTooLarge) true.
func (e *FrameTooLargeError) Is(target error) bool { return target == ErrFrameTooLarge }

// Reader states.
const (
	stateIdle    = iota // between frames: skipping bytes until a start block
	stateCR             // just after an end block: one CR may follow
	stateFrame          // inside a frame, keeping its bytes
	stateDiscard        // inside an oversize frame, counting and dropping its bytes
)

// Reader reads MLLP frames from an underlying io.Reader.
//
// It holds a fixed 16 KiB read buffer and a frame buffer that never grows beyond
// the maximum frame size; a frame larger than that is skipped without being
// buffered and reported as a *FrameTooLargeError. Bytes outside frames are skipped
// and counted (Skipped). A frame whose end block is not followed by CR is accepted.
// A start block inside a frame means the previous frame was cut short: its bytes are
// dropped (counted as skipped) and a new frame starts.
//
// A Reader is not safe for concurrent use.
type Reader struct {
	rd  io.Reader
	max int

	buf  []byte // fixed read buffer
	r, w int    // buf[r:w] is unread
	err  error  // error from the last Read, returned once buf is drained

	state   int
	frame   []byte // bytes of a frame spanning several reads; cap(frame) <= max
	size    int64  // bytes of the current frame so far (kept or discarded)
	prefix  []byte // first bytes of an oversize frame
	skipped int64

	// onMore, when set, is called once per ReadFrame call before the Reader blocks
	// for more bytes of a frame it has started. The server uses it to switch from
	// the idle deadline to the per-frame read deadline. An error aborts ReadFrame.
	onMore   func() error
	notified bool
}

// NewReader returns a Reader that reads frames of at most maxFrame bytes (framing
// excluded) from r. A maxFrame of zero or less means DefaultMaxFrameSize.
func NewReader(r io.Reader, maxFrame int) *Reader {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrameSize
	}
	return &Reader{rd: r, max: maxFrame, buf: make([]byte, readBufferSize)}
}

// Reset discards the Reader's state and makes it read from r, keeping its buffers
// and maximum frame size. The skipped-byte count restarts at zero.
func (r *Reader) Reset(rd io.Reader) {
	*r = Reader{rd: rd, max: r.max, buf: r.buf, frame: r.frame[:0], onMore: r.onMore}
	if cap(r.frame) > retainLimit {
		r.frame = nil
	}
}

// Skipped returns how many bytes the Reader has dropped outside frames so far: bytes
// before a start block, and frames cut short by a new start block or by the end of
// input. The CR after an end block is framing, not skipped.
func (r *Reader) Skipped() int64 { return r.skipped }

// MaxFrameSize returns the maximum frame size of the Reader.
func (r *Reader) MaxFrameSize() int { return r.max }

// bufferedFrame reports whether the read buffer holds the start of a frame not
// yet returned. A client uses it to detect frames it did not ask for.
func (r *Reader) bufferedFrame() bool {
	return r.inFrame() || bytes.IndexByte(r.buf[r.r:r.w], StartBlock) >= 0
}

// inFrame reports whether the Reader holds part of a frame.
func (r *Reader) inFrame() bool { return r.state == stateFrame || r.state == stateDiscard }

// ReadFrame returns the next frame's message bytes, without the framing bytes.
//
// The returned slice is only valid until the next call to ReadFrame or Reset; copy
// it to keep it. For a frame larger than the maximum size, ReadFrame returns a
// *FrameTooLargeError and the Reader is positioned after that frame. At the end of
// input it returns io.EOF, or io.ErrUnexpectedEOF if a frame was left unfinished.
// Other errors come from the underlying reader; the Reader keeps its state, so a
// call after a timeout continues where the previous one stopped.
func (r *Reader) ReadFrame() ([]byte, error) {
	r.notified = false
	if !r.inFrame() && cap(r.frame) > retainLimit {
		r.frame = nil
	}
	for {
		if r.r == r.w {
			if err := r.fill(); err != nil {
				return nil, err
			}
			continue
		}
		b := r.buf[r.r:r.w]
		switch r.state {
		case stateCR:
			if b[0] == CarriageReturn {
				r.r++
			}
			r.state = stateIdle

		case stateIdle:
			i := bytes.IndexByte(b, StartBlock)
			if i < 0 {
				r.skipped += int64(len(b))
				r.r = r.w
				continue
			}
			r.skipped += int64(i)
			r.r += i + 1
			r.startFrame()

		default: // stateFrame, stateDiscard
			end := bytes.IndexByte(b, EndBlock)
			seg := b
			if end >= 0 {
				seg = b[:end]
			}
			if i := bytes.IndexByte(seg, StartBlock); i >= 0 {
				// The frame was cut short (the sender gave up on it); drop it.
				r.skipped += 1 + r.size + int64(i)
				r.r += i + 1
				r.startFrame()
				continue
			}
			if end < 0 {
				r.consume(seg)
				r.r = r.w
				continue
			}
			var frame []byte
			if r.state == stateFrame && r.size == 0 && end <= r.max {
				// The whole frame is in the read buffer: return it without copying.
				frame = seg[:end:end]
			} else {
				r.consume(seg)
				frame = r.frame
			}
			r.r += end + 1
			wasDiscarding := r.state == stateDiscard
			r.state = stateCR
			if r.r < r.w && r.buf[r.r] == CarriageReturn {
				r.r++
				r.state = stateIdle
			}
			if wasDiscarding {
				err := &FrameTooLargeError{Prefix: r.prefix, Size: r.size, Limit: r.max}
				r.prefix = nil
				return nil, err
			}
			return frame, nil
		}
	}
}

// startFrame begins a new frame after a start block.
func (r *Reader) startFrame() {
	r.state = stateFrame
	r.size = 0
	r.frame = r.frame[:0]
	r.prefix = nil
}

// consume adds p to the current frame, switching to discarding when the frame
// outgrows the maximum size.
func (r *Reader) consume(p []byte) {
	n := int64(len(p))
	if r.state == stateFrame {
		if r.size+n <= int64(r.max) {
			r.frame = r.appendFrame(p)
			r.size += n
			return
		}
		// Oversize: keep a prefix for the NAK, drop the rest as it arrives.
		prefix := make([]byte, min(r.max, TooLargePrefixSize))
		c := copy(prefix, r.frame)
		copy(prefix[c:], p)
		r.prefix = prefix
		r.frame = r.frame[:0]
		r.state = stateDiscard
	}
	r.size += n
}

// appendFrame appends p to the frame buffer, growing it by doubling but never
// beyond the maximum frame size. The caller has checked that it fits.
func (r *Reader) appendFrame(p []byte) []byte {
	f := r.frame
	need := len(f) + len(p)
	if need > cap(f) {
		c := max(2*cap(f), need, 4096)
		c = min(c, r.max)
		nf := make([]byte, len(f), c)
		copy(nf, f)
		f = nf
	}
	return append(f, p...)
}

// fill reads into the empty read buffer.
func (r *Reader) fill() error {
	if r.err != nil {
		err := r.err
		r.err = nil
		return r.readErr(err)
	}
	if r.inFrame() && !r.notified && r.onMore != nil {
		r.notified = true
		if err := r.onMore(); err != nil {
			return err
		}
	}
	r.r, r.w = 0, 0
	for range maxEmptyReads {
		n, err := r.rd.Read(r.buf)
		if n < 0 || n > len(r.buf) {
			return fmt.Errorf("mllp: reader returned invalid count %d", n)
		}
		r.w = n
		if err != nil {
			if n > 0 {
				r.err = err // return it once the bytes are used
				return nil
			}
			return r.readErr(err)
		}
		if n > 0 {
			return nil
		}
	}
	return io.ErrNoProgress
}

// readErr maps an error of the underlying reader, turning io.EOF inside a frame
// into io.ErrUnexpectedEOF (and dropping the unfinished frame).
func (r *Reader) readErr(err error) error {
	if err != io.EOF {
		return err
	}
	if r.inFrame() {
		r.skipped += 1 + r.size
		r.state = stateIdle
		r.size = 0
		r.frame = r.frame[:0]
		r.prefix = nil
		return io.ErrUnexpectedEOF
	}
	r.state = stateIdle
	return io.EOF
}

// Framing written around each message.
var (
	frameHeader  = []byte{StartBlock}
	frameTrailer = []byte{EndBlock, CarriageReturn}
)

// maxPooledFrame is the largest frame WriteFrame assembles in a pooled buffer for
// writers that cannot take a vectored write.
const maxPooledFrame = 64 << 10

var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

type vectored struct {
	arr  [3][]byte
	bufs net.Buffers
}

var vectorPool = sync.Pool{New: func() any { return new(vectored) }}

// WriteFrame writes msg to w as one MLLP frame (0x0B msg 0x1C 0x0D) in a single
// write: a vectored write (writev) on TCP and Unix connections, otherwise one Write
// of a pooled buffer (so a TLS connection sends one record, not three). Frames
// larger than 64 KiB on other writers are written in three calls. A message
// containing a framing byte is refused with ErrFramingByte.
func WriteFrame(w io.Writer, msg []byte) error {
	if bytes.IndexByte(msg, StartBlock) >= 0 || bytes.IndexByte(msg, EndBlock) >= 0 {
		return ErrFramingByte
	}
	switch w.(type) {
	case *net.TCPConn, *net.UnixConn:
		v := vectorPool.Get().(*vectored)
		v.arr = [3][]byte{frameHeader, msg, frameTrailer}
		v.bufs = v.arr[:]
		_, err := v.bufs.WriteTo(w)
		v.arr = [3][]byte{}
		v.bufs = nil
		vectorPool.Put(v)
		return err
	}
	if len(msg)+3 > maxPooledFrame {
		for _, p := range [][]byte{frameHeader, msg, frameTrailer} {
			if _, err := w.Write(p); err != nil {
				return err
			}
		}
		return nil
	}
	bp := framePool.Get().(*[]byte)
	b := append((*bp)[:0], StartBlock)
	b = append(b, msg...)
	b = append(b, EndBlock, CarriageReturn)
	_, err := w.Write(b)
	*bp = b[:0]
	framePool.Put(bp)
	return err
}
