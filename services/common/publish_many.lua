-- KEYS: history. ARGV: history maxlen, channel, envelope...; returns the event ids.
local ids = {}
for i = 3, #ARGV do
  ids[#ids + 1] = publish(KEYS[1], ARGV[1], ARGV[2], ARGV[i])
end
return ids
