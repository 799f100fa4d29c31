package sessionstest

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/sessionx/sessions"
	"github.com/sessionx/sessions/backend"
)

// Page is the session data of the merge suite: plain fields, a map, and a
// last-writer-wins field.
type Page struct {
	Visits   int
	Theme    string
	Cart     []string
	Counts   map[string]int
	LastPage string `sessions:"lww"`
}

// RunMerge runs the rules for parallel requests of one session that write
// plain fields with the middleware's commit: changes to different fields
// (or different map entries) both land; two changes to the same field give
// exactly one conflict under the default policy; a field tagged
// `sessions:"lww"` never conflicts; Update on a new session's nil map does
// not panic and an untouched empty session is not stored. The cases need
// backend.Conditional and are skipped, naming it, for a store without it.
func RunMerge(t *testing.T, newStore func(t *testing.T) backend.Store) {
	cases := []struct {
		name string
		run  func(t *testing.T, store backend.Store)
	}{
		{"ParallelWritesOfDifferentFieldsBothLand", parallelDifferentFields},
		{"ParallelWritesOfOneFieldGiveOneConflict", parallelSameField},
		{"LastWriterWinsFieldNeverConflicts", lastWriterWins},
		{"UpdateOnNilMapOfNewSession", updateNilMap},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.run(t, need[backend.Conditional](t, newStore(t), "backend.Conditional"))
		})
	}
}

// mergeApp is a Manager[Page] behind its middleware; each request runs
// write after every request of the round has loaded its session, so that
// all of them conflict.
type mergeApp struct {
	mgr *sessions.Manager[Page]
	h   http.Handler
	// barrier, when set, holds each request after its load until n
	// requests have loaded.
	mu      sync.Mutex
	barrier chan struct{}
	waiting int
	n       int
	write   func(r *http.Request, p *Page)
}

func newMergeApp(t *testing.T, store backend.Store) *mergeApp {
	t.Helper()
	mgr, err := sessions.New[Page](sessions.Config{Store: store, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mgr.Close() })
	a := &mergeApp{mgr: mgr}
	a.h = mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := mgr.Get(r)
		a.mu.Lock()
		b := a.barrier
		if b != nil {
			if a.waiting++; a.waiting == a.n {
				close(b)
			}
		}
		a.mu.Unlock()
		if b != nil {
			select {
			case <-b:
			case <-time.After(10 * time.Second):
			}
		}
		if a.write != nil {
			a.write(r, &s.Data)
		}
		fmt.Fprint(w, "ok")
	}))
	return a
}

// round sends n requests of cookie at once, each held until all have
// loaded, and returns their status codes.
func (a *mergeApp) round(t *testing.T, cookie string, n int) []int {
	t.Helper()
	a.mu.Lock()
	a.barrier, a.waiting, a.n = make(chan struct{}), 0, n
	a.mu.Unlock()
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := httptest.NewRecorder()
			a.h.ServeHTTP(w, request(cookie))
			codes[i] = w.Code
		}()
	}
	wg.Wait()
	a.mu.Lock()
	a.barrier = nil
	a.mu.Unlock()
	return codes
}

// start stores a session holding p and returns its cookie.
func (a *mergeApp) start(t *testing.T, p Page) string {
	t.Helper()
	w, r := httptest.NewRecorder(), request("")
	s, _ := a.mgr.Load(w, r)
	s.Data = p
	if err := a.mgr.Save(w, r, s); err != nil {
		t.Fatal(err)
	}
	return cookieOf(t, w)
}

func (a *mergeApp) load(t *testing.T, cookie string) Page {
	t.Helper()
	s, err := a.mgr.Load(httptest.NewRecorder(), request(cookie))
	if err != nil || s.IsNew() {
		t.Fatalf("load: %v (new=%v)", err, s != nil && s.IsNew())
	}
	return s.Data
}

