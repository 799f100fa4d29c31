package redis

import (
	"crypto/sha1"
	"encoding/hex"
)

// script is one Lua script of the store. It is run by its SHA1 (EVALSHA)
// and sent whole (EVAL) when Redis does not know it, after a restart or a
// failover to a replica that never loaded it.
type script struct {
	src  string
	hash string
}

func newScript(src string) *script {
	sum := sha1.Sum([]byte(src))
	return &script{src: src, hash: hex.EncodeToString(sum[:])}
}

// Replies of the write scripts.
const (
	replyDone     = 1  // written, or a replay of a write that was
	replyConflict = 0  // another version is live, or a live key is in the way
	replyMissing  = -1 // the live entry the write needs is not there
	replyLate     = -2 // Redis's clock is past the write's not-after time: not applied, and no copy of it ever will be
	replyNoMemory = 2  // touch only: the slide was refused for lack of memory or of replicas: nothing changed
)

// prelude is Lua shared by the scripts.
//
// Fields w1..w4 of a session hold the ids of its last four writes, newest
// first. seen reports whether id is among the ids r (as read by HMGET w1
// w2 w3 w4) holds; shifted returns the HSET arguments that put id in
// front.
//
// late reports whether Redis's clock (TIME, Unix ms) is past na, a write's
// not-after time in Redis's clock; na 0 means no bound. A write checks it
// after it checked whether it was already applied (a replay of a write
// that landed reports success, even when late) and before it changes
// anything: a copy that arrives late is refused, and since Redis's clock
// only moves on, so is every later copy.
//
// refused reports whether res, the result of redis.pcall, is Redis's
// refusal of a write for lack of memory (maxmemory with noeviction) or of
// replicas (min-replicas-to-write): the write changed nothing.
//
// answer(cmd, v) is how a script returns v when it wrote nothing: first it
// sends a write that changes nothing (removing field or member "" from
// KEYS[1], by cmd: HDEL for a session's hash, ZREM for an owner's set),
// which a read-only replica refuses with READONLY before running it, and
// which a primary neither applies nor replicates; on a replica the script
// then fails with READONLY instead of answering. A client still connected
// to a primary that a failover demoted must not take the replica's lagging
// copy for the store's answer ("missing", "another version", "late",
// "already applied"): a write sent again after a lost reply would be
// reported failed though its first copy is on the new primary. (A script
// that writes needs no such check: Redis refuses its first write there.
// The check comes last, not first, because any write command, even one
// that changes nothing, lifts the out-of-memory check of the script's
// later writes.) Other refusals of the no-op (NOREPLICAS) are ignored.
//
// Scripts are replicated by their effects (the only way since Redis 7, the
// default since 5; asked for explicitly before), so that a script may
// write after reading TIME.
const prelude = `
if redis.replicate_commands then redis.replicate_commands() end
local function seen(r, id)
	return r[1] == id or r[2] == id or r[3] == id or r[4] == id
end
local function shifted(r, id)
	return 'w1', id, 'w2', r[1] or '', 'w3', r[2] or '', 'w4', r[3] or ''
end
local function late(na)
	na = tonumber(na)
	if na <= 0 then return false end
	local t = redis.call('TIME')
	return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) > na
end
local function answer(cmd, v)
	local res = redis.pcall(cmd, KEYS[1], '')
	if type(res) == 'table' and type(res.err) == 'string' and string.find(res.err, 'READONLY', 1, true) then
		return redis.error_reply('READONLY sessions: this node is a replica (a failover demoted it?): the script changed nothing')
	end
	return v
end
local function refused(res)
	if type(res) ~= 'table' or type(res.err) ~= 'string' then return false end
	return string.find(res.err, 'OOM', 1, true) ~= nil or string.find(res.err, 'NOREPLICAS', 1, true) ~= nil
end
`

