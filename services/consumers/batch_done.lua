-- A job's batches are over (done, or failed for good): delete each batch and
-- take its items off the queued count, once, however often this runs.
-- KEYS: the batches, then queued (last). Returns the items taken off.
local queued = KEYS[#KEYS]
local total = 0
for i = 1, #KEYS - 1 do
  local n = tonumber(redis.call('HGET', KEYS[i], 'n') or '0')
  if redis.call('DEL', KEYS[i]) == 1 and n > 0 then total = total + n end
end
if total > 0 and redis.call('DECRBY', queued, total) < 0 then redis.call('SET', queued, 0) end
return total
