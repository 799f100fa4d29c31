// Package bench holds the benchmark suite of github.com/sessionx/sessions.
//
// It is a module of its own (bench/go.mod), so that the library itself pulls
// in none of the libraries it is compared with (alexedwards/scs v2 and
// gorilla/sessions). Everything is in the _test.go files:
//
//   - BenchmarkCodec: msgpack, gob and json on a small and a large value.
//   - BenchmarkStore: the memory store (serial and RunParallel) and the Redis
//     store, through backend.Store methods.
//   - BenchmarkRequest: whole requests through httptest, with the same
//     handlers and data for this library, scs and gorilla/sessions.
//   - BenchmarkRequestParallel: requests on the in-process stores, serially
//     and under RunParallel.
//   - BenchmarkMillionSessions: bytes per session and one expiry sweep with
//     1,000,000 sessions in the memory store.
//
// Redis benchmarks read the server's address from SESSIONS_BENCH_REDIS and
// are skipped when it is unset. run.sh starts a private redis-server, runs
// everything and writes RESULTS.md and requests.png; cmd/ratios and
// cmd/chart turn benchstat's CSV into the ratios and the chart.
package bench
