// Package redis is a session store on Redis through go-redis v9: one Redis,
// a Sentinel-managed primary, or a Redis Cluster. Many application servers
// pointed at the same Redis share their sessions.
//
// Construct it around a client the application already has; the store never
// opens connections of its own:
//
//	client := goredis.NewUniversalClient(&goredis.UniversalOptions{Addrs: []string{"127.0.0.1:6379"}})
//	store, err := redis.New(ctx, client, redis.Options{Prefix: "myapp:session:"})
//	mgr, err := sessions.New[Visit](sessions.Config{Store: store})
//
// # What is stored
//
// Each session is one Redis hash under Prefix + key, where key is the
// SHA-256 of the session token (never the token itself), with the fields
//
//	d  the session's bytes (the core's envelope around the encoded data)
//	v  its version, counted up by every write
//	e  its idle deadline, Unix milliseconds
//	l  its absolute deadline, Unix milliseconds (0: none)
//	i  the session's own idle timeout in milliseconds (0: none), by which
//	   a load slides the deadline (see backend.Entry.Idle)
//	w1..w4  random ids of the last four writes, so that a write sent again
//	        after a lost reply is recognised (see Options.ResolveWithin)
//
// and a TTL set with PEXPIREAT to the idle deadline, which a touch never moves
// past the absolute deadline: Redis forgets an idle or ended session by
// itself, no sweeper needed.
//
// The TTL runs on Redis's clock. The operations that take the caller's now
// (Touch, SetIf, Replace, GetTouch) also compare e with it, inside their
// script: a hash whose e is not after now counts as missing even while its
// TTL keeps it (Touch, GetTouch, SetIf with a version and Replace from it
// answer backend.ErrNotFound and write nothing; SetIf with version 0 and
// Replace onto it write over it). So an application clock ahead of Redis's
// may shorten a session, never extend or revive one. Get, which takes no
// now, goes by the TTL alone.
//
// The owner index (backend.Indexer) is one sorted set per owner, under
// Prefix + "owner:" + the hex SHA-256 of the owner, whose members are session
// keys (without Prefix) scored by their absolute deadline in Unix
// milliseconds. Each AddOwned drops the members whose deadline has passed and
// sets the set's TTL (PEXPIREAT) to its latest deadline, so the set vanishes
// with its last session.
//
// # Round trips
//
// Every operation is one Lua script, so one command and one round trip:
// loading a session and, when due, sliding its idle deadline (GetTouch);
// saving a changed session, only if its version is still the one loaded
// (SetIf); migrating it (Replace); recording a session for its owner
// (AddOwned); ending it (Delete); forgetting it for its owner
// (RemoveOwned). Owned is one plain ZRANGEBYSCORE. A load whose refresh is
// not due writes nothing.
//
// # Migrate and Cluster
//
// On one Redis or a Sentinel-managed primary, Replace checks the old key's
// version, deletes it and writes the new key in one script: no moment has
// both keys or neither. On a Cluster (and a Ring) the two keys live in
// different hash slots, which one script cannot touch: Replace then writes
// the new key first (only if no live entry is there), then deletes the old
// key only if its version is still the one loaded, and removes the new key
// again if that check fails (backend.ErrConflict when the old key holds
// another version, backend.ErrNotFound when it is gone). For a moment both
// tokens find the session; never neither.
//
// # Faults
//
// A write whose answer is lost (the connection broke, Redis hangs, the
// context ended while the answer was awaited) may or may not have been
// applied. The store never reports such a write as failed:
//
//   - Go-redis does not resend the store's writes by itself (they are
//     marked Cmder.NoRetry); the store does, knowing which errors prove
//     that Redis did not apply a write (an error answer from Redis, no
//     connection, a failed send) and which leave it open.
//   - Every write carries a random write id (fields w1..w4), so a copy of
//     a write that landed changes nothing and reports success, and a
//     not-after time: a copy that reaches Redis later is refused, not
//     applied, and so is every copy after it. The scripts compare it with
//     Redis's own clock (TIME), after checking the write id: a copy of a
//     write that landed reports success even when it comes late.
//   - An open outcome is settled by sending the write again until Redis
//     answers it, up to the not-after time. A write Redis has not answered
//     by then is reported with an error wrapping backend.ErrUnknownOutcome
//     (the core answers 504); one Redis refused as late, with a plain error
//     (nothing was stored).
//
// The not-after time is the context's deadline, or Options.ResolveWithin
// after the write is first sent, whichever comes first. It is given to
// Redis in Redis's clock: the store reads Redis's clock (TIME on every
// primary) when it is made and every 30 s, and counts from there on this
// process's monotonic clock. Skew between the application's and Redis's
// clocks thus plays no part; the bound errs early by at most the round
// trip of that reading (microseconds on a LAN), and a step of Redis's
// clock shifts it by the step until the next reading (on a Cluster the
// earliest primary's clock is used). So after the request's deadline, or
// once the store gave up, nothing of a write answered "failed" or
// "unknown" can still land, and what a client then reads is final.
//
// On a Cluster, go-redis reloads its map of slots to nodes only on MOVED
// and ASK answers, which a dead node never gives, and every
// ClusterStateReloadInterval (60 s by default): after a failover it keeps
// sending the dead primary's slots to it. The store asks a ClusterClient to
// reload the map (ReloadState, at most every 250 ms) whenever a command
// fails without an answer or with CLUSTERDOWN, so that requests succeed
// again within moments of the cluster being OK.
//
// # Replicas and failover
//
// Redis replicates asynchronously: a primary answers a write before its
// replicas have it. When a replica is promoted, the old primary's writes
// that had not reached it are lost, and so are the writes the old primary
// still takes after the promotion: after an operator's SENTINEL FAILOVER
// it keeps running, and go-redis keeps writing to it until the sentinels
// announce the new primary, up to about a second later; they are undone
// when it becomes the new primary's replica. The README gives the
// figures. Two remedies:
//
//   - min-replicas-to-write N (a server setting): a primary with fewer
//     than N replicas refuses writes (NOREPLICAS: a plain failure,
//     nothing stored; a slide of the idle deadline is skipped, as at
//     maxmemory). The old primary refuses them as soon as its replica has
//     left it to be promoted. It costs nothing per request, but does not
//     cover a primary cut off from its replicas without knowing it, for
//     up to min-replicas-max-lag.
//   - Options.WaitReplicas: a write is answered as stored only once that
//     many replicas acknowledged it (WAIT), otherwise with an error
//     wrapping backend.ErrUnknownOutcome. Set it to the number of replicas
//     of each primary: a write every replica has survives a failover to
//     any of them. Fewer is not enough: a replica that has not yet
//     followed the new primary acknowledges the old primary's writes, then
//     follows the new primary and drops them. A primary with fewer
//     replicas than that (one is down, or resyncing after a failover)
//     answers every write unknown, after WaitTimeout.
//
// A node that is a replica never answers for the store: a client still
// connected to a primary that a failover demoted gets Redis's READONLY
// error for every write and load, never "missing", "another version" or
// "too late" read from the replica's lagging copy (which could report a
// write failed though its first copy is on the new primary, or a live
// session gone). TestWriteAnsweredByReplicaIsRefused.
//
// Memory: a load whose idle-deadline refresh is due, on a Redis at
// maxmemory with noeviction, is served without the refresh (GetTouch
// returns the entry unmoved, Touch reports success): the next load tries
// again. Writes of sessions are refused with Redis's OOM error and store
// nothing. Ending sessions (Delete, RemoveOwned) and reading need no
// memory. With noeviction the owner index is exact. Under an evicting
// policy, Redis may evict sessions (a visitor then starts a new session)
// and owner sets (they carry TTLs): a session whose owner set was evicted
// is no longer listed by Owned, so Manager.Sessions and DestroyAll miss
// it; it still ends at its idle deadline. Use noeviction where "log out
// everywhere" must be exact.
package redis

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sessionx/sessions/backend"
)

