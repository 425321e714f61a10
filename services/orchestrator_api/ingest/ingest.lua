-- One group commit, in one script, so an item is either fully in (dedup
-- digest, batch and its place among the pending ones, flush stream entry,
-- realtime envelope) or not in at all. The RQ job that drains the pending
-- batches is enqueued after it (commit.py).
-- KEYS: batch, flush stream, history, accepted (items by kind), backlog (items
--       not yet in Postgres; the flusher takes them off, see flush_ack.lua),
--       symbols (zset by last tick), queued (items whose batch waits for its
--       job; batch_done.lua takes them off), pending (batches no job has
--       claimed yet, by commit time; consumers/claim.lua), the RQ queue and
--       the drainer (consumers/drain.lua; both only read), then per kind of
--       the commit: its dedup set of the current window bucket and of the one
--       before.
-- ARGV: batch id, history maxlen, channel, dedup expire-at (unix s), now (ms),
--       symbols idle before (ms), max symbols, batch ttl (s), number of kinds
--       K, K kind names, number of requests R, R item counts, then per item:
--       kind index (1..K), digest, record json, envelope ('' for none),
--       symbol ('' for none).
-- A request whose ticks would bring the number of known symbols over the cap
-- is refused whole. The batch is a hash; its `items` field a JSON object of
-- arrays by kind: {"tick": [...], "trade": [...]}, its `n` field their count.
-- Returns {flags, backlog, queued, jobs, draining}: one flag per item (1
-- accepted, 0 duplicate, -1 refused: symbol cap), then the figures of
-- admission control after this commit (commit.py), so reading them costs no
-- round trip, and 1 if a job is draining (it will take this batch: the API
-- enqueues none), else 0.
local bkey, fstream, hist, stats, backlog, symbols, queued = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local pending, jobs, drainer = KEYS[8], KEYS[9], KEYS[10]
local bid, hmax, chan, expire_at = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now, idle_before, max_symbols, ttl = ARGV[5], ARGV[6], tonumber(ARGV[7]), ARGV[8]
local nkinds = tonumber(ARGV[9])
local kind_names = {}
for k = 1, nkinds do kind_names[k] = ARGV[9 + k] end
local at = 10 + nkinds
local nrequests = tonumber(ARGV[at])
local counts = {}
for r = 1, nrequests do counts[r] = tonumber(ARGV[at + r]) end
local first = at + nrequests + 1
local ITEM = 5

redis.call('ZREMRANGEBYSCORE', symbols, '-inf', '(' .. idle_before)
local known = redis.call('ZCARD', symbols)
local seen = {} -- symbols this commit already touched

-- A request is admitted when its new symbols fit under the cap.
local admitted, i = {}, first
for r = 1, nrequests do
  local fresh, list = {}, {}
  for j = 0, counts[r] - 1 do
    local sym = ARGV[i + j * ITEM + 4]
    if sym ~= '' and not seen[sym] and not fresh[sym] then
      fresh[sym] = true
      list[#list + 1] = sym
    end
  end
  local new = 0
  for _, sym in ipairs(list) do
    if not redis.call('ZSCORE', symbols, sym) then new = new + 1 end
  end
  admitted[r] = known + new <= max_symbols
  if admitted[r] then
    known = known + new
    for _, sym in ipairs(list) do
      seen[sym] = true
      redis.call('ZADD', symbols, now, sym)
    end
  end
  i = i + counts[r] * ITEM
end

-- Dedup in a few calls per kind rather than two per item: which digests the
-- window's two sets hold (SMISMEMBER), then one SADD of the new ones. An item
-- is new when neither set holds its digest and no earlier item of this commit
-- had it: the same answer as SISMEMBER + SADD item by item.
local by_key = {} -- dedup key index k -> {digests...} of the admitted items, in order
i = first
for r = 1, nrequests do
  if admitted[r] then
    for j = 0, counts[r] - 1 do
      local k = tonumber(ARGV[i + j * ITEM])
      by_key[k] = by_key[k] or {}
      table.insert(by_key[k], ARGV[i + j * ITEM + 1])
    end
  end
  i = i + counts[r] * ITEM
end
local held = {} -- k -> set of digests either window set holds
local CHUNK = 1000 -- unpack has a limit on its arguments
for k, digests in pairs(by_key) do
  local set = {}
  for _, key in ipairs({KEYS[9 + 2 * k], KEYS[10 + 2 * k]}) do
    for c = 1, #digests, CHUNK do
      local last = math.min(c + CHUNK - 1, #digests)
      local hits = redis.call('SMISMEMBER', key, unpack(digests, c, last))
      for n = 1, #hits do
        if hits[n] == 1 then set[digests[c + n - 1]] = true end
      end
    end
  end
  held[k] = set
end

local flags, by_kind, order, accepted = {}, {}, {}, 0
local added = {} -- k -> the digests this commit adds
i = first
for r = 1, nrequests do
  for _ = 1, counts[r] do
    local k = tonumber(ARGV[i])
    if not admitted[r] then
      flags[#flags + 1] = -1
    else
      local digest = ARGV[i + 1]
      if not held[k][digest] then
        held[k][digest] = true -- a later item of this commit with it is a duplicate
        added[k] = added[k] or {}
        table.insert(added[k], digest)
        flags[#flags + 1] = 1
        accepted = accepted + 1
        local kind = kind_names[k]
        if not by_kind[kind] then
          by_kind[kind] = {}
          order[#order + 1] = kind
        end
        table.insert(by_kind[kind], ARGV[i + 2])
        if ARGV[i + 3] ~= '' then publish(hist, hmax, chan, ARGV[i + 3]) end
      else
        flags[#flags + 1] = 0
      end
    end
    i = i + ITEM
  end
end
for k, digests in pairs(added) do
  local cur = KEYS[9 + 2 * k]
  for c = 1, #digests, CHUNK do
    redis.call('SADD', cur, unpack(digests, c, math.min(c + CHUNK - 1, #digests)))
  end
  redis.call('EXPIREAT', cur, expire_at)
end
if #order > 0 then
  local parts = {}
  for _, kind in ipairs(order) do
    parts[#parts + 1] = '"' .. kind .. '":[' .. table.concat(by_kind[kind], ',') .. ']'
    redis.call('HINCRBY', stats, kind, #by_kind[kind])
  end
  local body = '{' .. table.concat(parts, ',') .. '}'
  redis.call('HSET', bkey, 'items', body, 'n', accepted)
  redis.call('XADD', fstream, '*', 'batch', bid, 'items', body, 'n', accepted)
  redis.call('INCRBY', backlog, accepted)
  redis.call('INCRBY', queued, accepted)
  redis.call('ZADD', pending, now, bid)
  redis.call('EXPIRE', bkey, ttl) -- a batch normally dies with its job (commit.py)
end
-- The counts outlive every batch they count: should a batch expire unread, the count is corrected an
-- hour after ingest stops at the latest (and by the reaper, see reaper.py).
redis.call('EXPIRE', queued, ttl)
redis.call('EXPIRE', pending, ttl)
local draining = redis.call('EXISTS', drainer)
return {flags, redis.call('GET', backlog), redis.call('GET', queued), redis.call('LLEN', jobs), draining}
