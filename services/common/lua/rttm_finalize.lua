-- Add the latencies of measured trades to the sketches, each trade once.
-- ARGV: rttm key prefix, ttl, json [[trade_id, bucket_ms, [[stage, sketch bucket, n]...]]...]
-- A trade is marked ~final before its counts are added, so a second
-- finalizer (or a retry) adds nothing; events arriving afterwards are late.
local p, ttl = ARGV[1], ARGV[2]
local measured = 0
for _, t in ipairs(cjson.decode(ARGV[3])) do
  local trade = p .. 'tr:' .. t[1]
  if redis.call('HSETNX', trade, '~final', '1') == 1 then
    redis.call('EXPIRE', trade, ttl)
    for _, s in ipairs(t[3]) do
      local key = p .. 'lat:' .. s[1] .. ':' .. t[2]
      redis.call('HINCRBY', key, s[2], s[3])
      redis.call('EXPIRE', key, ttl)
      redis.call('SADD', p .. 'stages', s[1])
    end
    measured = measured + 1
  end
  redis.call('ZREM', p .. 'due', t[1])
end
return measured
