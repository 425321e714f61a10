-- calc-a: apply a job's batches of ticks to the per-symbol state, atomically and each once.
--
-- KEYS: the batches (hashes; a batch's field `a` marks it applied). ARGV: candles kept per
-- interval, idle expiry (s), input json:
--   {w = window ms, iv = {{name, ms}...}, b = {syms...} (one per key, in KEYS order), where syms is
--    {{s = symbol, k = {win, px, last, agg} key names,
--    cp = {iv -> candle key prefix}, ci = {iv -> candle index key}, t = {ts...}, m = {member...},
--    p = {price...}, v = {volume...}, top = {index...} (batch's 10 latest),
--    c = {{iv, b, o, ot, oe, h, l, c, ct, ce, v, n}...}}...}
-- One call for all of a job's batches, not one per batch: at one tick per batch the call and the
-- read-back cost more than the tick.
-- A member is "event_id \1 price \1 volume": sorted sets order equal scores by
-- member bytes, so (ts, event_id) order comes for free; prices and volumes
-- travel as the strings Python wrote, and sums are stored with %.17g, so no
-- digit is lost to Lua's 14-digit number formatting.
--
-- State per symbol (names from Python, services/common/keys.py):
--   win  zset ts -> member     ticks with ts in (latest - window, latest]
--   px   zset price -> member  the same ticks by price (high/low of the window)
--   last zset ts -> member     the 10 latest ticks
--   agg  hash latest, vol, pv, n (window sums), version (+1 per applied batch of the symbol)
--   cp[iv] .. bucket hash o ot oe h l c ct ce v n; ci[iv] zset of buckets
-- Every key written gets the idle expiry again, so a symbol nobody sends is
-- forgotten whole; an old candle expires that long after its last tick.
-- Returns per symbol of the batches (in order of first appearance), read after all are applied:
-- symbol, {latest, vol, pv, n, version}, last (withscores), high, low (withscores), and the hash
-- of the candle holding `latest` per interval.

local keep, idle = tonumber(ARGV[1]), ARGV[2]
local input = cjson.decode(ARGV[3])
local WINDOW_MS, INTERVALS = input.w, input.iv
local SEP = '\1'

local function f17(x) return string.format('%.17g', x) end

-- (t1, e1) < (t2, e2) with event ids compared bytewise (Lua's < follows the locale).
local function before(t1, e1, t2, e2)
  if t1 ~= t2 then return t1 < t2 end
  for i = 1, math.min(#e1, #e2) do
    local a, b = string.byte(e1, i), string.byte(e2, i)
    if a ~= b then return a < b end
  end
  return #e1 < #e2
end

local function values(member)
  local first = string.find(member, SEP, 1, true)
  local second = string.find(member, SEP, first + 1, true)
  return tonumber(string.sub(member, first + 1, second - 1)), tonumber(string.sub(member, second + 1))
end

-- Variadic calls in chunks, under Lua's unpack limit.
local function chunked(cmd, key, items)
  for i = 1, #items, 1000 do
    redis.call(cmd, key, unpack(items, i, math.min(i + 999, #items)))
  end
end

-- Folds contribution c into acc, both of one bucket (a stored candle, or another contribution).
local function combine(acc, c)
  if before(c.ot, c.oe, acc.ot, acc.oe) then acc.o, acc.ot, acc.oe = c.o, c.ot, c.oe end
  if before(acc.ct, acc.ce, c.ct, c.ce) then acc.c, acc.ct, acc.ce = c.c, c.ct, c.ce end
  if tonumber(c.h) > tonumber(acc.h) then acc.h = c.h end
  if tonumber(c.l) < tonumber(acc.l) then acc.l = c.l end
  acc.v, acc.n = f17(tonumber(acc.v) + tonumber(c.v)), acc.n + c.n
end

local function store_candle(key, t)
  redis.call('HSET', key, 'o', t.o, 'ot', t.ot, 'oe', t.oe, 'h', t.h, 'l', t.l,
    'c', t.c, 'ct', t.ct, 'ce', t.ce, 'v', t.v, 'n', t.n)
  redis.call('EXPIRE', key, idle)
end

local function merge_candle(sym, c)
  local key = sym.cp[c.iv] .. c.b
  local cur = redis.call('HMGET', key, 'o', 'ot', 'oe', 'h', 'l', 'c', 'ct', 'ce', 'v', 'n')
  if not cur[1] then
    local index = sym.ci[c.iv]
    redis.call('ZADD', index, c.b, c.b)
    redis.call('EXPIRE', index, idle)
    if redis.call('ZCARD', index) > keep then
      local oldest = redis.call('ZPOPMIN', index)[1]
      redis.call('DEL', sym.cp[c.iv] .. oldest)
      if oldest == c.b then return end -- older than everything kept
    end
    store_candle(key, c)
    return
  end
  local m = { o = cur[1], ot = tonumber(cur[2]), oe = cur[3], h = cur[4], l = cur[5],
    c = cur[6], ct = tonumber(cur[7]), ce = cur[8], v = cur[9], n = tonumber(cur[10]) }
  combine(m, c)
  store_candle(key, m)
end

-- One symbol's parts (its entry in each fresh batch) applied together: the state's keys are read,
-- written and expired once per call, not once per batch.
local function apply(sym, parts)
  local k = sym.k
  local agg = k.agg
  local st = redis.call('HMGET', agg, 'latest', 'vol', 'pv', 'n')
  local latest = tonumber(st[1]) or -math.huge
  local vol, pv, n = tonumber(st[2]) or 0, tonumber(st[3]) or 0, tonumber(st[4]) or 0
  for _, part in ipairs(parts) do
    for i = 1, #part.t do
      if part.t[i] > latest then latest = part.t[i] end
    end
  end
  local lo = latest - WINDOW_MS
  -- Ticks inside the window join it; older ones never do (so nothing is added then taken away).
  local by_ts, by_px, top = {}, {}, {}
  for _, part in ipairs(parts) do
    for i = 1, #part.t do
      if part.t[i] > lo then
        local p, v = tonumber(part.p[i]), tonumber(part.v[i])
        vol, pv, n = vol + v, pv + p * v, n + 1
        by_ts[#by_ts + 1] = part.t[i]; by_ts[#by_ts + 1] = part.m[i]
        by_px[#by_px + 1] = part.p[i]; by_px[#by_px + 1] = part.m[i]
      end
    end
    for _, i in ipairs(part.top) do
      top[#top + 1] = part.t[i]; top[#top + 1] = part.m[i]
    end
  end
  if #by_ts > 0 then
    chunked('ZADD', k.win, by_ts)
    chunked('ZADD', k.px, by_px)
  end
  local expired = redis.call('ZRANGEBYSCORE', k.win, '-inf', lo)
  if #expired > 0 then
    for _, member in ipairs(expired) do
      local p, v = values(member)
      vol, pv, n = vol - v, pv - p * v, n - 1
    end
    redis.call('ZREMRANGEBYSCORE', k.win, '-inf', lo)
    chunked('ZREM', k.px, expired)
  end
  if n <= 0 then vol, pv, n = 0, 0, 0 end -- an empty window has exactly zero sums
  -- Each part's 10 latest: the zset keeps the 10 latest of them all ((ts, member) order, as below).
  chunked('ZADD', k.last, top)
  redis.call('ZREMRANGEBYRANK', k.last, 0, -11)
  local merged, buckets = {}, {}
  for _, part in ipairs(parts) do
    for _, c in ipairs(part.c) do
      local id = c.iv .. SEP .. c.b
      if merged[id] then combine(merged[id], c) else merged[id] = c; buckets[#buckets + 1] = id end
    end
  end
  for _, id in ipairs(buckets) do merge_candle(sym, merged[id]) end
  redis.call('HSET', agg, 'latest', string.format('%.0f', latest), 'vol', f17(vol), 'pv', f17(pv), 'n', n)
  redis.call('HINCRBY', agg, 'version', #parts)
  for _, key in ipairs({ k.win, k.px, k.last, agg }) do redis.call('EXPIRE', key, idle) end
end

-- Each batch applied once: a retried job (the batch still there, marked) only reads back. A run
-- after a batch is gone writes nothing of it either, not even the mark.
local read, order, parts = {}, {}, {}
for i, syms in ipairs(input.b) do
  local batch = KEYS[i]
  local fresh = redis.call('EXISTS', batch) == 1 and redis.call('HSETNX', batch, 'a', '1') == 1
  for _, sym in ipairs(syms) do
    if not read[sym.s] then
      read[sym.s], parts[sym.s] = sym, {}
      order[#order + 1] = sym.s
    end
    if fresh then table.insert(parts[sym.s], sym) end
  end
end
for _, name in ipairs(order) do
  if #parts[name] > 0 then apply(read[name], parts[name]) end
end
local out = {}
for _, name in ipairs(order) do
  local sym = read[name]
  local k = sym.k
  local st = redis.call('HMGET', k.agg, 'latest', 'vol', 'pv', 'n', 'version')
  local latest = tonumber(st[1])
  if latest then -- nil only when the state has expired since: nothing to read back
  local candles = {}
  for _, iv in ipairs(INTERVALS) do
    local bucket = string.format('%.0f', latest - latest % iv[2])
    candles[#candles + 1] = bucket
    candles[#candles + 1] = redis.call('HGETALL', sym.cp[iv[1]] .. bucket)
  end
  out[#out + 1] = {
    sym.s, st,
    redis.call('ZRANGE', k.last, 0, -1, 'WITHSCORES'),
    redis.call('ZRANGE', k.px, -1, -1, 'WITHSCORES'),
    redis.call('ZRANGE', k.px, 0, 0, 'WITHSCORES'),
    candles,
  }
  end
end
return out
