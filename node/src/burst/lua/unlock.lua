-- Release a lock only if we still own it (its value is our token): a lock
-- that expired and was taken by someone else stays theirs.
-- KEYS: lock ; ARGV: owner token
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
