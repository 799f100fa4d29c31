package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/go-chi/chi/v5"
	"github.com/sessionx/sessions"
)

// send serves two requests of one browser with h and prints the answers.
func send(h http.Handler) {
	cookie := ""
	for range 2 {
		req := httptest.NewRequest("GET", "/cart/add?item=book", nil)
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		for _, c := range rec.Result().Cookies() {
			cookie = c.Name + "=" + c.Value
		}
		fmt.Print(rec.Body)
	}
}

// The standard library's ServeMux needs no adapter: the session middleware
// goes around it.
func Example_serveMux() {
	type Cart struct{ Items []string }
	mgr, err := sessions.New[Cart](sessions.Config{})
	if err != nil {
		panic(err)
	}
	defer mgr.Close()

	mux := http.NewServeMux()
	mux.HandleFunc("GET /cart/add", func(w http.ResponseWriter, r *http.Request) {
		s := mgr.Get(r) // *sessions.Session[Cart]
		s.Data.Items = append(s.Data.Items, r.URL.Query().Get("item"))
		fmt.Fprintln(w, s.Data.Items)
	})
	handler := mgr.Handler(mux) // http.ListenAndServe(addr, handler)

	send(handler)
	// Output:
	// [book]
	// [book book]
}

// chi takes the session middleware as it is, with r.Use.
func Example_chi() {
	type Cart struct{ Items []string }
	mgr, err := sessions.New[Cart](sessions.Config{})
	if err != nil {
		panic(err)
	}
	defer mgr.Close()

	r := chi.NewRouter()
	r.Use(mgr.Handler)
	r.Get("/cart/add", func(w http.ResponseWriter, r *http.Request) {
		s := mgr.Get(r) // *sessions.Session[Cart]
		s.Data.Items = append(s.Data.Items, r.URL.Query().Get("item"))
		fmt.Fprintln(w, s.Data.Items)
	})

	send(r)
	// Output:
	// [book]
	// [book book]
}
