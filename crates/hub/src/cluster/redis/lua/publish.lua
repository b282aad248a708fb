-- Appends updates to the log, in order: the epoch check, then for each the
-- duplicate check, the next dense position and XADD; then one bounded trim.
-- One call is atomic; the writer pipelines several per batch.
-- KEYS: log, ids, meta
-- ARGV: epoch, max_count, max_bytes, min_published_at_ms, trim_per_update,
--       then six per update: id, published_at_ms, size, private, topics, frame
-- Returns one integer per update: its position, 0 for an id already held, or
-- -1 if Redis refused it (then the refusal's message follows as a last
-- element, and no later update of the call was stored); or a TIDINGS_EPOCH
-- error, storing nothing, when the log is not the one this node knows.
local log, ids, meta = KEYS[1], KEYS[2], KEYS[3]
if redis.call('HGET', meta, 'epoch') ~= ARGV[1] then
  return redis.error_reply('TIDINGS_EPOCH the log is not the one this node knows')
end
local last = tonumber(redis.call('HGET', meta, 'last') or '0')
local first = last
local added = 0
local out = {}
local refusal = nil
for i = 6, #ARGV, 6 do
  if refusal then
    out[#out + 1] = -1
  elseif redis.call('HEXISTS', ids, ARGV[i]) == 1 then
    out[#out + 1] = 0
  else
    -- XADD is the one command here that can fail: nothing of this update
    -- is written before it, so a refusal leaves no hole.
    local ok = redis.pcall('XADD', log, (last + 1) .. '-0',
      'id', ARGV[i], 't', ARGV[i + 1], 'n', ARGV[i + 2], 'p', ARGV[i + 3],
      'topics', ARGV[i + 4], 'frame', ARGV[i + 5])
    if type(ok) == 'table' and ok.err then
      refusal = ok.err
      out[#out + 1] = -1
    else
      last = last + 1
      redis.call('HSET', ids, ARGV[i], last)
      added = added + tonumber(ARGV[i + 2])
      out[#out + 1] = last
    end
  end
end
if last > first then
  redis.call('HSET', meta, 'last', last)
  redis.call('HINCRBY', meta, 'bytes', added)
end
trim(log, ids, meta, tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]),
  tonumber(ARGV[5]) * (last - first))
if refusal then
  out[#out + 1] = refusal
end
return out
