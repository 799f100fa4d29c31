package sessions

import (
	"context"

	"fmt"
	"log/slog"
	"net/http"

	"github.com/google/uuid"
	"github.com/sessionx/sessions/backend"
)

// EventKind says what happened to a session.
type EventKind int

// The kinds of Event. Each fires once per cause.
const (
	// EventCreated: a new session was stored (its first write, or a Migrate
	// of a new session).
	EventCreated EventKind = iota + 1
	// EventMigrated: Migrate gave the session a new token.
	EventMigrated
	// EventRotated: periodic rotation (Config.RotateEvery) gave the
	// session a new token.
	EventRotated
	// EventDestroyed: Destroy ended the session (a logout).
	EventDestroyed
	// EventEnded: the session was ended by another party: DestroyAll,
	// DestroySession, or MaxSessionsPerOwner making room (Reason says
	// which).
	EventEnded
	// EventConflict: a save met a change of another request it could not
	// merge, and Config.OnConflict decided (Reason names the field).
	EventConflict
	// EventSuspicious: a request looks like an attack on the session
	// (Reason says why: a binding mismatch, two live sessions in one
	// request's cookies).
	EventSuspicious
	// EventExpired: the store removed the session at its deadline. Only
	// stores that can tell report it: the memory store's sweeper does (see
	// backend.ExpiryNotifier); Redis does not (its keyspace notifications
	// are not delivered reliably), nor do the SQL stores' cleanups.
	EventExpired
)

// String returns the kind's name, as in log records.
func (k EventKind) String() string {
	switch k {
	case EventCreated:
		return "created"
	case EventMigrated:
		return "migrated"
	case EventRotated:
		return "rotated"
	case EventDestroyed:
		return "destroyed"
	case EventEnded:
		return "ended"
	case EventConflict:
		return "conflict"
	case EventSuspicious:
		return "suspicious"
	case EventExpired:
		return "expired"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is what Config.OnEvent is told. It names the session by its
// handle, never by its token.
type Event struct {
	Kind   EventKind
	Handle string
	// Reason says more, for EventEnded, EventConflict and EventSuspicious.
	Reason string
	// Request is the request that caused the event, or nil (DestroyAll
	// from a background job, an expiry).
	Request *http.Request
}

// LogEvents returns an event hook that logs to logger: suspicious
// requests at Warn, the rest at Debug. It is the default Config.OnEvent
// (with Config.Logger); call it from a hook of your own to keep the logs.
func LogEvents(logger *slog.Logger) func(context.Context, Event) {
	return func(ctx context.Context, ev Event) {
		level := slog.LevelDebug
		if ev.Kind == EventSuspicious {
			level = slog.LevelWarn
		}
		if !logger.Enabled(ctx, level) {
			return
		}
		attrs := []slog.Attr{slog.String("session", ev.Handle)}
		if ev.Reason != "" {
			attrs = append(attrs, slog.String("reason", ev.Reason))
		}
		if r := ev.Request; r != nil && ev.Kind == EventSuspicious {
			attrs = append(attrs, slog.String("remote", r.RemoteAddr), slog.String("method", r.Method), slog.String("path", r.URL.Path))
		}
		logger.LogAttrs(ctx, level, "sessions: "+ev.Kind.String(), attrs...)
	}
}

// event tells Config.OnEvent.
func (m *Manager[T]) event(ctx context.Context, r *http.Request, kind EventKind, handle, reason string) {
	m.cfg.OnEvent(ctx, Event{Kind: kind, Handle: handle, Reason: reason, Request: r})
}

// expired is told by the store of an entry it removed at its deadline:
// OnEvent hears EventExpired with the session's handle, read from the
// readable part of what was stored (no token is needed). Forward records
// and bytes that are no session of this library are passed over.
func (m *Manager[T]) expired(_ string, e backend.Entry) {
	if isForward(e.Value) {
		return
	}
	env, err := decodeEnvelope(e.Value)
	if err != nil {
		return
	}
	m.event(context.Background(), nil, EventExpired, uuid.UUID(env.handle).String(), "")
}
