-- Appends one entry of content changes of one tenant to the content log: the snapshot
-- hash takes the changes in order (the last change of an id wins), and the stream gets
-- the entry, so followers apply it in one commit. The log's life records its first entry
-- (`born`, only when it has none: a new or a lost log) and its last one. While an instance
-- seeds the log from its index, nothing is written and the error SEEDING answers.
-- KEYS[1] stream of changes, KEYS[2] set of tenants, KEYS[3] the tenant's snapshot hash,
-- KEYS[4] the log's life hash, KEYS[5] the seed lock
-- ARGV[1] approximate stream length cap, ARGV[2] tenant, ARGV[3] the changes as JSON,
-- then per change: op ("upsert" | "delete"), id, document JSON ("" for a delete)
if redis.call('EXISTS', KEYS[5]) == 1 then
  return redis.error_reply('SEEDING an instance is seeding the content log from its index')
end
for i = 4, #ARGV, 3 do
  if ARGV[i] == 'upsert' then
    redis.call('HSET', KEYS[3], ARGV[i + 1], ARGV[i + 2])
  else
    redis.call('HDEL', KEYS[3], ARGV[i + 1])
  end
end
redis.call('SADD', KEYS[2], ARGV[2])
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*',
  'tenant', ARGV[2], 'changes', ARGV[3])
redis.call('HSETNX', KEYS[4], 'born', id)
redis.call('HSET', KEYS[4], 'last', id)
return id
