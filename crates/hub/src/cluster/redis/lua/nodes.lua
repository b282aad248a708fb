-- The nodes alive (ARGV[1] = 'alive') or dead ('dead') by Redis's clock.
-- KEYS: nodes
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
if ARGV[1] == 'alive' then
  return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ms, '+inf')
end
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ms, 'LIMIT', 0, 16)