// Compile-time checks of the capabilities Store implements.
var (
	_ backend.Store       = (*Store)(nil)
	_ backend.Conditional = (*Store)(nil)
	_ backend.Replacer    = (*Store)(nil)
	_ backend.GetToucher  = (*Store)(nil)
	_ backend.Indexer     = (*Store)(nil)
)

// DefaultPrefix is the key prefix when Options.Prefix is empty.
const DefaultPrefix = "session:"

// Options configures a Store. The zero Options selects every default.
type Options struct {
	// Prefix is put before every key the store writes, so that several
	// applications (or several Managers) can share one Redis. Default
	// DefaultPrefix ("session:"). On a Cluster, a prefix holding a hash tag
	// ({...}) would put every session in one slot: avoid it.
	Prefix string

	// ResolveWithin bounds how long a write may take, and how long the
	// store tries to learn the outcome of a write whose answer was lost.
	//
	// Every write carries a not-after time: the context's deadline, or
	// ResolveWithin after it is first sent, whichever comes first. Redis
	// refuses a copy of the write that reaches it later (see the package
	// documentation, Faults). A write's outcome is unknown when it was sent
	// but no answer came (the connection broke, Redis hangs, the context
	// ended): it may or may not have been applied. Every write of the
	// store can be sent again safely (a copy of a write that landed
	// changes nothing and reports success), so the store sends it again
	// until Redis answers, up to the not-after time, and reports what
	// really happened; if Redis never answers in time, an error wrapping
	// backend.ErrUnknownOutcome. Default DefaultResolveWithin (5s); a
	// negative value sends nothing again (the not-after bound is then
	// DefaultResolveWithin).
	ResolveWithin time.Duration

	// WaitReplicas, when above zero, makes every write wait until that
	// many replicas have acknowledged it, so that a write answered as
	// stored survives a failover. Redis replicates asynchronously: by
	// default a primary that fails over loses the writes it acknowledged
	// but had not yet passed on (see the package documentation, Replicas
	// and failover). Set it to the number of replicas of each primary:
	// with fewer, a failover can still lose writes a replica acknowledged
	// (the README measures it), and a primary that has fewer replicas
	// than WaitReplicas (one is down, or resyncing after a failover)
	// answers every write unknown, after WaitTimeout.
	//
	// After a write's script, on the same connection, the store sends
	// WAIT WaitReplicas WaitTimeout (in one round trip with the script,
	// as a pipeline; on a Cluster to the key's primary). A write that
	// fewer replicas acknowledged in time is on the primary all the same:
	// it is reported with an error wrapping backend.ErrUnknownOutcome
	// (the core answers 504), never as a plain failure. So is a write
	// whose answer came from a copy sent again (see ResolveWithin): the
	// copy's WAIT does not cover the first copy. Reads, and the slide of
	// the idle deadline that a read may make, do not wait.
	//
	// WaitReplicas needs a *goredis.Client (one node, or a
	// Sentinel-managed primary: NewFailoverClient) or a
	// *goredis.ClusterClient; New refuses it with another client. On a
	// Cluster the write and its WAIT go through the key's node client
	// (ClusterClient.MasterForKey), so hooks added to the ClusterClient
	// with AddHook do not see them; hooks added with OnNewNode do.
	// Default 0: writes do not wait.
	WaitReplicas int

	// WaitTimeout bounds the wait for the replicas of one write (never
	// past the context's deadline). Default DefaultWaitTimeout. It must
	// be shorter than the client's ReadTimeout (go-redis's default: 3 s),
	// which bounds the wait for the answer: New refuses it otherwise.
	WaitTimeout time.Duration
}

