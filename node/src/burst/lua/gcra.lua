-- GCRA (generic cell rate algorithm): one key per bucket holding the
-- theoretical arrival time. Returns 0 when allowed (and charges the
-- bucket), else the ms to wait (and charges nothing).
local function gcra(key, now, interval, burst)
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local allow_at = tat + interval - burst * interval
  if now < allow_at then return math.ceil(allow_at - now) end
  local new_tat = tat + interval
  redis.call('SET', key, tostring(new_tat), 'PX', math.ceil(new_tat - now) + 1000)
  return 0
end
