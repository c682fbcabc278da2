//go:build !purego

package hl7

import "testing"

// TestBlockMasksSSE2 runs TestBlockMasks and TestBlockScanReadsTheSame with
// the SSE2 code, which machines without AVX2 use (TestBlockMasks itself runs
// the AVX2 code where the processor has it).
func TestBlockMasksSSE2(t *testing.T) {
	saved := useAVX2
	useAVX2 = false
	t.Cleanup(func() { useAVX2 = saved })
	checkBlockMasks(t)
	TestBlockScanReadsTheSame(t)
}
