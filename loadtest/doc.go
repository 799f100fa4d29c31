// Package loadtest drives the demo app (examples/demo, as a child process)
// on a real Redis with many concurrent clients, and checks, under steady
// load and through faults, that every answer was true: each client
// increments its own session's counter and keeps a redistest.Ledger of the
// answers, so that an increment stored though answered "failed" (a
// phantom), or lost though answered "stored", shows.
//
//	go test -run Load -v ./loadtest
//
// The faults: Redis stopped and restarted (TestLoadRedisOutage), paused
// with SIGSTOP past the demo's 10 s request deadline (TestLoadRedisPaused),
// a Cluster primary killed and replaced by its replica
// (TestLoadClusterFailover), Redis at its maxmemory under noeviction and
// under an evicting policy (TestLoadMaxmemory). Each test logs its
// figures (the README's faults table) and requests per second with p50
// and p99 latency. The duration of the load before and after each fault is
// set by LOADTEST_DURATION (a Go duration, default 3s). The tests need
// redis-server on PATH; without it they are skipped, unless
// SESSIONS_REQUIRE_REDIS=1, when they fail. All of them take about a
// minute.
package loadtest
