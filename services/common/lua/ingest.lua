-- One group commit of ticks, run inside the same MULTI as the RQ job that reads
-- the batch, so a tick is either fully in (dedup mark, batch, flush stream,
-- tick.received) or not in at all.
-- ARGV: dedup prefix, dedup ttl, batch key, flush stream, batch id,
--       history key, history maxlen, channel, then per tick: event_id, tick json, envelope.
-- Returns one flag per tick: 1 accepted, 0 duplicate.
local dprefix, ttl, bkey, fstream, bid = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local hist, hmax, chan = ARGV[6], ARGV[7], ARGV[8]
local flags, accepted = {}, {}
for i = 9, #ARGV, 3 do
  if redis.call('SET', dprefix .. ARGV[i], bid, 'NX', 'EX', ttl) then
    flags[#flags + 1] = 1
    accepted[#accepted + 1] = ARGV[i + 1]
    publish(hist, hmax, chan, ARGV[i + 2])
  else
    flags[#flags + 1] = 0
  end
end
if #accepted > 0 then
  local body = '[' .. table.concat(accepted, ',') .. ']'
  redis.call('SET', bkey, body)
  redis.call('XADD', fstream, '*', 'batch', bid, 'ticks', body)
end
return flags
