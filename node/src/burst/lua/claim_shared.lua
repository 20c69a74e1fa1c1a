-- Claim for a shared code: one per-user use, plus a seat when the campaign
-- is capped. Atomic in Redis; Postgres still decides (DESIGN.md §3.2).
-- KEYS: ready, paused, free seats, users, claims, inflight
-- ARGV: user, per_user_limit, capped ('1'|'0'), now_ms, inflight_ttl_ms, idempotency key
if redis.call('EXISTS', KEYS[1]) == 0 then return {'not_loaded'} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {'paused'} end
local f = redis.call('GET', KEYS[6])
if f == 'done' then return {'replay'} end
if f then return {'in_flight'} end
local used = tonumber(redis.call('HGET', KEYS[4], ARGV[1]) or '0')
if used >= tonumber(ARGV[2]) then return {'already_redeemed'} end
local token = ''
if ARGV[3] == '1' then
  token = redis.call('SPOP', KEYS[3])
  if not token then return {'exhausted'} end
end
redis.call('HINCRBY', KEYS[4], ARGV[1], 1)
redis.call('SET', KEYS[6], 'claim', 'PX', ARGV[5])
redis.call('ZADD', KEYS[5], ARGV[4], token .. '\n' .. ARGV[6] .. '\n' .. ARGV[1])
return {'ok', token}
