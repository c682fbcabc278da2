//go:build !unix

package hostile

import "time"

// cpuTime reports no CPU clock (-1) where getrusage is unavailable.
func cpuTime() time.Duration { return -1 }
