-- Claims a dead node: the one caller that removes it from the nodes set gets
-- its subscriptions (to announce them inactive) and deletes them; any other
-- caller gets nothing. So each is announced once across the cluster.
-- KEYS: nodes, the dead node's presence hash
-- ARGV: the dead node's id
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then
  return {}
end
local subscriptions = redis.call('HVALS', KEYS[2])
redis.call('DEL', KEYS[2])
return subscriptions
