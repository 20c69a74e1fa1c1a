-- Claim for a shared code: one per-user use, plus a seat when the campaign
-- is capped. Atomic in Redis; Postgres still decides (docs/architecture.md §3.2).
-- Seats come from the free-list (seats given back or released) first, then
-- from the `next` counter, so the state never grows with the cap: only
-- with the seats actually handed out.
-- KEYS: ready, paused, free seats, users, claims, inflight, next seat (then claim_limits.lua's)
-- ARGV: user, per_user_limit, total_limit ('0' = unlimited), now_ms, inflight_ttl_ms, idempotency key, (unused), then claim_limits.lua's
if redis.call('EXISTS', KEYS[1]) == 0 then return {'not_loaded'} end
local f = redis.call('GET', KEYS[6])
if f == 'done' then return {'replay'} end
if f then return {'in_flight'} end
-- The key's marker first: a retry or a duplicate in flight is answered as
-- such even when the campaign closed since.
if redis.call('EXISTS', KEYS[2]) == 1 then return {'paused'} end
local used = tonumber(redis.call('HGET', KEYS[4], ARGV[1]) or '0')
if used >= tonumber(ARGV[2]) then return {'already_redeemed'} end
local token = ''
local total = tonumber(ARGV[3])
if total > 0 then
  token = redis.call('SPOP', KEYS[3])
  if not token then
    local n = redis.call('GET', KEYS[7])
    -- `ready` without `next`: part of the state was lost (a failover).
    if not n then return {'not_loaded'} end
    n = tonumber(n)
    if n > total then return {'exhausted'} end
    redis.call('SET', KEYS[7], n + 1)
    token = tostring(n)
  end
end
redis.call('HINCRBY', KEYS[4], ARGV[1], 1)
redis.call('SET', KEYS[6], 'claim', 'PX', ARGV[5])
redis.call('ZADD', KEYS[5], ARGV[4], token .. '\n' .. ARGV[6] .. '\n' .. ARGV[1])
return {'ok', token}
