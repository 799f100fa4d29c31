package sessions

import (
	"net/http"
)

// Migrate gives the session a new token, keeping its Data, handle, creation
// time and deadlines, and sets the new cookie on w. The old token finds
// nothing from that moment on. Call it whenever the session's privilege
// changes, above all right after login, so that a token an attacker planted
// or saw before (session fixation) is worthless afterwards:
//
//	s.Data.User = u
//	if err := mgr.Migrate(w, r, s); err != nil {
//		http.Error(w, "login failed", http.StatusInternalServerError)
//		return
//	}
//
// On a new session Migrate stores it at once, even if its Data is the zero
// T. The current Data is written as part of the move, so Save has nothing
// left to write afterwards unless Data changes again.
//
// All or nothing. On stores that implement backend.Replacer the move is one
// atomic step; on others the new key is written first and the old one
// removed after, only if it still holds the version loaded, so for a moment
// both tokens work, never neither. When Migrate fails, the store holds the
// session exactly as before under its old token, no new token is sent, and s
// is put back to its stored state: the Data, owner and CSRF secret it had
// when it was loaded or last saved. So the login pattern above is safe as
// written: a failed login leaves nothing of the user in the session, and
// the middleware's commit has nothing to write (for a new visitor, no
// session and no cookie at all). Changes made before Migrate that should
// survive a failed login must be saved first.
//
// Errors: ErrConflict when another request changed the session since this
// one loaded it; ErrGone when it ended meanwhile (s is then a new session and
// w clears the cookie); ErrTooManySessions, ErrTooLarge and wrapped store
// errors as for Save.
func (m *Manager[T]) Migrate(w http.ResponseWriter, r *http.Request, s *Session[T]) error {
	data, err := m.encode(s)
	if err != nil {
		m.revert(s)
		return err
	}
	return m.write(r.Context(), w, s, stepMigrate, data, ConflictError)
}
