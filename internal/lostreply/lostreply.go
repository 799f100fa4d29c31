// Package lostreply is the test suite of a store whose writes travel over a
// network (backend/postgres, backend/mysql): a write whose reply is lost
// after the server applied it must be reported as what happened (success,
// applied exactly once), or as backend.ErrUnknownOutcome, never as a
// failure. Proxy drops replies or requests on the way; Resolved,
// ThenAnotherWriter and UnresolvedIsOutcomeUnknown test a store connected
// through it (the store packages' tests of the same names call them).
package lostreply

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionx/sessions/backend"
)

// Store is what the suite needs of a store: every write it can lose the
// reply of.
type Store interface {
	backend.Store
	backend.Conditional
	backend.Replacer
	backend.Indexer
}

// Setup returns a Proxy to the store's server, a store whose only
// connection goes through it (each statement sent whole, so that the
// first reply comes after the statement ran), and a store on the same
// table through a direct connection. With unresolved, the proxied store
// does not resolve lost replies (its ResolveWithin is negative). Each call
// gets a table of its own; the stores' background cleanup is off.
type Setup func(t *testing.T, unresolved bool) (proxy *Proxy, st, direct Store)

// Proxy forwards TCP between a client and the server. Armed to drop a
// reply, it drops the next bytes the server sends (after the statement ran
// and committed: the server answers a statement in autocommit mode once it
// has committed) and cuts both connections, so the client never hears that
// its write landed. Armed to drop a request, it drops the next bytes the
// client sends and cuts: the statement never reaches the server. Either
// way the client sees a broken connection after sending.
type Proxy struct {
	ln        net.Listener
	target    string
	dropReply atomic.Bool
	dropSend  atomic.Bool
	drops     atomic.Int64
	onDrop    func() // run after a reply was dropped, before the client hears of it
}

// Addr returns the address clients dial to reach the server through p.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// DropNextReply arms p to drop the next bytes the server sends and cut the
// connection they were on.
func (p *Proxy) DropNextReply() { p.dropReply.Store(true) }

// DropNextRequest arms p to drop the next bytes a client sends and cut the
// connection they were on.
func (p *Proxy) DropNextRequest() { p.dropSend.Store(true) }

// Drops returns how many times p dropped bytes.
func (p *Proxy) Drops() int64 { return p.drops.Load() }

// OnDrop sets f to run after p dropped a reply, before it cuts the
// connection (so before the client hears of the loss). Set it before
// arming p.
func (p *Proxy) OnDrop(f func()) { p.onDrop = f }

