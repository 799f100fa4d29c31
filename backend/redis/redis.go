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
// (AddOwned). RemoveOwned and Owned are one plain command each. A load whose
// refresh is not due writes nothing.
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
package redis

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
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

	// ResolveWithin bounds how long a write whose outcome is unknown is
	// retried. A write's outcome is unknown when the connection broke after
	// the command was sent (Redis stopped, the network failed): it may or
	// may not have been applied. Every write of the store can be replayed
	// safely (a replay of a write that landed changes nothing and reports
	// success), so the store sends it again until Redis answers, for at most
	// this long and never past the context's deadline, and reports what
	// really happened rather than an error for a write that landed. Default
	// DefaultResolveWithin (5s); a negative value turns retries off.
	ResolveWithin time.Duration
}

// DefaultResolveWithin is the default of Options.ResolveWithin.
const DefaultResolveWithin = 5 * time.Second

// Store is a backend.Store on Redis. It is safe for concurrent use. It does
// not own its client: closing the client is the application's business.
type Store struct {
	client  goredis.UniversalClient
	prefix  string
	resolve time.Duration
	// atomicMove is true when both keys of a Replace can be handled by one
	// script: on a single node or a Sentinel-managed primary.
	atomicMove bool
}

// New returns a Store on client. It pings Redis and loads the store's
// scripts, so that an unreachable Redis is reported here, as an error that
// says so, rather than on the first request. ctx bounds that check.
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
	switch client.(type) {
	case *goredis.ClusterClient, *goredis.Ring:
		s.atomicMove = false
	default:
		s.atomicMove = true
	}
	if err := s.ping(ctx); err != nil {
		return nil, fmt.Errorf("sessions: redis store: cannot reach Redis: %w", err)
	}
	scripts := allScripts
	if s.atomicMove {
		scripts = append(scripts, replaceScript) // two keys: one node only
	}
	for _, sc := range scripts {
		if err := s.loadScript(ctx, sc); err != nil {
			return nil, fmt.Errorf("sessions: redis store: loading scripts: %w", err)
		}
	}
	return s, nil
}

// ping checks every primary (every shard on a Cluster).
func (s *Store) ping(ctx context.Context) error {
	if cc, ok := s.client.(*goredis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
			return c.Ping(ctx).Err()
		})
	}
	return s.client.Ping(ctx).Err()
}

// loadScript loads sc on every primary, so that the first request already
// runs it by hash. Script.Run falls back to EVAL when a restarted Redis has
// forgotten it.
func (s *Store) loadScript(ctx context.Context, sc *goredis.Script) error {
	if cc, ok := s.client.(*goredis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
			return sc.Load(ctx, c).Err()
		})
	}
	return sc.Load(ctx, s.client).Err()
}

// writeIDs is Lua shared by the write scripts: fields w1..w4 of a session
// hold the ids of its last four writes, newest first. seen reports whether
// id is among the ids r (as read by HMGET w1 w2 w3 w4) holds; shifted
// returns the HSET arguments that put id in front.
const writeIDs = `
local function seen(r, id)
	return r[1] == id or r[2] == id or r[3] == id or r[4] == id
end
local function shifted(r, id)
	return 'w1', id, 'w2', r[1] or '', 'w3', r[2] or '', 'w4', r[3] or ''
end
`

