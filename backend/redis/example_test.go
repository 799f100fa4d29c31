package redis_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/alicebob/miniredis/v2"
	goredis "github.com/redis/go-redis/v9"

	"github.com/sessionx/sessions"
	"github.com/sessionx/sessions/backend/redis"
)

// Sessions in Redis: construct the store around the application's client
// and hand it to the Manager. (The example runs on an in-process miniredis;
// point Addr at a real Redis.)
func ExampleNew() {
	mr, err := miniredis.Run()
	if err != nil {
		panic(err)
	}
	defer mr.Close()

	client := goredis.NewClient(&goredis.Options{Addr: mr.Addr(), ContextTimeoutEnabled: true})
	defer client.Close()
	store, err := redis.New(context.Background(), client, redis.Options{Prefix: "shop:session:"})
	if err != nil {
		panic(err) // Redis unreachable
	}

	type Cart struct{ Items []string }
	mgr, err := sessions.New[Cart](sessions.Config{Store: store})
	if err != nil {
		panic(err)
	}
	app := mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := mgr.Get(r)
		s.Data.Items = append(s.Data.Items, "book")
	}))
	app.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))

	keys := mr.Keys()
	fmt.Println(len(keys), "session stored under", keys[0][:len("shop:session:")]+"<sha-256 of the token>")
	fields, _ := mr.HKeys(keys[0])
	fmt.Println("fields:", fields)
	// Output:
	// 1 session stored under shop:session:<sha-256 of the token>
	// fields: [d e i l v w1 w2 w3 w4]
}
