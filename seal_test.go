package sessions

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionx/sessions/backend"
)

// ownerSpy records the owners a store's index is given.
type ownerSpy struct {
	*countingStore
	mu     sync.Mutex
	owners []string
}

func (o *ownerSpy) AddOwned(ctx context.Context, owner, key string, limit time.Time) error {
	o.mu.Lock()
	o.owners = append(o.owners, owner)
	o.mu.Unlock()
	return o.countingStore.AddOwned(ctx, owner, key, limit)
}

// TestStoreNeverSeesTheOwner: the owner (a user id, an e-mail address) is
// given to the store's index only as its hash, and the stored bytes hold it
// only sealed.
func TestStoreNeverSeesTheOwner(t *testing.T) {
	clock := newFakeClock()
	spy := &ownerSpy{countingStore: newCountingStore(t, clock.Now)}
	env := newTestEnv[visitV1](t, Config{Store: spy, Now: clock.Now})
	const owner = "ann@example.com"
	w, r := newHeaderWriter(), httptestRequest("")
	s, _ := env.mgr.Load(w, r)
	s.SetOwner(owner)
	if err := env.mgr.Migrate(w, r, s); err != nil {
		t.Fatal(err)
	}
	if len(spy.owners) == 0 {
		t.Fatal("the index was never written")
	}
	for _, o := range spy.owners {
		if strings.Contains(o, owner) || o != indexID(owner) {
			t.Fatalf("the store's index was given %q, want only the owner's hash", o)
		}
	}
	e, err := spy.inner.Get(t.Context(), s.key)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(e.Value, []byte(owner)) {
		t.Fatal("the stored bytes hold the owner")
	}
	if list, err := env.mgr.Sessions(t.Context(), owner); err != nil || len(list) != 1 {
		t.Fatalf("Sessions: %d, %v; want the session", len(list), err)
	}
}

// TestOwnerIndexReadsRecordsFromBeforeHashing: sessions indexed under the
// owner itself (before the index was given hashes) are still listed and
// ended by DestroyAll, so that an upgrade does not let any outlive a "log out
// everywhere".
func TestOwnerIndexReadsRecordsFromBeforeHashing(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{})
	w, r := newHeaderWriter(), httptestRequest("")
	s, _ := env.mgr.Load(w, r)
	s.SetOwner("user-7")
	if err := env.mgr.Migrate(w, r, s); err != nil {
		t.Fatal(err)
	}
	cookie := cookieName + "=" + s.token
	// Move its index record to where the old version kept it.
	ctx := t.Context()
	if err := env.store.inner.RemoveOwned(ctx, indexID("user-7"), s.key); err != nil {
		t.Fatal(err)
	}
	if err := env.store.inner.AddOwned(ctx, "user-7", s.key, s.absolute); err != nil {
		t.Fatal(err)
	}
	if list, err := env.mgr.Sessions(ctx, "user-7"); err != nil || len(list) != 1 {
		t.Fatalf("Sessions of an owner indexed the old way: %d, %v", len(list), err)
	}
	if n, err := env.mgr.DestroyAll(ctx, "user-7", ""); err != nil || n != 1 {
		t.Fatalf("DestroyAll of an owner indexed the old way: %d, %v", n, err)
	}
	if got, _ := env.mgr.Load(newHeaderWriter(), httptestRequest(cookie)); !got.IsNew() {
		t.Fatal("a session indexed the old way outlived DestroyAll")
	}
}

// TestSessionInOldFormatLoadsAndIsSealedAtNextWrite: a session stored before
// sealing (envelope format 1, unkeyed binding, owner in the clear) still
// loads, bound as before, and its next write stores it sealed.
func TestSessionInOldFormatLoadsAndIsSealedAtNextWrite(t *testing.T) {
	env := newTestEnv[visitV1](t, Config{Bind: func(r *http.Request) string { return r.UserAgent() }})
	now := env.clock.Now()
	token := newToken()
	key := storeKey(token)
	data, _ := env.mgr.cfg.Codec.Marshal(&visitV1{User: "old-format-user", Count: 3})
	old := envelope{created: now, absolute: now.Add(time.Hour), issued: now, handle: [16]byte{9},
		owner: "old-owner", bind: legacyBinding("OldBrowser/1"), csrf: bytes.Repeat([]byte{4}, 32), data: data}
	if err := env.store.inner.Set(t.Context(), key, backend.Entry{
		Value: appendEnvelopeV1(nil, &old), Expires: now.Add(30 * time.Minute), Limit: now.Add(time.Hour), Version: 1,
	}); err != nil {
		t.Fatal(err)
	}
	req := func(ua string) *http.Request {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Cookie", cookieName+"="+token)
		r.Header.Set("User-Agent", ua)
		return r
	}
	if s, _ := env.mgr.Load(newHeaderWriter(), req("OtherBrowser/2")); !s.IsNew() {
		t.Fatal("an old-format session was served to another client than the one it was bound to")
	}
	w, r := newHeaderWriter(), req("OldBrowser/1")
	s, err := env.mgr.Load(w, r)
	if err != nil || s.IsNew() || s.Data.User != "old-format-user" || s.Owner() != "old-owner" {
		t.Fatalf("old-format session: %+v owner %q (new=%v), %v", s.Data, s.Owner(), s.IsNew(), err)
	}
	s.Data.Count++
	if err := env.mgr.Save(w, r, s); err != nil {
		t.Fatal(err)
	}
	e, err := env.store.inner.Get(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeEnvelope(e.Value)
	if err != nil || got.format != envelopeFormat || got.sealed == nil {
		t.Fatalf("after its next write the session is format %d, sealed %v (%v); want format 2, sealed", got.format, got.sealed != nil, err)
	}
	for _, plain := range []string{"old-format-user", "old-owner"} {
		if bytes.Contains(e.Value, []byte(plain)) {
			t.Fatalf("the rewritten session still holds %q in the clear", plain)
		}
	}
	if s, _ := env.mgr.Load(newHeaderWriter(), req("OldBrowser/1")); s.IsNew() || s.Data.Count != 4 {
		t.Fatalf("the resealed session gives %+v (new=%v)", s.Data, s.IsNew())
	}
	if s, _ := env.mgr.Load(newHeaderWriter(), req("OtherBrowser/2")); !s.IsNew() {
		t.Fatal("the resealed session lost its binding")
	}
}
