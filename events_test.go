package sessions

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkEventHook measures a login (a new session stored with Migrate,
// which fires an event) with OnEvent unset (the default LogEvents on a
// logger at Info, which drops the Debug records) and with a hook that only
// counts: the hook costs next to nothing when unset.
func BenchmarkEventHook(b *testing.B) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, bc := range []struct {
		name string
		hook func(context.Context, Event)
	}{
		{"unset", nil},
		{"counting", func(context.Context, Event) {}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			mgr, err := New[visitV1](Config{OnEvent: bc.hook, Logger: logger})
			if err != nil {
				b.Fatal(err)
			}
			defer mgr.Close()
			req := httptest.NewRequest(http.MethodPost, "/login", nil)
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				s, _ := mgr.Load(w, req)
				s.Data.User = "ann"
				if err := mgr.Migrate(w, req, s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
