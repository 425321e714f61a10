-- Shared by the scripts that publish realtime envelopes (prepended at load time).
-- The envelope is stored without its id in the history stream, whose entry id
-- becomes the event id; the published copy carries the id as its first field.
local function publish(history, maxlen, channel, env)
  local id = redis.call('XADD', history, 'MAXLEN', '~', maxlen, '*', 'e', env)
  redis.call('PUBLISH', channel, '{"id":"' .. id .. '",' .. string.sub(env, 2))
  return id
end