// DefaultResolveWithin is the default of Options.ResolveWithin.
const DefaultResolveWithin = 5 * time.Second

// DefaultWaitTimeout is the default of Options.WaitTimeout.
const DefaultWaitTimeout = 500 * time.Millisecond

// Store is a backend.Store on Redis. It is safe for concurrent use. It does
// not own its client: closing the client is the application's business.
type Store struct {
	client  goredis.UniversalClient
	cluster *goredis.ClusterClient // client, if it is one
	prefix  string
	resolve time.Duration
	// atomicMove is true when both keys of a Replace can be handled by one
	// script: on a single node or a Sentinel-managed primary.
	atomicMove bool

	// waitReplicas and waitTimeout are Options.WaitReplicas and
	// WaitTimeout; waitReplicas 0: writes do not wait.
	waitReplicas int
	waitTimeout  time.Duration

	clock      redisClock
	lastReload atomic.Int64 // when noteFailure last asked the cluster to reload, Unix ns
}

// New returns a Store on client. It pings Redis, loads the store's scripts
// and reads Redis's clock, so that an unreachable Redis is reported here,
// as an error that says so, rather than on the first request. ctx bounds
// that check.
func New(ctx context.Context, client goredis.UniversalClient, opts Options) (*Store, error) {
	if client == nil {
		return nil, errors.New("sessions: redis store: nil client")
	}
	s := &Store{client: client, prefix: opts.Prefix, resolve: opts.ResolveWithin}
	if s.prefix == "" {
		s.prefix = DefaultPrefix
	}
	if s.resolve == 0 {
		s.resolve = DefaultResolveWithin
	}
	switch c := client.(type) {
	case *goredis.ClusterClient:
		s.cluster = c
	case *goredis.Ring:
	default:
		s.atomicMove = true
	}
	if err := s.setWait(opts); err != nil {
		return nil, err
	}
	if err := s.ping(ctx); err != nil {
		return nil, fmt.Errorf("sessions: redis store: cannot reach Redis: %w", err)
	}
	scripts := oneNodeScripts
	if s.atomicMove {
		scripts = append(scripts, replaceScript) // two keys: one node only
	}
	for _, sc := range scripts {
		if err := s.loadScript(ctx, sc); err != nil {
			return nil, fmt.Errorf("sessions: redis store: loading scripts: %w", err)
		}
	}
	if err := s.readClock(ctx); err != nil {
		return nil, fmt.Errorf("sessions: redis store: reading Redis's clock (TIME): %w", err)
	}
	return s, nil
}

