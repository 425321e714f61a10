-- ARGV: history key, history maxlen, channel, envelope...; returns the event ids.
local ids = {}
for i = 4, #ARGV do
  ids[#ids + 1] = publish(ARGV[1], ARGV[2], ARGV[3], ARGV[i])
end
return ids
