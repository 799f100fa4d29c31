// Package loadtest drives the demo app (examples/demo, as a child process)
// on a real Redis with many concurrent clients, and checks that no session
// update is lost, under steady load and through a Redis outage.
//
//	go test -run Load -v ./loadtest
//
// It reports requests per second and p50/p99 latency in the test log. The
// duration of each phase is LOADTEST_DURATION (a Go duration, default 3s).
// It needs redis-server on PATH; without it the tests are skipped, unless
// SESSIONS_REQUIRE_REDIS=1, when they fail.
package loadtest
