package bench

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"testing"
)

// parallelSessions is how many sessions BenchmarkRequestParallel spreads its
// requests over.
const parallelSessions = 1024

// BenchmarkRequestParallel runs whole requests on the in-process stores
// serially and under b.RunParallel (GOMAXPROCS goroutines), over 1,024
// sessions: what the memory store's scaling means for a request. Each
// goroutine keeps to its own sessions (i ≡ goroutine mod GOMAXPROCS), so
// that modifying requests never conflict.
func BenchmarkRequestParallel(b *testing.B) {
	for _, l := range libs {
		if l.name != "sessions-memory" && l.name != "scs-memstore" {
			continue
		}
		for _, op := range []string{"read", "modify"} {
			setup := func(b *testing.B) (lib, []*http.Request) {
				lb := l.setup(b)
				reqs := make([]*http.Request, parallelSessions)
				for i := range reqs {
					rec := do(lb.h, "/create", "")
					if rec.Code != http.StatusOK {
						b.Fatalf("create: status %d: %s", rec.Code, rec.Body)
					}
					reqs[i] = httptest.NewRequest(http.MethodGet, "/"+op, nil)
					reqs[i].Header.Set("Cookie", sessionCookie(b, rec))
				}
				return lb, reqs
			}
			serve := func(b *testing.B, h http.Handler, tmpl *http.Request) {
				req := new(http.Request)
				*req = *tmpl
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Errorf("status %d: %s", rec.Code, rec.Body)
				}
			}
			b.Run(l.name+"/"+op+"/serial", func(b *testing.B) {
				lb, reqs := setup(b)
				b.ReportAllocs()
				measureCores(b, func() {
					i := 0
					for b.Loop() {
						serve(b, lb.h, reqs[i%parallelSessions])
						i++
					}
				})
			})
			b.Run(l.name+"/"+op+"/parallel", func(b *testing.B) {
				lb, reqs := setup(b)
				procs := runtime.GOMAXPROCS(0)
				var next atomic.Int32
				b.ReportAllocs()
				b.ResetTimer()
				measureCores(b, func() {
					b.RunParallel(func(pb *testing.PB) {
						i := int(next.Add(1) - 1) // this goroutine's first session
						for pb.Next() {
							serve(b, lb.h, reqs[i%parallelSessions])
							i += procs
						}
					})
				})
			})
		}
	}
}
