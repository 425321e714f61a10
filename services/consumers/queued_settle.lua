-- With no job anywhere (queued, popped, running, or waiting to retry) and no
-- batch pending, no batch will be read again: a queued count left over (a
-- batch that expired unread, a queue emptied by hand) is set back to zero.
-- KEYS: queued, then the RQ queue, its intermediate list, started and
-- scheduled registries, then the pending batches. Returns the count taken off.
for i = 2, 3 do if redis.call('LLEN', KEYS[i]) > 0 then return 0 end end
for i = 4, 6 do if redis.call('ZCARD', KEYS[i]) > 0 then return 0 end end
local left = tonumber(redis.call('GET', KEYS[1]) or '0')
if left ~= 0 then redis.call('SET', KEYS[1], 0, 'KEEPTTL') end
return left
