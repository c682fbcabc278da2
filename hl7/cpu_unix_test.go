//go:build unix

package hl7

import (
	"syscall"
	"testing"
)

// reportCPU returns a func that reports cpu-ns/op: the process's user+system
// CPU time (getrusage, GC and all threads included) per iteration. On a shared
// machine it is steadier than wall time, which counts time spent waiting for a
// CPU. Use as: defer reportCPU(b)().
func reportCPU(b *testing.B) func() {
	start := cpuNanos()
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64(cpuNanos()-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

func cpuNanos() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
