-- The flusher's acknowledgement of a committed batch: ack and delete its stream
-- entries and take their items off the backlog count. An entry counts only if
-- this call deleted it, so a batch written twice (a claimed entry, a re-run
-- after a crash) is taken off once.
-- KEYS: flush stream, backlog key. ARGV: group, then per entry: id, item count.
-- Returns the items taken off the backlog.
local total = 0
for i = 2, #ARGV, 2 do
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[i])
  if redis.call('XDEL', KEYS[1], ARGV[i]) == 1 then total = total + tonumber(ARGV[i + 1]) end
end
if total > 0 then redis.call('DECRBY', KEYS[2], total) end
return total
