-- wrk posting batches of unique ticks to POST /ingest/ticks at a paced rate (bench/wrk_batches.py runs it).
--
--   wrk -t C -c C -d <seconds + grace>s -H 'Authorization: Basic ...' -H 'Content-Type: application/json' \
--       -s bench/wrk/batch.lua http://api/ingest/ticks -- <run> <batch> <requests/s> <seconds> <threads> <symbols>
--
-- One connection per wrk thread (-t = -c), so each thread's requests and answers pair up one by one: a
-- request is scheduled on the thread's own clock (requests/s over the threads, threads staggered) and
-- its ack latency counts from that scheduled time, not from when a free connection sent it (no
-- coordinated omission). Every tick's ts is its request's scheduled time; its event_id is
-- <run>-<thread>-<request>-<index> (request and index from 1), unique per run. Sends stop <seconds> after
-- the thread's first slot; wrk runs a grace period longer so that the last requests get their answers.
-- done() prints one line, RESULT {json}: the counts, the latency from the schedule of every answer, and
-- per thread the requests answered 2xx, from which the caller knows every acknowledged event_id.
-- <symbols>: SYMBOL:price:price decimals:volume scale:volume decimals,... (the feeder's profiles).

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long sec; long nsec; } wrk_batch_timespec;
  int clock_gettime(int clock, wrk_batch_timespec *t);
]]
local clock = ffi.new("wrk_batch_timespec")

local function now_ms() -- wall clock: ts must be comparable with the server's inserted_at
  ffi.C.clock_gettime(0, clock) -- CLOCK_REALTIME
  return tonumber(clock.sec) * 1000 + tonumber(clock.nsec) / 1e6
end

local PARKED_MS = 3600 * 1000 -- past the end of the schedule: no further request before wrk stops

local threads, thread_count = {}, 0

function setup(thread)
  thread:set("index", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

local run, batch, interval, seconds, threads_total, symbols
local next_slot, stop_at, slot, sent_at, serial

-- Read back by done() through thread:get, so globals.
sent_requests, sent_ticks, answered, acked_ticks, duplicates, non_2xx, max_lag_ms = 0, 0, 0, 0, 0, 0, 0
latencies, acked_requests = {}, {}

function init(args)
  run, batch = args[1], tonumber(args[2])
  local rate = tonumber(args[3]) -- requests/s of the whole run
  seconds, threads_total = tonumber(args[4]), tonumber(args[5])
  interval = 1000 * threads_total / rate -- ms between this thread's requests
  symbols = {}
  for name, price, decimals, volume_scale, volume_decimals in
    args[6]:gmatch("([^:,]+):([^:,]+):([^:,]+):([^:,]+):([^:,]+)") do
    table.insert(symbols, {
      price = tonumber(price),
      volume_scale = tonumber(volume_scale),
      format = string.format(
        '{"symbol":"%s","price":%%.%sf,"volume":%%.%sf,"source":"wrk","ts":%%d,"event_id":"%s-%d-%%d-%%d"}',
        name, decimals, volume_decimals, run, index),
    })
  end
  math.randomseed(1000 + index)
  serial = 0
end

function delay()
  local now = now_ms()
  if not next_slot then -- the first slot: threads staggered over one interval
    next_slot = now + interval * index / threads_total
    stop_at = now + seconds * 1000
  end
  if next_slot >= stop_at then
    return PARKED_MS
  end
  slot = next_slot
  next_slot = next_slot + interval
  return math.max(0, math.floor(slot - now))
end

function request()
  if not slot then -- wrk calls request() once before the run to check the request parses: not a send
    return wrk.format("POST", nil, nil, "[]")
  end
  sent_at = now_ms()
  local start = math.min(slot, sent_at)
  max_lag_ms = math.max(max_lag_ms, sent_at - slot)
  serial = serial + 1
  local ts = math.floor(start)
  local parts = {}
  for i = 1, batch do
    local s = symbols[math.random(#symbols)]
    s.price = s.price * (1 + (math.random() - 0.5) * 2e-4) -- a small random walk per symbol
    local volume = s.volume_scale * (0.01 + math.random())
    parts[i] = string.format(s.format, s.price, volume, ts, serial, i)
  end
  sent_requests = sent_requests + 1
  sent_ticks = sent_ticks + batch
  slot = start -- the latency is counted from here
  return wrk.format("POST", nil, nil, "[" .. table.concat(parts, ",") .. "]")
end

function response(status, headers, body)
  answered = answered + 1
  latencies[answered] = now_ms() - slot
  if status >= 200 and status < 300 then
    acked_requests[#acked_requests + 1] = serial -- one connection: the answer is to the latest request
    acked_ticks = acked_ticks + tonumber(body:match('"accepted":(%d+)') or 0)
    duplicates = duplicates + tonumber(body:match('"duplicates":(%d+)') or 0)
  else
    non_2xx = non_2xx + 1
  end
end

local COUNTS = { "sent_requests", "sent_ticks", "answered", "acked_ticks", "duplicates", "non_2xx" }

function done(summary, latency, requests)
  local totals, lag, all, acked = {}, 0, {}, {}
  for _, name in ipairs(COUNTS) do totals[name] = 0 end
  for _, thread in ipairs(threads) do
    for _, name in ipairs(COUNTS) do totals[name] = totals[name] + thread:get(name) end
    lag = math.max(lag, thread:get("max_lag_ms"))
    for _, ms in ipairs(thread:get("latencies")) do all[#all + 1] = string.format("%.2f", ms) end
    acked[#acked + 1] = string.format('"%d":[%s]', thread:get("index"), table.concat(thread:get("acked_requests"), ","))
  end
  local fields = {}
  for _, name in ipairs(COUNTS) do fields[#fields + 1] = string.format('"%s":%d', name, totals[name]) end
  local e = summary.errors
  io.write(string.format(
    'RESULT {%s,"max_lag_ms":%.2f,"socket_errors":%d,"send_to_ack_p50_ms":%.2f,"send_to_ack_p99_ms":%.2f,' ..
    '"ack_latency_ms":[%s],"acked_requests":{%s}}\n',
    table.concat(fields, ","), lag, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, table.concat(all, ","), table.concat(acked, ",")))
end
