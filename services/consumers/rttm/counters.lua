-- Sums of the RTTM per-second counters over the snapshot's spans, in one call rather than a
-- reply per second to parse in Python (a snapshot a second reads a few hundred seconds).
-- KEYS: the seconds' counter hashes, newest first. ARGV: the spans in seconds (window, minute,
-- now), then how many seconds the trade series covers.
-- Returns {window, minute, now} as flat field/sum lists, then the series' trade counts, newest first.
local spans = { tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]) }
local nseries = tonumber(ARGV[4])
local sums = { {}, {}, {} }
local series = {}
-- No trade event in any of the seconds (an idle pipeline): one command, not a HGETALL per second.
if redis.call('EXISTS', unpack(KEYS)) == 0 then
  for i = 1, math.min(nseries, #KEYS) do series[i] = 0 end
  return { {}, {}, {}, series }
end
for i, key in ipairs(KEYS) do
  local h = redis.call('HGETALL', key)
  local trades = 0
  for j = 1, #h, 2 do
    local field, value = h[j], tonumber(h[j + 1])
    if field == 'trade' then trades = value end
    for s = 1, 3 do
      if i <= spans[s] then sums[s][field] = (sums[s][field] or 0) + value end
    end
  end
  if i <= nseries then series[i] = trades end
end
local out = {}
for s = 1, 3 do
  local flat = {}
  for field, value in pairs(sums[s]) do
    flat[#flat + 1] = field
    flat[#flat + 1] = value
  end
  out[s] = flat
end
out[4] = series
return out
