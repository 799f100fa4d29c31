// Package loadtest drives an application on the Redis store (loadapp, a
// child process built from ./loadapp without -race) on real Redis servers
// with many concurrent clients, and checks, under steady load and through
// faults, that every answer was true: each client increments its own
// session's counter and keeps a redistest.Ledger of the answers, so that
// an increment stored though answered "failed" (a phantom), or lost though
// answered "stored", shows. loadapp serves the demo's JSON API for visits
// and login, and takes every way of reaching Redis the store supports
// (one node, Cluster, Sentinel) and its WAIT mode.
//
//	go test -run Load -v ./loadtest
//
// The faults: Redis stopped and restarted (TestLoadRedisOutage), paused
// with SIGSTOP past loadapp's 10 s request deadline
// (TestLoadRedisPaused), a Sentinel-managed primary failed over by an
// operator (SENTINEL FAILOVER) while the old one keeps running
// (TestLoadSentinelFailover), a Cluster primary killed and replaced by its
// replica (TestLoadClusterFailover), Redis at its maxmemory under
// noeviction and under an evicting policy (TestLoadMaxmemory). The
// failover tests run two loadapps side by side, so that both meet the
// same failover: one whose writes are answered once the primary has them,
// one whose writes wait for replicas (redis.Options.WaitReplicas); the
// Sentinel test also runs two replicas (WaitReplicas 1 and 2) and a
// primary with min-replicas-to-write 1. They measure the loss window, the
// increments lost and the errors and throughput of each phase. Each test
// logs its figures (the README's tables, lines starting "figures:") and
// requests per second with p50 and p99 latency.
//
// TestSizing measures what docs/sizing.md rests on: the memory of a
// stored session (small and large T, with its owner index) and the Redis
// CPU of a read-only and of a modifying request.
//
// The duration of the load before and after each fault is set by
// LOADTEST_DURATION (a Go duration, default 3s); LOADTEST_DEBUG=1 logs
// loadapp's standard error (every failed request). The failover tests
// shorten two of Redis's timings so that the old primary rejoins about a
// second after a failover (the sentinels' INFO period, 1 s instead of
// 10 s; the diskless sync delay, 0 instead of 5 s);
// LOADTEST_REDIS_DEFAULTS=1 keeps Redis's defaults (it then rejoins about
// 15 s after, and the tests take a minute longer). The tests need
// redis-server on PATH; without it they are skipped, unless
// SESSIONS_REQUIRE_REDIS=1, when they fail. The fault, failover and
// sizing tests are skipped under -short, except where
// SESSIONS_REQUIRE_REDIS=1.
package loadtest
