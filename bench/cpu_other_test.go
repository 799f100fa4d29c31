//go:build !unix

package bench

import "time"

// cpuTime reports that the CPU time is unknown on this system.
func cpuTime() (time.Duration, bool) { return 0, false }
