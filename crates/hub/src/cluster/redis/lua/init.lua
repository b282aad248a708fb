-- Gives the log an epoch if it has none: a new log, or one whose meta was
-- lost (Redis restarted without persistence, keys evicted). Positions then
-- continue after the last id the stream ever generated (even if its entries
-- are gone), so XADD never fails and positions never repeat within it. The
-- first node to call it chooses the epoch.
-- KEYS: log, meta
-- ARGV: a new epoch, used only if there is none
-- Returns {epoch, last position, base}: base is where the epoch's own
-- entries start (the last position when it was created).
local log, meta = KEYS[1], KEYS[2]
local epoch = redis.call('HGET', meta, 'epoch')
if not epoch then
  local last, bytes = 0, 0
  if redis.call('EXISTS', log) == 1 then
    local info = redis.call('XINFO', 'STREAM', log)
    for i = 1, #info, 2 do
      if info[i] == 'last-generated-id' then
        last = tonumber(string.match(info[i + 1], '^%d+'))
      end
    end
    -- What the entries still held weigh (the "n" field). Only a lost meta
    -- gets here, and retention bounds the stream.
    local from = '-'
    while true do
      local page = redis.call('XRANGE', log, from, '+', 'COUNT', 1000)
      if #page == 0 then
        break
      end
      for _, entry in ipairs(page) do
        bytes = bytes + tonumber(entry[2][6] or '0')
      end
      from = '(' .. page[#page][1]
    end
  end
  redis.call('HSET', meta, 'epoch', ARGV[1], 'last', last, 'base', last, 'bytes', bytes)
  epoch = ARGV[1]
end
return {epoch, redis.call('HGET', meta, 'last') or '0', redis.call('HGET', meta, 'base') or '0'}
