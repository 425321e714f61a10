-- Store and publish views W, newest version only: workers may post out of order.
-- ARGV: view key prefix, history key, history maxlen, channel, then per view:
--       symbol, version, view json, envelope.
-- Returns per view the event id, or false when a newer version is already stored.
local vprefix, hist, hmax, chan = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local out = {}
for i = 5, #ARGV, 4 do
  local key = vprefix .. ARGV[i]
  local stored = tonumber(redis.call('HGET', key, 'version') or '-1')
  if tonumber(ARGV[i + 1]) > stored then
    redis.call('HSET', key, 'version', ARGV[i + 1], 'view', ARGV[i + 2])
    out[#out + 1] = publish(hist, hmax, chan, ARGV[i + 3])
  else
    out[#out + 1] = false
  end
end
return out
