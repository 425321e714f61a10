-- Store and publish views W, newest version only: workers may post out of order.
-- KEYS: history, then per view: its view key and its symbol's calc-a `agg` hash.
-- ARGV: history maxlen, channel, idle expiry (s), then per view: version, view json, envelope.
-- A view expires SYMBOL_IDLE_S after its last update, with the rest of its symbol's state.
-- A view's version is calc-a's count of the batches applied to its symbol (`agg` field `version`, bumped
-- before the view is built), so no real view is ahead of it. One that is would hide every later view of
-- the symbol, so the whole call is refused: returns {0, the view's index (0-based), calc-a's version}.
-- Otherwise returns {1, then per view the event id, or false when a newer version is already stored}.
local hist, hmax, chan, idle = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local n = (#KEYS - 1) / 2
for v = 1, n do
  local current = tonumber(redis.call('HGET', KEYS[2 * v + 1], 'version') or '0')
  if tonumber(ARGV[1 + 3 * v]) > current then return { 0, v - 1, current } end
end
local out = { 1 }
for v = 1, n do
  local key, i = KEYS[2 * v], 1 + 3 * v
  local stored = tonumber(redis.call('HGET', key, 'version') or '-1')
  if tonumber(ARGV[i]) > stored then
    redis.call('HSET', key, 'version', ARGV[i], 'view', ARGV[i + 1])
    redis.call('EXPIRE', key, idle)
    out[#out + 1] = publish(hist, hmax, chan, ARGV[i + 2])
  else
    out[#out + 1] = false
  end
end
return out