// The scripts. Times are Unix milliseconds; a stored hash always has d, v,
// e, l.
//
// now is the caller's clock (the core's): a hash whose e is not after now
// counts as missing, even while its TTL, which runs on Redis's clock, keeps
// it; scripts then write nothing. na is the write's not-after time, in
// Redis's clock (see prelude's late). Write scripts answer with the reply*
// constants.
var (
	// KEYS[1]; ARGV: now (0: Get, Redis's clock alone), ifBefore (0: never
	// touch), expires, na. Returns false (missing) or {d, v, e, l,
	// touched, i}. An entry with its own idle timeout (field i, ms) slides
	// by it, as backend.Slide says. The slide is skipped, and the entry still returned, when
	// it would come late or Redis refuses it for lack of memory or of
	// replicas: a read is served all the same, and the next one slides.
	getTouchScript = newScript(prelude + `
local r = redis.call('HMGET', KEYS[1], 'd', 'v', 'e', 'l', 'i')
if not r[1] then return answer('HDEL', false) end
local exp = tonumber(r[3])
local now = tonumber(ARGV[1])
if exp <= now then return answer('HDEL', false) end
local touched = 0
local ifBefore = tonumber(ARGV[2])
local slideTo = tonumber(ARGV[3])
local idle = tonumber(r[5] or '0') or 0
if idle > 0 and ifBefore > 0 then
	-- The session's own idle timeout (backend.Slide).
	local slack = slideTo - ifBefore
	if math.floor(idle / 10) < slack then slack = math.floor(idle / 10) end
	slideTo = now + idle
	ifBefore = slideTo - slack
end
if ifBefore > 0 and exp < ifBefore then
	local new = slideTo
	local lim = tonumber(r[4])
	if lim > 0 and new > lim then new = lim end
	if new ~= exp and not late(ARGV[4]) then
		if new <= now then
			redis.call('DEL', KEYS[1])
			return false
		end
		local res = redis.pcall('HSET', KEYS[1], 'e', new)
		if not refused(res) then
			if type(res) == 'table' and res.err then return res end
			redis.call('PEXPIREAT', KEYS[1], new)
			if redis.call('EXISTS', KEYS[1]) == 0 then return false end
			exp = new
			touched = 1
		end
	end
end
return answer('HDEL', {r[1], r[2], exp, r[4], touched, r[5] or '0'})
`)

	// KEYS[1]; ARGV: value, version, expires, limit, write id, na, idle.
	setScript = newScript(prelude + `
local w = redis.call('HMGET', KEYS[1], 'w1', 'w2', 'w3', 'w4')
if seen(w, ARGV[5]) then return answer('HDEL', 1) end
if late(ARGV[6]) then return answer('HDEL', -2) end
redis.call('HSET', KEYS[1], 'd', ARGV[1], 'v', ARGV[2], 'e', ARGV[3], 'l', ARGV[4], 'i', ARGV[7], shifted(w, ARGV[5]))
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
return 1
`)

	// KEYS[1]; ARGV: old version (0: must not exist), now, value, version,
	// expires, limit, write id, na, idle. Returns 1 when written, 0 on conflict
	// (a live entry of another version, or with old 0 any live entry), -1
	// when old is not 0 and no live entry is stored. An expires not after
	// now deletes the key instead of writing it. Replaying a write that
	// already landed (its write id is among the last ones stored, even if
	// other writes followed it) returns 1 and changes nothing.
	setIfScript = newScript(prelude + `
local r = redis.call('HMGET', KEYS[1], 'v', 'e', 'w1', 'w2', 'w3', 'w4')
local w = {r[3], r[4], r[5], r[6]}
if seen(w, ARGV[7]) then return answer('HDEL', 1) end
if late(ARGV[8]) then return answer('HDEL', -2) end
local now = tonumber(ARGV[2])
local cur = r[1]
if cur and tonumber(r[2]) <= now then cur = false end
if ARGV[1] == '0' then
	if cur then return answer('HDEL', 0) end
elseif not cur then
	return answer('HDEL', -1)
elseif cur ~= ARGV[1] then
	return answer('HDEL', 0)
end
if tonumber(ARGV[5]) <= now then
	redis.call('DEL', KEYS[1])
	return 1
end
redis.call('HSET', KEYS[1], 'd', ARGV[3], 'v', ARGV[4], 'e', ARGV[5], 'l', ARGV[6], 'i', ARGV[9], shifted(w, ARGV[7]))
redis.call('PEXPIREAT', KEYS[1], ARGV[5])
return 1
`)

	// KEYS[1]; ARGV: now, expires, na. Returns 0 when missing (or its e is
	// not after now), 1 when the deadline is where it was asked to be
	// (moved now, or already), 2 when Redis refused the slide for lack of
	// memory or of replicas. A new deadline not after now deletes the key.
	touchScript = newScript(prelude + `
local r = redis.call('HMGET', KEYS[1], 'e', 'l')
if not r[1] then return answer('HDEL', 0) end
local now = tonumber(ARGV[1])
if tonumber(r[1]) <= now then return answer('HDEL', 0) end
local new = tonumber(ARGV[2])
local lim = tonumber(r[2])
if lim > 0 and new > lim then new = lim end
if new == tonumber(r[1]) then return answer('HDEL', 1) end
if late(ARGV[3]) then return answer('HDEL', -2) end
if new <= now then
	redis.call('DEL', KEYS[1])
	return 1
end
local res = redis.pcall('HSET', KEYS[1], 'e', new)
if refused(res) then return 2 end
if type(res) == 'table' and res.err then return res end
redis.call('PEXPIREAT', KEYS[1], new)
return 1
`)

	// KEYS[1]; ARGV: na. Returns 1 when the key is gone (deleted now, or
	// already).
	deleteScript = newScript(prelude + `
if redis.call('EXISTS', KEYS[1]) == 0 then return answer('HDEL', 1) end
if late(ARGV[1]) then return answer('HDEL', -2) end
redis.call('DEL', KEYS[1])
return 1
`)

	// KEYS[1]; ARGV: version, now, na. Deletes the key only if it holds
	// that version, live at now: returns 1 when deleted, 0 when it holds
	// another, -1 when it is missing (or its e is not after now; then it is
	// left alone).
	deleteIfScript = newScript(prelude + `
local r = redis.call('HMGET', KEYS[1], 'v', 'e')
if not r[1] or tonumber(r[2]) <= tonumber(ARGV[2]) then return answer('HDEL', -1) end
if r[1] ~= ARGV[1] then return answer('HDEL', 0) end
if late(ARGV[3]) then return answer('HDEL', -2) end
redis.call('DEL', KEYS[1])
return 1
`)

	// KEYS: old, new; ARGV: old version, now, value, version, expires,
	// limit, write id, na, idle. Returns 1 when moved, -1 when the old key has no
	// live entry, 0 when it holds another version or the new key a live
	// entry. An expires not after now deletes the old key and writes
	// nothing. A dead entry under the new key (e not after now) is replaced
	// whole. Replaying a move that already happened returns 1.
	replaceScript = newScript(prelude + `
if seen(redis.call('HMGET', KEYS[2], 'w1', 'w2', 'w3', 'w4'), ARGV[7]) then return answer('HDEL', 1) end
if late(ARGV[8]) then return answer('HDEL', -2) end
local now = tonumber(ARGV[2])
local o = redis.call('HMGET', KEYS[1], 'v', 'e')
if not o[1] or tonumber(o[2]) <= now then return answer('HDEL', -1) end
if o[1] ~= ARGV[1] then return answer('HDEL', 0) end
local n = redis.call('HGET', KEYS[2], 'e')
if n and tonumber(n) > now then return answer('HDEL', 0) end
redis.call('DEL', KEYS[1], KEYS[2])
if tonumber(ARGV[5]) <= now then return 1 end
redis.call('HSET', KEYS[2], 'd', ARGV[3], 'v', ARGV[4], 'e', ARGV[5], 'l', ARGV[6], 'i', ARGV[9], 'w1', ARGV[7])
redis.call('PEXPIREAT', KEYS[2], ARGV[5])
return 1
`)

	// KEYS[1] (an owner's set); ARGV: now, limit, key, na. Drops the
	// members whose limit is not after now, records key until limit (or
	// forgets it when limit is not after now), then makes the set expire
	// with its latest member. Returns 1 at once when the set already says
	// what was asked (a replay).
	addOwnedScript = newScript(prelude + `
local cur = redis.call('ZSCORE', KEYS[1], ARGV[3])
local keep = tonumber(ARGV[2]) > tonumber(ARGV[1])
if keep and cur and tonumber(cur) == tonumber(ARGV[2]) then return answer('ZREM', 1) end
if not keep and not cur then return answer('ZREM', 1) end
if late(ARGV[4]) then return answer('ZREM', -2) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if keep then
	redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
else
	redis.call('ZREM', KEYS[1], ARGV[3])
end
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if top[2] then redis.call('PEXPIREAT', KEYS[1], top[2]) end
return 1
`)

	// KEYS[1] (an owner's set); ARGV: na, keys... Removes the keys from the
	// set (Redis deletes an empty set). Returns 1 at once when none of them
	// is there.
	removeOwnedScript = newScript(prelude + `
local any = false
for i = 2, #ARGV do
	if redis.call('ZSCORE', KEYS[1], ARGV[i]) then
		any = true
		break
	end
end
if not any then return answer('ZREM', 1) end
if late(ARGV[1]) then return answer('ZREM', -2) end
for i = 2, #ARGV do redis.call('ZREM', KEYS[1], ARGV[i]) end
return 1
`)

	// oneNodeScripts touch one key each: they run on any deployment.
	oneNodeScripts = []*script{getTouchScript, setScript, setIfScript, touchScript, deleteScript, deleteIfScript, addOwnedScript, removeOwnedScript}
)
