//go:build !amd64 || purego

package hl7

// haveBlockMasks is false where blockMasks has no assembly (or with the
// purego build tag): scanLine reads byte by byte.
const haveBlockMasks = false

// blockMasks is blockMasksGeneric where there is no assembly; scanLine does
// not call it (haveBlockMasks is false).
func blockMasks(p *byte, tab *vecTab, out *blockMask) { blockMasksGeneric(p, tab, out) }
