// Package sessionstest holds session-level conformance suites: they run the
// sessions core (a Manager, its middleware, Update, Migrate, Destroy) against
// any backend.Store and check the guarantees that matter most to
// applications, in the manner of testing/slogtest. Package
// backend/storetest checks a store's byte-level contract; these suites check
// what the core builds on it.
//
// A store written outside this module proves itself with an ordinary test:
//
//	func TestSessionLevel(t *testing.T) {
//		newStore := func(t *testing.T) backend.Store {
//			s, err := mystore.Open(mystore.Options{Addr: addr})
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		}
//		sessionstest.RunConcurrency(t, newStore, sessionstest.Options{})
//		sessionstest.RunSecurity(t, newStore)
//		sessionstest.RunWrites(t, newStore)
//	}
//
// The suites:
//
//   - RunConcurrency: no lost increments under Update (32 goroutines x 200
//     on two Managers end at exactly 6,400), one winner between racing
//     saves, and no destroyed or migrated session written back.
//   - RunSecurity: replay after logout and after Migrate, the rotation grace
//     window, per-owner lists and DestroyAll.
//   - RunRestart: the store's server stopped for two seconds under load
//     and started again: 5xx during the outage, no request past its
//     deadline, nothing lost or crossed, recovery without restarting the
//     application. It takes a store and the server's stop and start
//     functions rather than newStore.
//   - RunWrites: every change of a session is all or nothing (a failed
//     login stores nothing of the user under any token), a session that
//     vanished is gone (ErrGone, 401), not changed, and a core clock ahead
//     of the store's never revives a session.
//
// Each suite calls newStore once per case, inside the case's subtest, so
// t.Cleanup registered there runs when the case ends; cases run one after
// another and may share one server (each writes only sessions of its own).
// A case that needs an optional capability (backend.Conditional,
// backend.Indexer, ...) is skipped for a store that lacks it, and the skip
// names the capability.
package sessionstest
