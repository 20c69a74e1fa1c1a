-- GCRA (generic cell rate algorithm): one key per bucket holding the
-- theoretical arrival time. Returns 0 when allowed, else ms to wait.
-- KEYS: bucket ; ARGV: now_ms, emission interval ms, burst
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or ARGV[1])
if tat < now then tat = now end
local allow_at = tat + interval - burst * interval
if now < allow_at then return math.ceil(allow_at - now) end
local new_tat = tat + interval
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil(new_tat - now) + 1000)
return 0
