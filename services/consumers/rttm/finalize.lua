-- Add the latencies of measured trades to the sketches, each trade once.
-- KEYS: stages set, due zset. ARGV: trade key prefix, latency key prefix, ttl, max stages,
--   json [[trade_id, bucket_ms, [[stage, sketch bucket, n]...]]...]
-- A trade is marked ~final before its counts are added, so a second
-- finalizer (or a retry) adds nothing; events arriving afterwards are late.
-- At most max stages get sketches: a stage past that is not measured (counted in the result).
local stages, due = KEYS[1], KEYS[2]
local trade_prefix, lat_prefix, ttl, max_stages = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local measured, over = 0, 0
for _, t in ipairs(cjson.decode(ARGV[5])) do
  local trade = trade_prefix .. t[1]
  if redis.call('HSETNX', trade, '~final', '1') == 1 then
    redis.call('EXPIRE', trade, ttl)
    for _, s in ipairs(t[3]) do
      if redis.call('SISMEMBER', stages, s[1]) == 1 or redis.call('SCARD', stages) < max_stages then
        redis.call('SADD', stages, s[1])
        redis.call('EXPIRE', stages, ttl) -- services measured no more are forgotten with their sketches
        local key = lat_prefix .. s[1] .. ':' .. t[2]
        redis.call('HINCRBY', key, s[2], s[3])
        redis.call('EXPIRE', key, ttl)
      else
        over = over + 1
      end
    end
    measured = measured + 1
  end
  redis.call('ZREM', due, t[1])
end
return { measured, over }
