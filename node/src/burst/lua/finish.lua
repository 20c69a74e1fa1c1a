-- After the Postgres commit: the claim is settled; keep a replay marker.
-- When Postgres had to take another seat or code than the one claimed,
-- that one is no longer free either (precise repair of a stale view).
-- KEYS: free, claims, inflight
-- ARGV: claim member, replay marker ttl ms, seat or code actually taken ('' = as claimed)
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('SET', KEYS[3], 'done', 'PX', ARGV[2])
if ARGV[3] ~= '' then redis.call('SREM', KEYS[1], ARGV[3]) end
return 1
