-- Starts a seed: empties the snapshot (the seed then writes the seeding instance's
-- documents and the changes logged since the loss), for the holder of the seed lock only.
-- KEYS[1] set of tenants, KEYS[2] the seed lock, KEYS[3..] every tenant's snapshot hash
-- ARGV[1] the lock's token
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return redis.error_reply('SEED_LOCK_LOST the seed lock expired or was taken')
end
for i = 3, #KEYS do
  redis.call('DEL', KEYS[i])
end
redis.call('DEL', KEYS[1])
return 1
