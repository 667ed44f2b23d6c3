-- Appends one batch of content changes of one tenant to the content log: the snapshot
-- hash takes the changes in order (the last change of an id wins), and the stream gets
-- the batch as one entry, so followers apply it in one commit.
-- KEYS[1] stream of changes, KEYS[2] set of tenants, KEYS[3] the tenant's snapshot hash
-- ARGV[1] approximate stream length cap, ARGV[2] tenant, ARGV[3] the batch as JSON,
-- then per change: op ("upsert" | "delete"), id, document JSON ("" for a delete)
for i = 4, #ARGV, 3 do
  if ARGV[i] == 'upsert' then
    redis.call('HSET', KEYS[3], ARGV[i + 1], ARGV[i + 2])
  else
    redis.call('HDEL', KEYS[3], ARGV[i + 1])
  end
end
redis.call('SADD', KEYS[2], ARGV[2])
return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*',
  'tenant', ARGV[2], 'changes', ARGV[3])
