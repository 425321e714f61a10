-- Apply one batch of RTTM events to the monitoring state, atomically and once.
--
-- KEYS: the batch (a hash; its field `r` marks it applied). ARGV: input json:
--   {k = {counters, trend, trade: name prefixes; queues, active, due, late, rev: names},
--    max_queues, now, ttl, grace,
--   counters = {{second_ms, field, n}...}      pre-summed per batch by Python
--   queues   = {{field, snapshot_ms, produced, consumed, bucket_ms}...}
--   trades   = {{trade_id, event_key, t, service, type, status, terminal}...},
--   rev = a new token: stored in k.rev, so the ticker knows the state changed since it last looked}
--   (terminal: 0 not terminal, 1 success, 2 failure)
-- Every update commutes: counters add, queue snapshots keep the newest,
-- a trade's events are a set, its latest time a max, and a terminal event
-- wins over any order of the others. So the state depends on which events
-- were applied, not on how they were split into jobs or in which order.

local batch = KEYS[1]
if redis.call('EXISTS', batch) == 0 or redis.call('HSETNX', batch, 'r', '1') == 0 then
  return 0 -- a retried job: already applied (or done and gone)
end
local input = cjson.decode(ARGV[1])
local k, ttl, now, grace, max_queues = input.k, input.ttl, input.now, input.grace, input.max_queues
redis.call('SET', k.rev, input.rev, 'EX', ttl)

local touched = {}
for _, c in ipairs(input.counters) do
  local key = k.counters .. c[1]
  redis.call('HINCRBY', key, c[2], c[3])
  touched[key] = true
end
for key in pairs(touched) do redis.call('EXPIRE', key, ttl) end

-- The latest metric per partition; at most max_queues partitions (a new one past that is counted, not kept).
local function newer(key, field, q, cap)
  local cur = redis.call('HGET', key, field)
  if not cur and cap and redis.call('HLEN', key) >= cap then
    redis.call('HINCRBY', k.late, 'queues_over_cap', 1)
    return
  end
  if cur and tonumber(string.match(cur, '^[^|]+')) >= tonumber(q[2]) then return end
  redis.call('HSET', key, field, q[2] .. '|' .. q[3] .. '|' .. q[4])
end
for _, q in ipairs(input.queues) do
  newer(k.queues, q[1], q, max_queues)
  local trend = k.trend .. q[5]
  newer(trend, q[1], q, max_queues)
  redis.call('EXPIRE', trend, ttl)
end

local late = 0
for _, e in ipairs(input.trades) do
  local id, key = e[1], k.trade .. e[1]
  if redis.call('HEXISTS', key, '~final') == 1 then
    late = late + 1 -- the trade was measured already; the event is stored, not counted
  else
    redis.call('HSET', key, e[2], e[3] .. '|' .. e[4] .. '|' .. e[5] .. '|' .. e[6])
    redis.call('EXPIRE', key, ttl)
    if e[7] > 0 then
      redis.call('HSET', key, '~term', e[7])
      redis.call('ZREM', k.active, id)
      redis.call('ZADD', k.due, 'NX', now + grace, id)
    elseif redis.call('HEXISTS', key, '~term') == 0 then
      redis.call('ZADD', k.active, 'GT', e[3], id)
    end
  end
end
if late > 0 then redis.call('HINCRBY', k.late, 'events', late) end
return 1