// ping checks every primary (every shard on a Cluster).
func (s *Store) ping(ctx context.Context) error {
	if s.cluster != nil {
		return s.cluster.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
			return c.Ping(ctx).Err()
		})
	}
	return s.client.Ping(ctx).Err()
}

// loadScript loads sc on every primary, so that the first request already
// runs it by hash. eval falls back to EVAL when a restarted Redis, or a
// replica promoted since, does not know it.
func (s *Store) loadScript(ctx context.Context, sc *script) error {
	if s.cluster != nil {
		return s.cluster.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
			return c.ScriptLoad(ctx, sc.src).Err()
		})
	}
	return s.client.ScriptLoad(ctx, sc.src).Err()
}

// ms returns t in Unix milliseconds; the zero time is 0.
func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.UnixMilli(n)
}

// wrap adds the store's context to err.
func wrap(op string, err error) error {
	return fmt.Errorf("sessions: redis %s: %w", op, err)
}

// Get returns the live entry under key, or backend.ErrNotFound. Live is
// judged by Redis's clock alone: the key exists.
func (s *Store) Get(ctx context.Context, key string) (backend.Entry, error) {
	e, _, err := s.getTouch(ctx, "get", key, 0, 0, 0)
	return e, err
}

// GetTouch returns the live entry under key and, in the same script, moves
// its deadline to expires (capped at its Limit) when it is before ifBefore.
// An entry whose deadline is not after now (the caller's clock) is
// backend.ErrNotFound and is left alone, even while Redis keeps it.
//
// When Redis refuses the move for lack of memory (maxmemory with
// noeviction) or of replicas (min-replicas-to-write), or the script runs
// after the context's deadline, GetTouch returns the entry with its
// deadline where it was and touched false: the session is served, and the
// next load tries again.
func (s *Store) GetTouch(ctx context.Context, key string, now, ifBefore, expires time.Time) (backend.Entry, bool, error) {
	return s.getTouch(ctx, "get", key, ms(now), ms(ifBefore), ms(expires))
}

