-- A batch's job is over (done, or failed for good): delete the batch and take
-- its items off the queued count, once, however often this runs.
-- KEYS: batch, queued. Returns the items taken off.
local n = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
if redis.call('DEL', KEYS[1]) == 1 and n > 0 then
  if redis.call('DECRBY', KEYS[2], n) < 0 then redis.call('SET', KEYS[2], 0) end
  return n
end
return 0
