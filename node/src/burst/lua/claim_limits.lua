-- The caller's rate limits, charged by the claim itself: one Redis round
-- trip per redeem instead of two. They come first, so a limited caller
-- gets 429 whatever the campaign's state, as on the separate call.
-- KEYS[8], KEYS[9]: the user's and the IP's buckets
-- ARGV[4]: now_ms; ARGV[8..11]: the user's interval and burst, the IP's
-- interval and burst (interval 0 = that limit is off)
for i, scope in ipairs({'user', 'ip'}) do
  local interval = tonumber(ARGV[6 + 2 * i])
  if interval > 0 then
    local wait = gcra(KEYS[7 + i], tonumber(ARGV[4]), interval, tonumber(ARGV[7 + 2 * i]))
    if wait > 0 then return {'limited', scope, tostring(wait)} end
  end
end
