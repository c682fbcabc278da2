//go:build !purego

package hl7

// haveBlockMasks reports whether blockMasks is implemented in assembly for
// this architecture; scanLine uses it for every 64 bytes it can read whole.
const haveBlockMasks = true

// blockMasks compares the 64 bytes at p with the bytes of tab and stores one
// bit per byte in out (see blockMask). It reads exactly 64 bytes from p. SSE2,
// which every amd64 processor has.
//
//go:noescape
func blockMasks(p *byte, tab *vecTab, out *blockMask)