func (s *Store) getTouch(ctx context.Context, op, key string, now, ifBefore, expires int64) (backend.Entry, bool, error) {
	if err := ctx.Err(); err != nil {
		return backend.Entry{}, false, wrap(op, err)
	}
	var na int64
	if ifBefore > 0 {
		na, _ = s.notAfter(ctx)
	}
	res, err := s.eval(ctx, getTouchScript, false, []string{s.prefix + key}, now, ifBefore, expires, na).Slice()
	if errors.Is(err, goredis.Nil) {
		return backend.Entry{}, false, backend.ErrNotFound
	}
	if err != nil {
		return backend.Entry{}, false, wrap(op, err)
	}
	e, touched, err := parseEntry(res)
	if err != nil {
		return backend.Entry{}, false, wrap(op, err)
	}
	return e, touched, nil
}

// parseEntry reads the reply {d, v, e, l, touched, i} of getTouchScript.
func parseEntry(res []any) (backend.Entry, bool, error) {
	if len(res) != 6 {
		return backend.Entry{}, false, fmt.Errorf("unexpected reply of %d elements", len(res))
	}
	idle, ok := res[5].(string)
	if !ok {
		return backend.Entry{}, false, fmt.Errorf("unexpected reply %T for the idle timeout", res[5])
	}
	idleMS, err := strconv.ParseInt(idle, 10, 64)
	if err != nil || idleMS < 0 {
		return backend.Entry{}, false, fmt.Errorf("stored idle timeout %q: %v", idle, err)
	}
	d, ok1 := res[0].(string)
	v, ok2 := res[1].(string)
	exp, ok3 := res[2].(int64)
	l, ok4 := res[3].(string)
	touched, ok5 := res[4].(int64)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 {
		return backend.Entry{}, false, fmt.Errorf("unexpected reply %T %T %T %T %T", res[0], res[1], res[2], res[3], res[4])
	}
	version, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return backend.Entry{}, false, fmt.Errorf("stored version %q: %w", v, err)
	}
	limit, err := strconv.ParseInt(l, 10, 64)
	if err != nil {
		return backend.Entry{}, false, fmt.Errorf("stored limit %q: %w", l, err)
	}
	return backend.Entry{
		Value:   []byte(d),
		Expires: fromMS(exp),
		Limit:   fromMS(limit),
		Version: version,
		Idle:    time.Duration(idleMS) * time.Millisecond,
	}, touched == 1, nil
}

// idleMS returns the script argument for e's own idle timeout, in
// milliseconds: 0 for none.
func idleMS(e backend.Entry) int64 {
	return e.Idle.Milliseconds()
}

// entryArgs returns the script arguments value, version, expires, limit and
// a fresh write id, which tells a copy of this write from another writer's
// write of the same version.
func entryArgs(e backend.Entry) []any {
	var id [12]byte
	_, _ = rand.Read(id[:])
	return []any{e.Value, e.Version, ms(e.Expires), ms(e.Limit), hex.EncodeToString(id[:])}
}

// Set stores e under key. A past or zero Expires removes the key: PEXPIREAT
// with a past time deletes it.
func (s *Store) Set(ctx context.Context, key string, e backend.Entry) error {
	if err := ctx.Err(); err != nil {
		return wrap("set", err)
	}
	na, until := s.notAfter(ctx)
	args := append(entryArgs(e), na, idleMS(e))
	n, _, err := s.write(ctx, until, setScript, []string{s.prefix + key}, args)
	if err == nil {
		err = writeResult(n)
	}
	if err != nil {
		return wrap("set", err)
	}
	return nil
}

