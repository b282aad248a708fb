-- A node says it is alive: its expiry, in Redis's clock (so that nodes'
-- clocks do not matter), in the nodes sorted set, and a safety expiry on its
-- presence hash in case no node is left to reap it.
-- KEYS: nodes, this node's presence hash
-- ARGV: node id, node timeout (ms)
-- Returns 1 when the node was not listed (new, or reaped while it was cut
-- off): it must then rewrite its presence hash.
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local added = redis.call('ZADD', KEYS[1], ms + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[2]) * 30)
return added