// NewProxy returns a Proxy to target, listening on a free loopback port
// until t ends.
func NewProxy(t *testing.T, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *Proxy) serve(client net.Conn) {
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	cut := func() { client.Close(); server.Close() }
	go func() { // client -> server
		buf := make([]byte, 64<<10)
		for {
			n, err := client.Read(buf)
			if n > 0 {
				if p.dropSend.CompareAndSwap(true, false) {
					p.drops.Add(1)
					cut()
					return
				}
				if _, werr := server.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		cut()
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := server.Read(buf)
		if n > 0 {
			if p.dropReply.CompareAndSwap(true, false) {
				p.drops.Add(1)
				if p.onDrop != nil {
					p.onDrop()
				}
				cut()
				return
			}
			if _, werr := client.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	_, _ = io.Copy(io.Discard, server)
	cut()
}

// Entry returns an entry holding value at version, live for a minute,
// with an absolute deadline an hour away.
func Entry(value string, version uint64) backend.Entry {
	return backend.Entry{Value: []byte(value), Expires: time.Now().Add(time.Minute), Limit: time.Now().Add(time.Hour), Version: version}
}

// Resolved drops the server's answer to each kind of
// write after it committed (or drops the write itself before it reached the
// server): the store must report what happened (success, the write applied
// exactly once), not a failure.
func Resolved(t *testing.T, setup Setup) {
	proxy, st, direct := setup(t, false)
	ctx := t.Context()
	if err := st.SetIf(ctx, "k", 0, time.Now(), Entry("v1", 1)); err != nil {
		t.Fatal(err)
	}
	getValue := func(t *testing.T, key string) (string, uint64) {
		t.Helper()
		e, err := direct.Get(ctx, key)
		if err != nil {
			t.Fatalf("Get(%s): %v", key, err)
		}
		return string(e.Value), e.Version
	}
	for _, tc := range []struct {
		name  string
		write func() error
		check func(t *testing.T)
	}{
		{"SetIf", func() error { return st.SetIf(ctx, "k", 1, time.Now(), Entry("v2", 2)) }, func(t *testing.T) {
			if v, n := getValue(t, "k"); v != "v2" || n != 2 {
				t.Fatalf("after the SetIf: %q version %d, want v2 version 2", v, n)
			}
		}},
		{"SetIf creating", func() error { return st.SetIf(ctx, "c", 0, time.Now(), Entry("c1", 1)) }, func(t *testing.T) {
			if v, n := getValue(t, "c"); v != "c1" || n != 1 {
				t.Fatalf("after the create: %q version %d", v, n)
			}
		}},
		{"Replace", func() error { return st.Replace(ctx, "k", 2, "k2", time.Now(), Entry("v3", 3)) }, func(t *testing.T) {
			if _, err := direct.Get(ctx, "k"); !errors.Is(err, backend.ErrNotFound) {
				t.Fatalf("old key after the Replace: %v, want ErrNotFound", err)
			}
			if v, n := getValue(t, "k2"); v != "v3" || n != 3 {
				t.Fatalf("new key after the Replace: %q version %d", v, n)
			}
		}},
		{"SetIf ending the session (a dead Expires)", func() error {
			if err := direct.SetIf(ctx, "e", 0, time.Now(), Entry("e1", 1)); err != nil {
				return err
			}
			return st.SetIf(ctx, "e", 1, time.Now(), backend.Entry{Expires: time.Now().Add(-time.Second), Version: 1})
		}, func(t *testing.T) {
			if _, err := direct.Get(ctx, "e"); !errors.Is(err, backend.ErrNotFound) {
				t.Fatalf("after the SetIf ending it: %v, want ErrNotFound", err)
			}
		}},
		{"Set", func() error { return st.Set(ctx, "s", Entry("s1", 5)) }, func(t *testing.T) {
			if v, n := getValue(t, "s"); v != "s1" || n != 5 {
				t.Fatalf("after the Set: %q version %d", v, n)
			}
		}},
		{"Touch", func() error { return st.Touch(ctx, "s", time.Now(), time.Now().Add(30*time.Minute)) }, func(t *testing.T) {
			if e, err := direct.Get(ctx, "s"); err != nil || time.Until(e.Expires) < 29*time.Minute {
				t.Fatalf("after the Touch: %v, %v", e.Expires, err)
			}
		}},
		{"Delete", func() error { return st.Delete(ctx, "s") }, func(t *testing.T) {
			if _, err := direct.Get(ctx, "s"); !errors.Is(err, backend.ErrNotFound) {
				t.Fatalf("after the Delete: %v", err)
			}
		}},
		{"AddOwned", func() error { return st.AddOwned(ctx, "u", "k2", time.Now().Add(time.Hour)) }, func(t *testing.T) {
			if keys, err := direct.Owned(ctx, "u"); err != nil || !slices.Equal(keys, []string{"k2"}) {
				t.Fatalf("after the AddOwned: %q, %v", keys, err)
			}
		}},
		{"RemoveOwned", func() error { return st.RemoveOwned(ctx, "u", "k2") }, func(t *testing.T) {
			if keys, err := direct.Owned(ctx, "u"); err != nil || len(keys) != 0 {
				t.Fatalf("after the RemoveOwned: %q, %v", keys, err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			drops := proxy.Drops()
			proxy.DropNextReply()
			if err := tc.write(); err != nil {
				t.Fatalf("a write the server applied but whose answer was lost: %v, want success", err)
			}
			if proxy.Drops() != drops+1 {
				t.Fatal("the proxy dropped nothing: the test tested nothing")
			}
			tc.check(t)
		})
	}

	// A lost request: the write never reached the server; sent again, it
	// lands once.
	t.Run("SetIf, request lost", func(t *testing.T) {
		if err := st.SetIf(ctx, "r", 0, time.Now(), Entry("r1", 1)); err != nil {
			t.Fatal(err)
		}
		drops := proxy.Drops()
		proxy.DropNextRequest()
		if err := st.SetIf(ctx, "r", 1, time.Now(), Entry("r2", 2)); err != nil {
			t.Fatalf("a write lost on its way, then sent again: %v, want success", err)
		}
		if proxy.Drops() != drops+1 {
			t.Fatal("the proxy dropped nothing")
		}
		if v, n := getValue(t, "r"); v != "r2" || n != 2 {
			t.Fatalf("after the SetIf: %q version %d", v, n)
		}
	})

	// A different writer of the same version is not mistaken for a replay.
	if err := st.SetIf(ctx, "k2", 2, time.Now(), Entry("v4", 4)); !errors.Is(err, backend.ErrConflict) {
		t.Fatalf("another writer's SetIf from a stale version: %v, want ErrConflict", err)
	}
}

// ThenAnotherWriter: the write lands, its answer is
// lost, and before the store sends it again another writer builds on it.
// The store must still report success (the row remembers the last writes'
// ids), not a conflict.
func ThenAnotherWriter(t *testing.T, setup Setup) {
	for _, tc := range []struct {
		name   string
		write  func(st Store) error
		others func(direct Store) error
		want   string
	}{
		{"SetIf",
			func(st Store) error { return st.SetIf(t.Context(), "k", 1, time.Now(), Entry("v2", 2)) },
			func(d Store) error { return d.SetIf(t.Context(), "k", 2, time.Now(), Entry("v3", 3)) },
			"v3"},
		{"SetIf, then three more writers",
			func(st Store) error { return st.SetIf(t.Context(), "k", 1, time.Now(), Entry("v2", 2)) },
			func(d Store) error {
				for v := uint64(2); v < 5; v++ {
					if err := d.SetIf(t.Context(), "k", v, time.Now(), Entry("w", v+1)); err != nil {
						return err
					}
				}
				return nil
			},
			"w"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy, st, direct := setup(t, false)
			if err := st.SetIf(t.Context(), "k", 0, time.Now(), Entry("v1", 1)); err != nil {
				t.Fatal(err)
			}
			proxy.OnDrop(func() {
				if err := tc.others(direct); err != nil {
					t.Errorf("the other writer: %v", err)
				}
			})
			proxy.DropNextReply()
			if err := tc.write(st); err != nil {
				t.Fatalf("a write that landed, then was built on, was reported as %v", err)
			}
			if proxy.Drops() != 1 {
				t.Fatal("the proxy dropped nothing")
			}
			if got, _ := direct.Get(t.Context(), "k"); string(got.Value) != tc.want {
				t.Fatalf("stored %q, want the other writer's %q", got.Value, tc.want)
			}
		})
	}
}

// UnresolvedIsOutcomeUnknown: with retries off, a write whose
// answer was lost is reported as an unknown outcome (ErrUnknownOutcome),
// never as a plain failure, though it landed.
func UnresolvedIsOutcomeUnknown(t *testing.T, setup Setup) {
	proxy, st, direct := setup(t, true)
	ctx := t.Context()
	if err := st.SetIf(ctx, "k", 0, time.Now(), Entry("v1", 1)); err != nil {
		t.Fatal(err)
	}
	proxy.DropNextReply()
	err := st.SetIf(ctx, "k", 1, time.Now(), Entry("v2", 2))
	if !errors.Is(err, backend.ErrUnknownOutcome) {
		t.Fatalf("lost answer, no retries: %v, want ErrUnknownOutcome", err)
	}
	if got, _ := direct.Get(ctx, "k"); string(got.Value) != "v2" {
		t.Fatalf("stored %q: the write did land, the test meant it to", got.Value)
	}
	t.Logf("the error: %v", err)

	// With retries on but the context ending first: still unknown, and the
	// context's error is in it.
	proxy2, st2, _ := setup(t, false)
	if err := st2.SetIf(ctx, "k", 0, time.Now(), Entry("v1", 1)); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	proxy2.OnDrop(cancel)
	proxy2.DropNextReply()
	err = st2.SetIf(cctx, "k", 1, time.Now(), Entry("v2", 2))
	if !errors.Is(err, backend.ErrUnknownOutcome) || !errors.Is(err, context.Canceled) {
		t.Fatalf("lost answer, context cancelled: %v, want ErrUnknownOutcome and context.Canceled", err)
	}
}