// SetIf stores e under key only if the live entry's version is old (0: no
// live entry), live judged by Redis's clock (the key exists) and at now (its
// deadline is after now). It returns backend.ErrNotFound when old != 0 and
// there is no live entry, backend.ErrConflict when the live entry has
// another version (or, with old == 0, exists).
func (s *Store) SetIf(ctx context.Context, key string, old uint64, now time.Time, e backend.Entry) error {
	if err := ctx.Err(); err != nil {
		return wrap("set", err)
	}
	na, until := s.notAfter(ctx)
	args := append(append([]any{strconv.FormatUint(old, 10), ms(now)}, entryArgs(e)...), na, idleMS(e))
	n, _, err := s.write(ctx, until, setIfScript, []string{s.prefix + key}, args)
	if err != nil {
		return wrap("set", err)
	}
	return writeResult(n)
}

// writeResult maps the answer of a conditional write script to its error.
func writeResult(n int64) error {
	switch n {
	case replyDone:
		return nil
	case replyConflict:
		return backend.ErrConflict
	case replyMissing:
		return backend.ErrNotFound
	}
	return fmt.Errorf("sessions: redis: unexpected reply %d from a write script", n)
}

// Touch moves the deadline of the entry under key to expires, capped at its
// Limit. An entry whose deadline is not after now (the caller's clock) is
// backend.ErrNotFound and is left alone, even while Redis keeps it.
//
// When Redis refuses the move for lack of memory (maxmemory with
// noeviction) or of replicas (min-replicas-to-write), Touch leaves the
// deadline where it was and reports success: a refresh is worth trying
// again on the next request, not failing this one for.
func (s *Store) Touch(ctx context.Context, key string, now, expires time.Time) error {
	if err := ctx.Err(); err != nil {
		return wrap("touch", err)
	}
	na, until := s.notAfter(ctx)
	n, _, err := s.write(ctx, until, touchScript, []string{s.prefix + key}, []any{ms(now), ms(expires), na})
	switch {
	case err != nil:
		return wrap("touch", err)
	case n == 0:
		return backend.ErrNotFound
	}
	return nil
}

// Delete removes the entry under key.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return wrap("delete", err)
	}
	na, until := s.notAfter(ctx)
	_, _, err := s.write(ctx, until, deleteScript, []string{s.prefix + key}, []any{na})
	if err != nil {
		return wrap("delete", err)
	}
	return nil
}

