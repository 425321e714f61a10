-- Store and publish views W, newest version only: workers may post out of order.
-- KEYS: history, then per view: its view key.
-- ARGV: history maxlen, channel, idle expiry (s), then per view: version, view json, envelope.
-- A view expires SYMBOL_IDLE_S after its last update, with the rest of its symbol's state.
-- Returns per view the event id, or false when a newer version is already stored.
local hist, hmax, chan, idle = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local out = {}
for k = 2, #KEYS do
  local key, i = KEYS[k], 4 + (k - 2) * 3
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
