//go:build !purego

package hl7

import "golang.org/x/sys/cpu"

// haveBlockMasks reports whether blockMasks is implemented in assembly for
// this architecture; scanLine uses it for every 64 bytes it can read whole.
const haveBlockMasks = true

// useAVX2 selects blockMasks' AVX2 code (two 32-byte compares per byte
// sought instead of four 16-byte ones); without AVX2 it uses SSE2, which
// every amd64 processor has. A variable so that tests run both.
var useAVX2 = cpu.X86.HasAVX2

// blockMasks compares the 64 bytes at p with the bytes of tab and stores one
// bit per byte in out (see blockMask). It reads exactly 64 bytes from p.
//
//go:noescape
func blockMasks(p *byte, tab *vecTab, out *blockMask)
