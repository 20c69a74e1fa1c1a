-- Claim for a unique per-user code: only its intended user, only once.
-- KEYS: ready, paused, free codes, users, claims, inflight, (unused), then claim_limits.lua's
-- ARGV: user, per_user_limit, code, now_ms, inflight_ttl_ms, idempotency key, intended user, then claim_limits.lua's
if redis.call('EXISTS', KEYS[1]) == 0 then return {'not_loaded'} end
if ARGV[7] ~= '' and ARGV[7] ~= ARGV[1] then return {'audience_mismatch'} end
local f = redis.call('GET', KEYS[6])
if f == 'done' then return {'replay'} end
if f then return {'in_flight'} end
-- The key's marker first: a retry or a duplicate in flight is answered as
-- such even when the campaign closed since.
if redis.call('EXISTS', KEYS[2]) == 1 then return {'paused'} end
local used = tonumber(redis.call('HGET', KEYS[4], ARGV[1]) or '0')
if used >= tonumber(ARGV[2]) then return {'already_redeemed'} end
if redis.call('SREM', KEYS[3], ARGV[3]) == 0 then return {'code_used'} end
redis.call('HINCRBY', KEYS[4], ARGV[1], 1)
redis.call('SET', KEYS[6], 'claim', 'PX', ARGV[5])
redis.call('ZADD', KEYS[5], ARGV[4], ARGV[3] .. '\n' .. ARGV[6] .. '\n' .. ARGV[1])
return {'ok', ARGV[3]}
