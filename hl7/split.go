package hl7

import (
	"bytes"
	"fmt"
)

// Batch describes the envelope of a batch or file (chapter 2, "Batch protocol"):
// the FHS/BHS headers and BTS/FTS trailers found by SplitBatch, as raw segment
// text (nil when absent), and each message's bytes.
type Batch struct {
	FHS, FTS []byte
	Batches  []BatchGroup
}

// BatchGroup is one BHS ... BTS group (or the messages outside any BHS).
type BatchGroup struct {
	BHS, BTS []byte
	Messages [][]byte
}

// SplitMessages cuts data into messages: a single message, several messages back
// to back, a batch (BHS ... BTS) or a file (FHS [BHS ... BTS]... FTS). Each
// returned slice is a sub-slice of data from its "MSH" up to (not including) the
// next MSH, BHS, BTS or FTS line, terminators included, so that it can be passed
// to Parse or stored unchanged. A batch with no messages gives an empty result
// and no error.
//
// The envelope must be well formed: FHS only first, BHS only where no batch is
// open and no message has started since the last header or trailer, nothing
// after FTS, and no segment outside a message. Violations are ErrBadBatch with
// the line. Input without any MSH, BHS or FHS is ErrNoMSH.
func SplitMessages(data []byte) ([][]byte, error) {
	b, err := SplitBatch(data)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for _, g := range b.Batches {
		out = append(out, g.Messages...)
	}
	if out == nil {
		out = [][]byte{}
	}
	return out, nil
}

// SplitBatch is SplitMessages that also returns the batch envelope.
func SplitBatch(data []byte) (*Batch, error) {
	start := skipLeading(data)
	if start == len(data) {
		return nil, &ParseError{Err: ErrEmpty}
	}
	res := &Batch{}
	var (
		cur       *BatchGroup // group being filled
		inBatch   bool        // a BHS is open
		msgStart  = -1        // start of the current message, -1 if none
		afterFTS  bool
		sawHeader bool
		line      int
	)
	group := func() *BatchGroup {
		if cur == nil {
			res.Batches = append(res.Batches, BatchGroup{})
			cur = &res.Batches[len(res.Batches)-1]
		}
		return cur
	}
	closeMsg := func(end int) {
		if msgStart >= 0 {
			g := group()
			g.Messages = append(g.Messages, data[msgStart:end:end])
			msgStart = -1
		}
	}
	bad := func(off int, id, detail string) error {
		return &ParseError{Err: ErrBadBatch, Segment: id, Line: line, Offset: off, Detail: detail}
	}
	pos := start
	for pos < len(data) {
		lineStart := pos
		end := pos
		for end < len(data) && data[end] != '\r' && data[end] != '\n' {
			end++
		}
		seg := data[pos:end]
		pos = end
		for pos < len(data) && (data[pos] == '\r' || data[pos] == '\n') {
			pos++
		}
		if isBlank(bytesToString(seg)) {
			continue
		}
		line++
		id := ""
		// A header or MSH is its three letters followed by a delimiter-like
		// character (or nothing): "MSH is" in wrapped text starts nothing.
		if len(seg) >= 3 && (len(seg) == 3 || (seg[3] >= 0x21 && seg[3] <= 0x7E && !isUpperDigit(seg[3]) && !(seg[3] >= 'a' && seg[3] <= 'z'))) {
			id = string(seg[:3])
		}
		if afterFTS {
			return nil, bad(lineStart, id, fmt.Sprintf("%q after FTS", preview(seg)))
		}
		switch id {
		case "FHS":
			if line != 1 {
				return nil, bad(lineStart, id, "FHS is only allowed as the first segment")
			}
			res.FHS = seg
			sawHeader = true
		case "BHS":
			if inBatch {
				what := "batch"
				if msgStart >= 0 {
					what = "message"
				}
				return nil, bad(lineStart, id, fmt.Sprintf("BHS inside a %s (no BTS before it)", what))
			}
			if msgStart >= 0 {
				return nil, bad(lineStart, id, "BHS inside a message outside any batch")
			}
			// Messages before the first BHS (in a file) form their own group.
			res.Batches = append(res.Batches, BatchGroup{BHS: seg})
			cur = &res.Batches[len(res.Batches)-1]
			inBatch, sawHeader = true, true
		case "BTS":
			closeMsg(lineStart)
			group().BTS = seg
			cur, inBatch = nil, false
			sawHeader = true
		case "FTS":
			if inBatch {
				return nil, bad(lineStart, id, "FTS inside a batch (no BTS before it)")
			}
			closeMsg(lineStart)
			res.FTS = seg
			afterFTS = true
		case "MSH":
			closeMsg(lineStart)
			msgStart = lineStart
		default:
			if msgStart < 0 {
				if !sawHeader && line == 1 {
					return nil, &ParseError{Err: ErrNoMSH, Line: 1, Offset: lineStart,
						Detail: fmt.Sprintf("starts with %q", preview(seg))}
				}
				return nil, bad(lineStart, id, fmt.Sprintf("%q is outside any message", preview(seg)))
			}
		}
	}
	closeMsg(len(data))
	return res, nil
}

// NextSegment returns the first non-empty segment of b and the rest after it:
// CR, LF and CRLF all end a segment, and empty lines (a doubled terminator, a
// trailing one) are not segments. ok is false when b holds no more segments.
// It reads raw bytes without parsing, in one pass.
func NextSegment(b []byte) (seg, rest []byte, ok bool) {
	for len(b) > 0 && (b[0] == '\r' || b[0] == '\n') {
		b = b[1:]
	}
	if len(b) == 0 {
		return nil, nil, false
	}
	if i := bytes.IndexAny(b, "\r\n"); i >= 0 {
		return b[:i], b[i:], true
	}
	return b, nil, true
}
