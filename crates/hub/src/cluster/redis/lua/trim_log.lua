-- Evicts by retention without appending (by age, mostly), a bounded amount.
-- KEYS: log, ids, meta
-- ARGV: max_count, max_bytes, min_published_at_ms, limit
-- Returns how many entries went.
return trim(KEYS[1], KEYS[2], KEYS[3], tonumber(ARGV[1]), tonumber(ARGV[2]),
  tonumber(ARGV[3]), tonumber(ARGV[4]))
