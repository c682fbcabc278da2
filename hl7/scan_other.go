//go:build !amd64

package hl7

// haveBlockMasks is false where blockMasks has no assembly: scanLine reads
// byte by byte.
const haveBlockMasks = false

// blockMasks is blockMasksGeneric where there is no assembly; scanLine does
// not call it (haveBlockMasks is false).
func blockMasks(p *byte, tab *vecTab, out *blockMask) { blockMasksGeneric(p, tab, out) }
