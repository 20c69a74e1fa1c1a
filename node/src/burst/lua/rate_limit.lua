-- One limit on its own (validate, and redeems refused before their claim).
-- KEYS: bucket ; ARGV: now_ms, emission interval ms, burst
return gcra(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))
