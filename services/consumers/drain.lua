-- The drainer: one job at a time goes on taking pending batches round after
-- round (drain.py), and while its key is set the API enqueues no job
-- (ingest.lua reads it). Leaving is atomic with the pending batches: a job
-- leaves only when none is pending, so a batch committed while the key was
-- set is always taken by the drainer; or it hands over, and the caller
-- enqueues a successor for what is pending.
-- KEYS: drainer, pending. ARGV: job id, key TTL (ms), mode:
--   stay  take or keep the key (refreshing its TTL);
--   leave stay if a batch is pending, else drop the key;
--   hand  drop the key.
-- Returns {held, pending}: held 1 if the job holds the key now, 0 if it
-- dropped it, -1 if another job holds it (this one stops draining).
local drainer, pending = KEYS[1], KEYS[2]
local job, ttl, mode = ARGV[1], ARGV[2], ARGV[3]
local owner = redis.call('GET', drainer)
local waiting = redis.call('ZCARD', pending)
if owner and owner ~= job then return {-1, waiting} end
if mode == 'stay' or (mode == 'leave' and waiting > 0) then
  redis.call('SET', drainer, job, 'PX', ttl)
  return {1, waiting}
end
if owner then redis.call('DEL', drainer) end
return {0, waiting}
