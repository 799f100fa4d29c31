package mysql_test

import (
	"testing"
	"time"

	"github.com/sessionx/sessions/backend"
	"github.com/sessionx/sessions/backend/mysql"
)

// TestGetTouchSlidesByOwnIdle: GetTouch slides an entry with an idle
// timeout of its own as backend.Slide computes (by its Idle, with the
// caller's slack), in the same call, never past its Limit, and keeps
// Idle across every write.
func TestGetTouchSlidesByOwnIdle(t *testing.T) {
	st := newStore(t, sharedDB(t), mysql.Options{CleanupInterval: -1})
	ctx := t.Context()
	now := time.Now().Truncate(time.Microsecond)
	// The caller's defaults: 30 min idle, a refresh due 3 min after a write.
	ifBefore, expires := now.Add(27*time.Minute), now.Add(30*time.Minute)
	for i, tc := range []struct {
		name        string
		e           backend.Entry
		wantTouched bool
		want        time.Time // Expires after GetTouch
	}{
		{"longer idle, due", backend.Entry{Expires: now.Add(10 * time.Minute), Idle: 2 * time.Hour}, true, now.Add(2 * time.Hour)},
		{"longer idle, within the slack", backend.Entry{Expires: now.Add(2*time.Hour - time.Minute), Idle: 2 * time.Hour}, false, now.Add(2*time.Hour - time.Minute)},
		{"shorter idle, due", backend.Entry{Expires: now.Add(time.Minute), Idle: 5 * time.Minute}, true, now.Add(5 * time.Minute)},
		{"shorter idle, within its slack (idle/10)", backend.Entry{Expires: now.Add(5*time.Minute - 20*time.Second), Idle: 5 * time.Minute}, false, now.Add(5*time.Minute - 20*time.Second)},
		{"own idle, capped at the limit", backend.Entry{Expires: now.Add(10 * time.Minute), Limit: now.Add(time.Hour), Idle: 2 * time.Hour}, true, now.Add(time.Hour)},
		{"no idle of its own: the caller's", backend.Entry{Expires: now.Add(10 * time.Minute)}, true, expires},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := "idle" + string(rune('a'+i))
			tc.e.Value, tc.e.Version = []byte("v"), 1
			if err := st.SetIf(ctx, key, 0, now, tc.e); err != nil {
				t.Fatal(err)
			}
			// The same decision as backend.Slide's.
			ib, ex := backend.Slide(tc.e, now, ifBefore, expires)
			if slides := tc.e.Expires.Before(ib) && ex.After(tc.e.Expires); slides != tc.wantTouched {
				t.Fatalf("the case disagrees with backend.Slide (%v, %v)", ib, ex)
			}
			got, touched, err := st.GetTouch(ctx, key, now, ifBefore, expires)
			if err != nil {
				t.Fatal(err)
			}
			if touched != tc.wantTouched || !got.Expires.Equal(tc.want) || got.Idle != tc.e.Idle {
				t.Fatalf("GetTouch = touched %v, Expires %v, Idle %v; want %v, %v, %v", touched, got.Expires, got.Idle, tc.wantTouched, tc.want, tc.e.Idle)
			}
			if e, err := st.Get(ctx, key); err != nil || !e.Expires.Equal(tc.want) || e.Idle != tc.e.Idle {
				t.Fatalf("Get after GetTouch = %+v, %v", e, err)
			}
		})
	}
	// Idle survives SetIf, Replace and Set.
	e := backend.Entry{Value: []byte("w"), Expires: now.Add(time.Hour), Version: 2, Idle: 90 * time.Minute}
	if err := st.SetIf(ctx, "idlea", 1, now, e); err != nil {
		t.Fatal(err)
	}
	e.Version = 3
	if err := st.Replace(ctx, "idlea", 2, "idle-moved", now, e); err != nil {
		t.Fatal(err)
	}
	e.Version, e.Idle = 4, 45*time.Minute
	if err := st.Set(ctx, "idle-set", e); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]time.Duration{"idle-moved": 90 * time.Minute, "idle-set": 45 * time.Minute} {
		if got, err := st.Get(ctx, key); err != nil || got.Idle != want {
			t.Errorf("Idle of %s = %v, %v; want %v", key, got.Idle, err, want)
		}
	}
}
