-- A job's batches: the ones it claimed before (a retry of the job, same id),
-- or else its own batch and the oldest pending ones, up to a budget of items.
-- A batch is taken by setting its `c` field to the job id, once: two jobs
-- never take the same batch, and a job's own batch that was never pending (a
-- job an older mdstack enqueued) is taken all the same. A batch claimed by a
-- job that failed for good is dropped with it (tasks.forget_batch); one whose
-- job died is taken again by the job's retry.
-- KEYS: pending, the job's claims set, then the key of the job's own batch.
-- ARGV: max items, batch key prefix, claims TTL (s), job id. Returns the batch ids.
local pending, claims, own = KEYS[1], KEYS[2], KEYS[3]
local budget, prefix, ttl, job = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4]
local held = redis.call('SMEMBERS', claims)
if #held > 0 then return held end
local taken, items = {}, 0
local function take(id)
  local key = prefix .. id
  if redis.call('EXISTS', key) == 1 and redis.call('HSETNX', key, 'c', job) == 1 then
    taken[#taken + 1] = id
    items = items + tonumber(redis.call('HGET', key, 'n') or '0')
  end
end
local own_id = string.sub(own, #prefix + 1)
redis.call('ZREM', pending, own_id)
take(own_id)
while items < budget do
  local oldest = redis.call('ZRANGE', pending, 0, 99)
  if #oldest == 0 then break end
  for _, id in ipairs(oldest) do
    redis.call('ZREM', pending, id)
    take(id)
    if items >= budget then break end
  end
end
for i = 1, #taken, 1000 do  -- in slices: unpack has a limit on its arguments
  redis.call('SADD', claims, unpack(taken, i, math.min(i + 999, #taken)))
end
if #taken > 0 then redis.call('EXPIRE', claims, ttl) end
return taken
