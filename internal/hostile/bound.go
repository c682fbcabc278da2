package hostile

import (
	"testing"
	"time"
)

// Within runs f and fails t when f used more than bound of CPU time (the
// process's user and system time, every thread and the garbage collector
// included, where the platform reports it; wall time elsewhere). CPU time,
// unlike wall time, does not grow when a shared machine makes the test wait
// for a core, so a bound can be tight enough to catch quadratic work and
// still never fail on a busy machine. f is also given ten times bound of wall
// time, so that a regression fails instead of hanging the test binary.
func Within(t testing.TB, bound time.Duration, f func()) {
	t.Helper()
	done := make(chan struct{})
	cpu0, wall0 := cpuTime(), time.Now()
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(10 * bound):
		t.Fatalf("not done within %v of wall time: work is not linear in the input", 10*bound)
	}
	cpu, wall := cpuTime()-cpu0, time.Since(wall0)
	if cpu0 < 0 { // no CPU clock on this platform
		cpu = wall
	}
	t.Logf("cpu %v, wall %v (bound %v cpu)", cpu.Round(time.Millisecond), wall.Round(time.Millisecond), bound)
	if cpu > bound {
		t.Fatalf("used %v of CPU, more than the bound of %v: work is not linear in the input", cpu.Round(time.Millisecond), bound)
	}
}

// ReportCPU returns a func that reports cpu-ns/op on b: the process's CPU
// time per iteration, steadier than wall time on a shared machine. Use as:
// defer hostile.ReportCPU(b)().
func ReportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() {
		if b.N > 0 && start >= 0 {
			b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

// BenchSizes are the message sizes the BenchmarkHostile benchmarks run each
// shape at, from 1 KiB to the 16 MiB MLLP maximum, four times apart.
var BenchSizes = []int{1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20}
