package sessions

import "net/http"

// Flash holds messages left for a later request of the session, each shown
// once, as after a redirect ("Saved.", "You have been logged out."). Put a
// Flash of your message type in T, and use AddFlash and TakeFlashes, which
// change it with Update:
//
//	type Data struct {
//		User   string
//		Notice sessions.Flash[string]
//	}
//
//	sessions.AddFlash(mgr, w, r, s, func(d *Data) *sessions.Flash[string] { return &d.Notice }, "Saved.")
//	msgs, err := sessions.TakeFlashes(mgr, w, r, s, func(d *Data) *sessions.Flash[string] { return &d.Notice })
//
// Safe under concurrent requests: TakeFlashes removes the messages with a
// conditional write, so when several requests of the session take at once,
// each message goes to exactly one of them (never shown twice), and a
// parallel request's plain save, which does not touch the Flash, merges
// with it (never lost). Changing a Flash with a plain write instead, while
// another request takes from it, is a conflict.
type Flash[M any] struct {
	// Items are the messages waiting, oldest first. Exported so that the
	// codec stores them; change them through AddFlash and TakeFlashes.
	Items []M
}

// AddFlash appends msg to the Flash that field picks out of s.Data and saves
// the session at once (see Manager.Update, whose errors it returns). On a
// new session it stores the session, so that the message waits for the
// visitor's next request.
func AddFlash[T, M any](mgr *Manager[T], w http.ResponseWriter, r *http.Request, s *Session[T], field func(*T) *Flash[M], msg M) error {
	return mgr.Update(w, r, s, func(d *T) error {
		f := field(d)
		f.Items = append(f.Items, msg)
		return nil
	})
}

// TakeFlashes removes and returns the messages waiting in the Flash that
// field picks out of s.Data, saving the session at once (see
// Manager.Update); none waiting is an empty result and no write. A message
// is returned to one request only. On an error nothing was taken: the
// messages stay for a later request.
func TakeFlashes[T, M any](mgr *Manager[T], w http.ResponseWriter, r *http.Request, s *Session[T], field func(*T) *Flash[M]) ([]M, error) {
	var taken []M
	err := mgr.Update(w, r, s, func(d *T) error {
		f := field(d)
		taken, f.Items = f.Items, nil
		return nil
	})
	if err != nil {
		return nil, err
	}
	return taken, nil
}
