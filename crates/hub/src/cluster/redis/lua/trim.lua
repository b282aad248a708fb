-- Shared by publish.lua and trim_log.lua: evicts the oldest entries while the
-- retention says so, at most `limit` of them, and removes their ids from the
-- ids hash. A negative bound means "no bound of that kind". Count and bytes
-- are known without reading the stream, so a log within its bounds costs two
-- reads here (and a third, of the oldest entry, with an age bound).
-- Fields of an entry, in XADD order: id, t (published at, ms), n (size), ...
local function trim(log, ids, meta, max_count, max_bytes, min_t, limit)
  local count = redis.call('XLEN', log)
  if count == 0 or limit <= 0 then
    return 0
  end
  local bytes = tonumber(redis.call('HGET', meta, 'bytes') or '0')
  local over_size = (max_count >= 0 and count > max_count) or (max_bytes >= 0 and bytes > max_bytes)
  if not over_size and min_t < 0 then
    return 0
  end
  local oldest = redis.call('XRANGE', log, '-', '+', 'COUNT', limit)
  local removed, freed, last = 0, 0, nil
  for _, entry in ipairs(oldest) do
    local fields = entry[2]
    local t, n = tonumber(fields[4]), tonumber(fields[6])
    local over = (max_count >= 0 and count > max_count)
      or (max_bytes >= 0 and bytes > max_bytes)
      or (min_t >= 0 and t < min_t)
    if not over or removed >= limit then
      break
    end
    redis.call('HDEL', ids, fields[2])
    count, bytes = count - 1, bytes - n
    removed, freed, last = removed + 1, freed + n, entry[1]
  end
  if last then
    local position = tonumber(string.match(last, '^%d+'))
    redis.call('XTRIM', log, 'MINID', (position + 1) .. '-0')
    redis.call('HINCRBY', meta, 'bytes', -freed)
  end
  return removed
end
