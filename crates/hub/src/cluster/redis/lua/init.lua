-- Gives the log an epoch if it has none: a new log, or one whose meta was
-- lost (Redis restarted without persistence, keys evicted). Positions then
-- continue after any entry the stream still holds, so they never repeat
-- within the stream. The first node to call it chooses the epoch.
-- KEYS: log, meta
-- ARGV: a new epoch, used only if there is none
-- Returns {epoch, last position, base}: base is where the epoch's own
-- entries start (the last position when it was created).
local log, meta = KEYS[1], KEYS[2]
local epoch = redis.call('HGET', meta, 'epoch')
if not epoch then
  local last = 0
  local top = redis.call('XREVRANGE', log, '+', '-', 'COUNT', 1)[1]
  if top then
    last = tonumber(string.match(top[1], '^%d+'))
  end
  redis.call('HSET', meta, 'epoch', ARGV[1], 'last', last, 'base', last, 'bytes', 0)
  epoch = ARGV[1]
end
return {epoch, redis.call('HGET', meta, 'last') or '0', redis.call('HGET', meta, 'base') or '0'}
