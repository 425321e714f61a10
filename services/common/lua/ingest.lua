-- One group commit, run inside the same MULTI as the RQ job that reads the
-- batch, so an item is either fully in (dedup mark, batch, flush stream entry,
-- realtime envelope) or not in at all.
-- ARGV: dedup prefix, dedup ttl, batch key, flush stream, batch id,
--       history key, history maxlen, channel, stats key (accepted items by kind),
--       backlog key (items not yet in Postgres; the flusher takes them off, see flush_ack.lua), then per item: kind, idempotency key, record json, envelope ('' for none).
-- The batch is a JSON object of arrays by kind: {"tick": [...], "trade": [...]}.
-- Returns one flag per item: 1 accepted, 0 duplicate.
local dprefix, ttl, bkey, fstream, bid = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local hist, hmax, chan, stats, backlog = ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local flags, by_kind, kinds, accepted = {}, {}, {}, 0
for i = 11, #ARGV, 4 do
  local kind = ARGV[i]
  if redis.call('SET', dprefix .. kind .. ':' .. ARGV[i + 1], bid, 'NX', 'EX', ttl) then
    flags[#flags + 1] = 1
    accepted = accepted + 1
    if not by_kind[kind] then
      by_kind[kind] = {}
      kinds[#kinds + 1] = kind
    end
    table.insert(by_kind[kind], ARGV[i + 2])
    if ARGV[i + 3] ~= '' then publish(hist, hmax, chan, ARGV[i + 3]) end
  else
    flags[#flags + 1] = 0
  end
end
if #kinds > 0 then
  local parts = {}
  for _, kind in ipairs(kinds) do
    parts[#parts + 1] = '"' .. kind .. '":[' .. table.concat(by_kind[kind], ',') .. ']'
    redis.call('HINCRBY', stats, kind, #by_kind[kind])
  end
  local body = '{' .. table.concat(parts, ',') .. '}'
  redis.call('SET', bkey, body)
  redis.call('XADD', fstream, '*', 'batch', bid, 'items', body, 'n', accepted)
  redis.call('INCRBY', backlog, accepted)
end
return flags
