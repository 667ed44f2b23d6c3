-- Writes one page of a seed into the snapshot of one tenant, for the instance that holds
-- the seed lock (the error SEED_LOCK_LOST answers anyone else), and extends the lock.
-- KEYS[1] set of tenants, KEYS[2] the tenant's snapshot hash, KEYS[3] the seed lock
-- ARGV[1] the lock's token, ARGV[2] the lock's time to live (ms), ARGV[3] tenant,
-- then per change: op ("upsert" | "delete"), id, document JSON ("" for a delete)
if redis.call('GET', KEYS[3]) ~= ARGV[1] then
  return redis.error_reply('SEED_LOCK_LOST the seed lock expired or was taken')
end
for i = 4, #ARGV, 3 do
  if ARGV[i] == 'upsert' then
    redis.call('HSET', KEYS[2], ARGV[i + 1], ARGV[i + 2])
  else
    redis.call('HDEL', KEYS[2], ARGV[i + 1])
  end
end
redis.call('SADD', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[3], ARGV[2])
return 1