func parallelDifferentFields(t *testing.T, store backend.Store) {
	a := newMergeApp(t, store)
	cookie := a.start(t, Page{Counts: map[string]int{"a": 1}})
	var mu sync.Mutex
	next := 0
	a.write = func(r *http.Request, p *Page) {
		mu.Lock()
		i := next
		next++
		mu.Unlock()
		switch i {
		case 0:
			p.Theme = "dark"
		case 1:
			p.Cart = append(p.Cart, "book")
		case 2:
			p.Counts["b"] = 2 // another map entry
		case 3:
			p.Counts["c"] = 3
		}
	}
	codes := a.round(t, cookie, 4)
	for i, c := range codes {
		if c != http.StatusOK {
			t.Fatalf("request %d answered %d; want every change of a different unit to merge (codes %v)", i, c, codes)
		}
	}
	got := a.load(t, cookie)
	if got.Theme != "dark" || len(got.Cart) != 1 || got.Counts["a"] != 1 || got.Counts["b"] != 2 || got.Counts["c"] != 3 {
		t.Fatalf("after four parallel changes of different units the session holds %+v", got)
	}
}

func parallelSameField(t *testing.T, store backend.Store) {
	a := newMergeApp(t, store)
	cookie := a.start(t, Page{Visits: 4})
	a.write = func(r *http.Request, p *Page) { p.Visits++ } // both write 5
	codes := a.round(t, cookie, 2)
	ok, conflicts := 0, 0
	for _, c := range codes {
		switch c {
		case http.StatusOK:
			ok++
		case http.StatusConflict:
			conflicts++
		}
	}
	if ok != 1 || conflicts != 1 {
		t.Fatalf("two parallel Visits++ answered %v; want one 200 and one 409", codes)
	}
	if got := a.load(t, cookie); got.Visits != 5 {
		t.Fatalf("Visits = %d after one increment landed, want 5 (never 6 from a merge of equal writes)", got.Visits)
	}
}

func lastWriterWins(t *testing.T, store backend.Store) {
	a := newMergeApp(t, store)
	cookie := a.start(t, Page{LastPage: "/"})
	var mu sync.Mutex
	next := 0
	a.write = func(r *http.Request, p *Page) {
		mu.Lock()
		p.LastPage = fmt.Sprintf("/page/%d", next)
		next++
		mu.Unlock()
	}
	codes := a.round(t, cookie, 8)
	for i, c := range codes {
		if c != http.StatusOK {
			t.Fatalf("request %d answered %d; a last-writer-wins field must never conflict (codes %v)", i, c, codes)
		}
	}
	if got := a.load(t, cookie); got.LastPage == "/" {
		t.Fatal("no write of the last-writer-wins field landed")
	}
}

func updateNilMap(t *testing.T, store backend.Store) {
	a := newMergeApp(t, store)
	w, r := httptest.NewRecorder(), request("")
	s, _ := a.mgr.Load(w, r)
	err := a.mgr.Update(w, r, s, func(p *Page) error {
		p.Counts["x"]++ // a new session's nil map
		return nil
	})
	if err != nil {
		t.Fatalf("Update on a nil map: %v", err)
	}
	if got := a.load(t, cookieOf(t, w)); got.Counts["x"] != 1 {
		t.Fatalf("Counts = %v", got.Counts)
	}
	// An Update that leaves the new session empty stores nothing.
	w, r = httptest.NewRecorder(), request("")
	s, _ = a.mgr.Load(w, r)
	if err := a.mgr.Update(w, r, s, func(p *Page) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if len(w.Result().Cookies()) != 0 || !s.IsNew() {
		t.Fatal("an Update that changed nothing stored an anonymous session")
	}
	// A change function that fails leaves nothing behind.
	w, r = httptest.NewRecorder(), request("")
	s, _ = a.mgr.Load(w, r)
	boom := errors.New("boom")
	if err := a.mgr.Update(w, r, s, func(p *Page) error { p.Counts["y"] = 1; return boom }); !errors.Is(err, boom) {
		t.Fatalf("Update: %v, want the change's error", err)
	}
	if len(s.Data.Counts) != 0 || len(w.Result().Cookies()) != 0 {
		t.Fatalf("a failed change left %v and cookies %v", s.Data.Counts, w.Result().Cookies())
	}
}
