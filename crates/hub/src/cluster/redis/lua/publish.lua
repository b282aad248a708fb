-- Appends one update to the log: the epoch check, the duplicate check, the
-- next dense position, XADD, and a bounded trim, all in one atomic step.
-- KEYS: log, ids, meta
-- ARGV: epoch, id, published_at_ms, size, private, topics, frame,
--       max_count, max_bytes, min_published_at_ms, trim_limit
-- Returns the position, 0 for an id already held, or a TIDINGS_EPOCH error
-- when the log is not the one this node knows (Redis lost its data).
-- Redis does not undo a script's writes when a later command fails, so the
-- XADD, the one command that can fail, comes before any write: a failure
-- leaves no trace, and positions keep no holes.
local log, ids, meta = KEYS[1], KEYS[2], KEYS[3]
if redis.call('HGET', meta, 'epoch') ~= ARGV[1] then
  return redis.error_reply('TIDINGS_EPOCH the log is not the one this node knows')
end
if redis.call('HEXISTS', ids, ARGV[2]) == 1 then
  return 0
end
local position = tonumber(redis.call('HGET', meta, 'last') or '0') + 1
redis.call('XADD', log, position .. '-0',
  'id', ARGV[2], 't', ARGV[3], 'n', ARGV[4], 'p', ARGV[5],
  'topics', ARGV[6], 'frame', ARGV[7])
redis.call('HSET', meta, 'last', position)
redis.call('HSET', ids, ARGV[2], position)
redis.call('HINCRBY', meta, 'bytes', ARGV[4])
trim(log, ids, meta, tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10]),
  tonumber(ARGV[11]))
return position