// Scripts. Times are Unix milliseconds; a stored hash always has d, v, e, l.
//
// now is the caller's clock (the core's): a hash whose e is not after now
// counts as missing, even while its TTL, which runs on Redis's clock, keeps
// it; scripts then write nothing. Writes answer 1 when done (or replayed),
// 0 on a conflict (another version is live, or a live key is in the way) and
// -1 when the live entry they need is missing.
var (
	// KEYS[1]; ARGV: now (0: Get, Redis's clock alone), ifBefore (0: never
	// touch), expires. Returns false (missing) or {d, v, e, l, touched}.
	getTouchScript = goredis.NewScript(`
local r = redis.call('HMGET', KEYS[1], 'd', 'v', 'e', 'l')
if not r[1] then return false end
local exp = tonumber(r[3])
local now = tonumber(ARGV[1])
if exp <= now then return false end
local touched = 0
local ifBefore = tonumber(ARGV[2])
if ifBefore > 0 and exp < ifBefore then
	local new = tonumber(ARGV[3])
	local lim = tonumber(r[4])
	if lim > 0 and new > lim then new = lim end
	if new ~= exp then
		if new <= now then
			redis.call('DEL', KEYS[1])
			return false
		end
		redis.call('HSET', KEYS[1], 'e', new)
		redis.call('PEXPIREAT', KEYS[1], new)
		if redis.call('EXISTS', KEYS[1]) == 0 then return false end
		exp = new
		touched = 1
	end
end
return {r[1], r[2], exp, r[4], touched}
`)

	// KEYS[1]; ARGV: value, version, expires, limit, write id.
	setScript = goredis.NewScript(writeIDs + `
local w = redis.call('HMGET', KEYS[1], 'w1', 'w2', 'w3', 'w4')
redis.call('HSET', KEYS[1], 'd', ARGV[1], 'v', ARGV[2], 'e', ARGV[3], 'l', ARGV[4], shifted(w, ARGV[5]))
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
return 1
`)

	// KEYS[1]; ARGV: old version (0: must not exist), now, value, version,
	// expires, limit, write id. Returns 1 when written, 0 on conflict (a live
	// entry of another version, or with old 0 any live entry), -1 when old is
	// not 0 and no live entry is stored. An expires not after now deletes
	// the key instead of writing it. Replaying a write that already landed
	// (its write id is among the last ones stored, even if other writes
	// followed it) returns 1 and changes nothing.
	setIfScript = goredis.NewScript(writeIDs + `
local r = redis.call('HMGET', KEYS[1], 'v', 'e', 'w1', 'w2', 'w3', 'w4')
local w = {r[3], r[4], r[5], r[6]}
if seen(w, ARGV[7]) then return 1 end
local now = tonumber(ARGV[2])
local cur = r[1]
if cur and tonumber(r[2]) <= now then cur = false end
if ARGV[1] == '0' then
	if cur then return 0 end
elseif not cur then
	return -1
elseif cur ~= ARGV[1] then
	return 0
end
if tonumber(ARGV[5]) <= now then
	redis.call('DEL', KEYS[1])
	return 1
end
redis.call('HSET', KEYS[1], 'd', ARGV[3], 'v', ARGV[4], 'e', ARGV[5], 'l', ARGV[6], shifted(w, ARGV[7]))
redis.call('PEXPIREAT', KEYS[1], ARGV[5])
return 1
`)

	// KEYS[1]; ARGV: now, expires. Returns 0 when missing (or its e is not
	// after now). A new deadline not after now deletes the key.
	touchScript = goredis.NewScript(`
local r = redis.call('HMGET', KEYS[1], 'e', 'l')
if not r[1] then return 0 end
local now = tonumber(ARGV[1])
if tonumber(r[1]) <= now then return 0 end
local new = tonumber(ARGV[2])
local lim = tonumber(r[2])
if lim > 0 and new > lim then new = lim end
if new <= now then
	redis.call('DEL', KEYS[1])
	return 1
end
redis.call('HSET', KEYS[1], 'e', new)
redis.call('PEXPIREAT', KEYS[1], new)
return 1
`)

	// KEYS[1]; ARGV: version, now. Deletes the key only if it holds that
	// version, live at now: returns 1 when deleted, 0 when it holds another,
	// -1 when it is missing (or its e is not after now; then it is left
	// alone).
	deleteIfScript = goredis.NewScript(`
local r = redis.call('HMGET', KEYS[1], 'v', 'e')
if not r[1] or tonumber(r[2]) <= tonumber(ARGV[2]) then return -1 end
if r[1] ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
`)

	// KEYS: old, new; ARGV: old version, now, value, version, expires,
	// limit, write id. Returns 1 when moved, -1 when the old key has no live
	// entry, 0 when it holds another version or the new key a live entry.
	// An expires not after now deletes the old key and writes nothing. A
	// dead entry under the new key (e not after now) is replaced whole.
	// Replaying a move that already happened returns 1.
	replaceScript = goredis.NewScript(writeIDs + `
if seen(redis.call('HMGET', KEYS[2], 'w1', 'w2', 'w3', 'w4'), ARGV[7]) then return 1 end
local now = tonumber(ARGV[2])
local o = redis.call('HMGET', KEYS[1], 'v', 'e')
if not o[1] or tonumber(o[2]) <= now then return -1 end
if o[1] ~= ARGV[1] then return 0 end
local n = redis.call('HGET', KEYS[2], 'e')
if n and tonumber(n) > now then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
if tonumber(ARGV[5]) <= now then return 1 end
redis.call('HSET', KEYS[2], 'd', ARGV[3], 'v', ARGV[4], 'e', ARGV[5], 'l', ARGV[6], 'w1', ARGV[7])
redis.call('PEXPIREAT', KEYS[2], ARGV[5])
return 1
`)

	// KEYS[1] (an owner's set); ARGV: now, limit, key. Drops the members
	// whose limit is not after now, records key until limit (or forgets it
	// when limit is not after now), then makes the set expire with its
	// latest member. Replaying it changes nothing more.
	addOwnedScript = goredis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if tonumber(ARGV[2]) > tonumber(ARGV[1]) then
	redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
else
	redis.call('ZREM', KEYS[1], ARGV[3])
end
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if top[2] then redis.call('PEXPIREAT', KEYS[1], top[2]) end
return 1
`)

	allScripts = []*goredis.Script{getTouchScript, setScript, setIfScript, touchScript, deleteIfScript, addOwnedScript}
)

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

// write runs a replayable write script. When its outcome is unknown (see
// Options.ResolveWithin) it runs it again until Redis answers, the context
// ends or ResolveWithin passes; replayed reports whether the answer came
// from a replay.
func (s *Store) write(ctx context.Context, run func(context.Context) (int64, error)) (n int64, replayed bool, err error) {
	n, err = run(ctx)
	if err == nil || !outcomeUnknown(err) || s.resolve < 0 {
		return n, false, err
	}
	first := err
	deadline := time.Now().Add(s.resolve)
	wait := 20 * time.Millisecond
	for time.Now().Before(deadline) {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, false, fmt.Errorf("outcome unknown: %w (then %w)", first, ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, 200*time.Millisecond)
		n, err = run(ctx)
		if err == nil {
			return n, true, nil
		}
		if !retryable(err) {
			break
		}
	}
	return 0, false, fmt.Errorf("outcome unknown: %w (last try: %v)", first, err)
}

// outcomeUnknown reports whether err leaves open whether a write was
// applied: anything but a reply from Redis or the end of the context. Even a
// failure to connect counts: go-redis retries a command whose connection
// broke (Options.MaxRetries), so its last error may be a refused dial after
// a first try that Redis applied.
func outcomeUnknown(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var rerr goredis.Error
	return !errors.As(err, &rerr) || retryable(err)
}

// retryable reports whether trying a write again may succeed: a network
// failure, or Redis saying it is not ready yet.
func retryable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var rerr goredis.Error
	if !errors.As(err, &rerr) {
		return true
	}
	msg := rerr.Error()
	for _, p := range []string{"LOADING", "TRYAGAIN", "CLUSTERDOWN", "MASTERDOWN"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
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
func (s *Store) GetTouch(ctx context.Context, key string, now, ifBefore, expires time.Time) (backend.Entry, bool, error) {
	return s.getTouch(ctx, "get", key, ms(now), ms(ifBefore), ms(expires))
}

func (s *Store) getTouch(ctx context.Context, op, key string, now, ifBefore, expires int64) (backend.Entry, bool, error) {
	if err := ctx.Err(); err != nil {
		return backend.Entry{}, false, wrap(op, err)
	}
	res, err := getTouchScript.Run(ctx, s.client, []string{s.prefix + key}, now, ifBefore, expires).Slice()
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

// parseEntry reads the reply {d, v, e, l, touched} of getTouchScript.
func parseEntry(res []any) (backend.Entry, bool, error) {
	if len(res) != 5 {
		return backend.Entry{}, false, fmt.Errorf("unexpected reply of %d elements", len(res))
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
	}, touched == 1, nil
}

// entryArgs returns the script arguments value, version, expires, limit and
// a fresh write id, which tells a replay of this write from another writer's
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
	_, _, err := s.write(ctx, func(ctx context.Context) (int64, error) {
		return setScript.Run(ctx, s.client, []string{s.prefix + key}, entryArgs(e)...).Int64()
	})
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
	args := append([]any{strconv.FormatUint(old, 10), ms(now)}, entryArgs(e)...)
	n, _, err := s.write(ctx, func(ctx context.Context) (int64, error) {
		return setIfScript.Run(ctx, s.client, []string{s.prefix + key}, args...).Int64()
	})
	if err != nil {
		return wrap("set", err)
	}
	return writeResult(n)
}

// writeResult maps the answer of a conditional write script to its error.
func writeResult(n int64) error {
	switch n {
	case 1:
		return nil
	case 0:
		return backend.ErrConflict
	case -1:
		return backend.ErrNotFound
	}
	return fmt.Errorf("sessions: redis: unexpected reply %d from a write script", n)
}

// Touch moves the deadline of the entry under key to expires, capped at its
// Limit. An entry whose deadline is not after now (the caller's clock) is
// backend.ErrNotFound and is left alone, even while Redis keeps it.
func (s *Store) Touch(ctx context.Context, key string, now, expires time.Time) error {
	if err := ctx.Err(); err != nil {
		return wrap("touch", err)
	}
	n, _, err := s.write(ctx, func(ctx context.Context) (int64, error) {
		return touchScript.Run(ctx, s.client, []string{s.prefix + key}, ms(now), ms(expires)).Int64()
	})
	if err != nil {
		return wrap("touch", err)
	}
	if n == 0 {
		return backend.ErrNotFound
	}
	return nil
}

// Delete removes the entry under key.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return wrap("delete", err)
	}
	_, _, err := s.write(ctx, func(ctx context.Context) (int64, error) {
		return s.client.Del(ctx, s.prefix+key).Result()
	})
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
		args := append([]any{oldArg, nowArg}, entryArgs(e)...)
		n, _, err := s.write(ctx, func(ctx context.Context) (int64, error) {
			return replaceScript.Run(ctx, s.client, []string{s.prefix + oldKey, s.prefix + newKey}, args...).Int64()
		})
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
	n, replayed, err := s.write(ctx, func(ctx context.Context) (int64, error) {
		return deleteIfScript.Run(ctx, s.client, []string{s.prefix + oldKey}, oldArg, nowArg).Int64()
	})
	if err != nil {
		// Unknown whether the old key is gone: keep the new one, so that
		// the session is never nowhere.
		return wrap("replace", err)
	}
	if n == 1 || (n == -1 && replayed) {
		return nil // deleted now, or by the try whose answer was lost
	}
	// The old session vanished (-1) or changed (0): undo.
	cause := writeResult(n)
	if err := s.client.Del(ctx, s.prefix+newKey).Err(); err != nil {
		return wrap("replace", fmt.Errorf("%w (and removing the new key failed: %w)", cause, err))
	}
	return cause
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
	_, _, err := s.write(ctx, func(ctx context.Context) (int64, error) {
		return addOwnedScript.Run(ctx, s.client, []string{k}, now, lim, key).Int64()
	})
	if err != nil {
		return wrap("add owned", err)
	}
	return nil
}

// RemoveOwned removes keys from owner's set with ZREM; Redis deletes the set
// when it becomes empty.
func (s *Store) RemoveOwned(ctx context.Context, owner string, keys ...string) error {
	if err := ctx.Err(); err != nil {
		return wrap("remove owned", err)
	}
	if len(keys) == 0 {
		return nil
	}
	k := s.ownerKey(owner)
	members := make([]any, len(keys))
	for i, key := range keys {
		members[i] = key
	}
	_, _, err := s.write(ctx, func(ctx context.Context) (int64, error) {
		return s.client.ZRem(ctx, k, members...).Result()
	})
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
		return nil, wrap("owned", err)
	}
	return keys, nil
}
