-- Returns what tells whether a position is usable in the content log, and nothing more:
-- the few fields of XINFO STREAM that matter (never its first and last entries, which
-- can be megabytes), the log's life and whether an instance is seeding it. A stream
-- written before the log recorded its life gets one: born at its first entry.
-- KEYS[1] stream of changes, KEYS[2] the log's life hash, KEYS[3] the seed lock
-- Returns {born, seeded, seeding (0|1), last-generated-id, entries-added, length,
-- recorded-first-entry-id}; "" for what does not exist.
local born = redis.call('HGET', KEYS[2], 'born') or ''
local seeded = redis.call('HGET', KEYS[2], 'seeded') or ''
local seeding = redis.call('EXISTS', KEYS[3])
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {born, seeded, seeding, '', 0, 0, ''}
end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local fields = {}
for i = 1, #info, 2 do
  fields[info[i]] = info[i + 1]
end
local first = fields['recorded-first-entry-id'] or ''
if born == '' and first ~= '' and first ~= '0-0' then
  born = first
  redis.call('HSETNX', KEYS[2], 'born', born)
end
return {born, seeded, seeding, fields['last-generated-id'] or '',
  fields['entries-added'] or 0, fields['length'] or 0, first}
