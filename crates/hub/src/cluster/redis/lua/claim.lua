-- Claims a dead node: the one caller that removes it from the nodes set gets
-- its subscriptions (to announce them inactive) and deletes them; any other
-- caller gets nothing. So each is announced once across the cluster. A node
-- whose heartbeat came back since it was listed dead is left alone.
-- KEYS: nodes, the dead node's presence hash
-- ARGV: the dead node's id
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local expiry = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not expiry or tonumber(expiry) > ms then
  return {}
end
redis.call('ZREM', KEYS[1], ARGV[1])
local subscriptions = redis.call('HVALS', KEYS[2])
redis.call('DEL', KEYS[2])
return subscriptions
