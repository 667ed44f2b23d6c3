-- Ends a seed: appends the seed marker to the stream and starts the log's new life at it
-- (`born` and `seeded`), so every instance whose position is older rebuilds from the
-- seeded snapshot; then releases the lock. Only for the holder of the seed lock.
-- KEYS[1] stream of changes, KEYS[2] the log's life hash, KEYS[3] the seed lock
-- ARGV[1] the lock's token, ARGV[2] approximate stream length cap
if redis.call('GET', KEYS[3]) ~= ARGV[1] then
  return redis.error_reply('SEED_LOCK_LOST the seed lock expired or was taken')
end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'seeded', ARGV[1])
redis.call('HSET', KEYS[2], 'born', id, 'seeded', id, 'last', id)
redis.call('DEL', KEYS[3])
return id
