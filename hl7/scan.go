package hl7

import (
	"math/bits"
	"unsafe"
)

// vecTab holds, for blockMasks, each byte split looks for repeated over 16
// bytes: the field separator, CR, LF, the repetition, component,
// subcomponent and escape characters, and the space. A delimiter the message
// does not have is replaced by CR: its bits then fall only on line ends,
// where scanBlocks stops reading.
type vecTab [8][16]byte

// blockMask is what blockMasks finds in 64 bytes: bit k of each word is set
// when byte k is a field separator (sep), CR or LF (eol), one of the other
// four delimiters (delim) or a space (space).
type blockMask struct {
	sep, eol, delim, space uint64
}

// newVecTab returns the vecTab for d.
func newVecTab(d Delimiters) vecTab {
	var t vecTab
	for k, c := range [...]byte{d.Field, '\r', '\n', d.Repetition, d.Component, d.Subcomponent, d.Escape, ' '} {
		if c == 0 {
			c = '\r'
		}
		for j := range t[k] {
			t[k][j] = c
		}
	}
	return t
}

// defaultVecTab is newVecTab(DefaultDelimiters), built once.
var defaultVecTab = newVecTab(DefaultDelimiters)

// blockMasksGeneric is blockMasks in Go: the reference the assembly is tested
// against, and the implementation where there is none.
func blockMasksGeneric(p *byte, tab *vecTab, out *blockMask) {
	b := unsafe.Slice(p, 64)
	*out = blockMask{}
	for k, c := range b {
		bit := uint64(1) << k
		if c == tab[0][0] {
			out.sep |= bit
		}
		if c == tab[1][0] || c == tab[2][0] {
			out.eol |= bit
		}
		if c == tab[3][0] || c == tab[4][0] || c == tab[5][0] || c == tab[6][0] {
			out.delim |= bit
		}
		if c == tab[7][0] {
			out.space |= bit
		}
	}
}

// useBlocks is haveBlockMasks, a variable so that tests can compare the
// byte-by-byte reading with the block reading on the same inputs.
var useBlocks = haveBlockMasks

// What ended scanBlocks.
const (
	stopNone  = iota // fewer than 64 bytes left
	stopEOL          // a CR or LF
	stopSpace        // a field separator followed by a space, which may start joined segments
	stopLong         // the segment is compactSegment bytes long or more
)

// scanBlocks is scanLine's fast path for the 16-bit index: it reads the line
// from i 64 bytes at a time with blockMasks, appends an entry for each field
// separator before the line's end, and ors each delimiter's flag into the
// entry of the field it is in: the separator before it, found by counting the
// block's separators below it (none means the field open when the block
// began; before the segment's first separator there is no field, so no flag).
// fields has room for every entry (split counts them first); n are written.
//
// It returns where it stopped, the new n and why: at the line's end (the
// offset of the CR or LF), with fewer than 64 bytes left, at the start of a
// block where a field separator is followed by a space, which scanLine reads
// byte by byte to check it for joined segments, or at a block that starts
// compactSegment bytes or more into the segment.
func scanBlocks(t string, i, base int, vt *vecTab, cls *[256]uint8, fields []uint16, n, bFrom int) (int, int, int) {
	var mk blockMask
	for ; i+64 <= len(t); i += 64 {
		if i-base >= compactSegment {
			return i, n, stopLong // split starts again with 32-bit entries: stop reading now
		}
		blockMasks((*byte)(unsafe.Add(unsafe.Pointer(unsafe.StringData(t)), i)), vt, &mk)
		lim := ^uint64(0) // the bits before the line's end
		if mk.eol != 0 {
			lim = mk.eol&-mk.eol - 1
		}
		sep := mk.sep & lim
		sp := mk.space >> 1 // separators followed by a space
		if i+64 < len(t) && t[i+64] == ' ' {
			sp |= 1 << 63
		}
		if sep&sp != 0 {
			return i, n, stopSpace
		}
		n0 := n
		rel := uint16(i - base) // entries wrap past compactSegment; split then starts again with 32 bits
		for s := sep; s != 0; s &= s - 1 {
			fields[n] = (rel + uint16(bits.TrailingZeros64(s))) << 4
			n++
		}
		for d := mk.delim & lim; d != 0; d &= d - 1 {
			if k := n0 + bits.OnesCount64(sep&(d&-d-1)) - 1; k >= bFrom {
				fields[k] |= uint16(cls[t[i+bits.TrailingZeros64(d)]])
			}
		}
		if mk.eol != 0 {
			return i + bits.TrailingZeros64(mk.eol), n, stopEOL
		}
	}
	return i, n, stopNone
}
