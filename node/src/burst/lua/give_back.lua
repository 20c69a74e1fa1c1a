-- Give a claim back (Postgres refused or failed, or the reconciler found a
-- leak). The claim's entry in the claims set is the token of ownership:
-- only whoever removes it gives the seat or code back, so a claim is never
-- returned twice, and never after a flush already forgot it.
-- KEYS: free, users, claims, inflight
-- ARGV: claim member, seat or code ('' for none), user
if redis.call('ZREM', KEYS[3], ARGV[1]) == 0 then
  return 0
end
if ARGV[2] ~= '' then redis.call('SADD', KEYS[1], ARGV[2]) end
local n = tonumber(redis.call('HGET', KEYS[2], ARGV[3]) or '0')
if n > 0 then redis.call('HINCRBY', KEYS[2], ARGV[3], -1) end
redis.call('DEL', KEYS[4])
return 1
