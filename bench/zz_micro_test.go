package bench

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

type nopRW struct{ h http.Header }

func (w *nopRW) Header() http.Header         { return w.h }
func (w *nopRW) Write(p []byte) (int, error) { return len(p), nil }
func (w *nopRW) WriteHeader(int)             {}

func BenchmarkZZMicro(b *testing.B) {
	for _, op := range []string{"read", "increment"} {
		for _, l := range []struct {
			name  string
			setup func(b *testing.B) (http.Handler, *counter)
		}{{"sessions", hotSessionsMemory}, {"scs", hotSCSMemory}} {
			b.Run(l.name+"/"+op, func(b *testing.B) {
				h, _ := l.setup(b)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest("GET", "/create", nil))
				io.ReadAll(rec.Result().Body)
				c := rec.Result().Cookies()[0]
				req := httptest.NewRequest("GET", "/"+op, nil)
				req.AddCookie(c)
				w := &nopRW{h: http.Header{}}
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					clear(w.h)
					h.ServeHTTP(w, req)
				}
			})
		}
	}
}