// Replace moves the entry under oldKey, which must hold version old, to
// newKey, which must hold no live entry, live judged by Redis's clock and at
// now (the caller's clock): in one script on a single node or Sentinel, in
// two steps on a Cluster (see the package documentation). It returns
// backend.ErrNotFound when oldKey has no live entry, backend.ErrConflict
// when it holds another version or newKey is taken.
func (s *Store) Replace(ctx context.Context, oldKey string, old uint64, newKey string, now time.Time, e backend.Entry) error {
	if err := ctx.Err(); err != nil {
		return wrap("replace", err)
	}
	oldArg, nowArg := strconv.FormatUint(old, 10), ms(now)
	if s.atomicMove {
		na, until := s.notAfter(ctx)
		args := append(append([]any{oldArg, nowArg}, entryArgs(e)...), na, idleMS(e))
		n, _, err := s.write(ctx, until, replaceScript, []string{s.prefix + oldKey, s.prefix + newKey}, args)
		if err != nil {
			return wrap("replace", err)
		}
		return writeResult(n)
	}
	if oldKey == newKey {
		// A move onto itself: taken if the key is live, else gone.
		if _, _, err := s.getTouch(ctx, "replace", oldKey, nowArg, 0, 0); err != nil {
			return err
		}
		return backend.ErrConflict
	}
	// Cluster: new key first, then the old one, so that the session is never
	// nowhere.
	if err := s.SetIf(ctx, newKey, 0, now, e); err != nil {
		return err
	}
	na, until := s.notAfter(ctx)
	n, replayed, err := s.write(ctx, until, deleteIfScript, []string{s.prefix + oldKey}, []any{oldArg, nowArg, na})
	var cause error
	switch {
	case errors.Is(err, backend.ErrUnknownOutcome):
		// Unknown whether the old key is gone: keep the new one, so that
		// the session is never nowhere.
		return wrap("replace", err)
	case err != nil:
		cause = err // the old key was not deleted
	case n == replyMissing && replayed && s.waitReplicas > 0:
		// Deleted by the try whose answer was lost, whose replication
		// no WAIT covered.
		return wrap("replace", unknownNotReplicated(errCopyNotCovered))
	case n == replyDone || (n == replyMissing && replayed):
		return nil // deleted now, or by the try whose answer was lost
	default:
		cause = writeResult(n) // the old session vanished (-1) or changed (0)
	}
	// Undo: the move did not happen.
	if err := s.client.Del(ctx, s.prefix+newKey).Err(); err != nil {
		return wrap("replace", fmt.Errorf("%w (and removing the new key failed: %w)", cause, err))
	}
	if errors.Is(cause, backend.ErrConflict) || errors.Is(cause, backend.ErrNotFound) {
		return cause
	}
	return wrap("replace", cause)
}

// ownerKey returns the Redis key of owner's set: owners may hold any bytes,
// so the key names them by their SHA-256.
func (s *Store) ownerKey(owner string) string {
	sum := sha256.Sum256([]byte(owner))
	return s.prefix + "owner:" + hex.EncodeToString(sum[:])
}

// AddOwned records key in owner's set until limit, in one script that also
// drops the set's dead members and moves the set's TTL to its latest limit.
// A limit not in the future forgets key instead. Whether a limit has passed
// is judged by this process's clock (as by Owned); the set's TTL runs on
// Redis's.
func (s *Store) AddOwned(ctx context.Context, owner, key string, limit time.Time) error {
	if err := ctx.Err(); err != nil {
		return wrap("add owned", err)
	}
	k, now, lim := s.ownerKey(owner), time.Now().UnixMilli(), ms(limit)
	na, until := s.notAfter(ctx)
	_, _, err := s.write(ctx, until, addOwnedScript, []string{k}, []any{now, lim, key, na})
	if err != nil {
		return wrap("add owned", err)
	}
	return nil
}

// RemoveOwned removes keys from owner's set; Redis deletes the set when it
// becomes empty.
func (s *Store) RemoveOwned(ctx context.Context, owner string, keys ...string) error {
	if err := ctx.Err(); err != nil {
		return wrap("remove owned", err)
	}
	if len(keys) == 0 {
		return nil
	}
	k := s.ownerKey(owner)
	na, until := s.notAfter(ctx)
	args := make([]any, 0, 1+len(keys))
	args = append(args, na)
	for _, key := range keys {
		args = append(args, key)
	}
	_, _, err := s.write(ctx, until, removeOwnedScript, []string{k}, args)
	if err != nil {
		return wrap("remove owned", err)
	}
	return nil
}

// Owned returns the members of owner's set whose limit is in the future: one
// read-only ZRANGEBYSCORE.
func (s *Store) Owned(ctx context.Context, owner string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, wrap("owned", err)
	}
	now := time.Now().UnixMilli()
	keys, err := s.client.ZRangeByScore(ctx, s.ownerKey(owner), &goredis.ZRangeBy{
		Min: "(" + strconv.FormatInt(now, 10),
		Max: "+inf",
	}).Result()
	if err != nil {
		s.noteFailure(err)
		return nil, wrap("owned", err)
	}
	return keys, nil
}
