package bench

import "testing"

// measureCores runs the timed part of a benchmark, run, and reports the
// cores it kept busy: the process's CPU time over the benchmark's elapsed
// time, as "cores". It counts every goroutine of the process, the garbage
// collector's included: a serial benchmark on GOMAXPROCS=2 uses more than
// one core when the collector runs on the other, which is why its cores are
// part of comparing it with RunParallel. Nothing is reported where the CPU
// time is unknown.
func measureCores(b *testing.B, run func()) {
	b.Helper()
	before, ok := cpuTime()
	run()
	after, ok2 := cpuTime()
	if ok && ok2 && b.Elapsed() > 0 {
		b.ReportMetric(float64(after-before)/float64(b.Elapsed()), "cores")
	}
}
