package sessions

import (
	"context"
	"fmt"
)

// maxCombineRounds bounds how many writes a holder makes for the Updates
// that queued while it wrote, before it lets go of the session's turn.
const maxCombineRounds = 4

// combine applies, before the holder of l lets go of the session's turn,
// the changes of the Updates that queued while it wrote, in further
// writes (up to maxCombineRounds), starting from the state s stored: a
// waiting request is then woken once, with its outcome, instead of first
// being handed the turn, and the turn is never held by a request that
// waits to be scheduled (flat combining). s itself is left as it is: the
// holder's request is answered with what its own write stored.
//
// A round starts only while the holder's request is alive (otherwise the
// waiters take their turns themselves), but once started it is not cut
// short when that request ends: the write holds other requests' changes.
func (m *Manager[T]) combine(ctx context.Context, l *keyLock, s *Session[T]) {
	var cs *Session[T] // the combining rounds' session, the state s stored
	for range maxCombineRounds {
		if ctx.Err() != nil {
			return
		}
		batch := m.updating.take(l, nil)
		if len(batch) == 0 {
			return
		}
		if cs == nil {
			var data T
			if err := m.decode(s.key, s.base.data, &data); err != nil {
				m.deliver(s, batch, fmt.Errorf("sessions: update session %s: decode the stored state: %w", s.Handle(), err))
				return
			}
			cs = new(Session[T])
			*cs = *s
			cs.Data = data // shares nothing with s.Data
		}
		m.commitBatch(context.WithoutCancel(ctx), nil, cs, l, batch)
		if cs.isNew {
			return
		}
	}
}
