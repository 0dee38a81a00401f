-- Replays pre-generated requests (one per line: METHOD \t PATH \t TOKEN \t BODY \t HEADERS,
-- the last "Name: value|Name: value") and counts answers by status and error code. Each wrk
-- thread starts at its own offset in the file.
--
-- BENCH_RATE (requests/s over all threads, 0 = as fast as possible) paces the load: each
-- thread hands out send slots on a fixed schedule, so the rate is held whatever the answer
-- times are, as long as enough connections are open. A send that finds itself more than one
-- interval behind its slot (every connection was waiting for an answer) counts as `late`:
-- a run with late sends did not hold its rate, and its latencies are understated.
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock, bench_timespec *out);
]]
local clock = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, clock)  -- CLOCK_MONOTONIC
  return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
end

local lines = {}
local counter = 0
local threads = {}
local interval = nil  -- ms between sends of this thread, when paced
local next_slot = nil
codes = {}
late = 0

local function split(line)
  local fields = {}
  for field in (line .. "\t"):gmatch("([^\t]*)\t") do fields[#fields + 1] = field end
  return fields
end

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  local path = os.getenv("BENCH_REQUESTS")
  for line in io.lines(path) do
    local f = split(line)
    local headers = {}
    if f[3] ~= "" then headers["Authorization"] = "Bearer " .. f[3] end
    if f[5] ~= nil and f[5] ~= "" then
      for pair in (f[5] .. "|"):gmatch("([^|]*)|") do
        local name, value = pair:match("^([^:]+):%s*(.*)$")
        if name then headers[name] = value end
      end
    end
    local body = nil
    if f[4] ~= nil and f[4] ~= "" then
      headers["Content-Type"] = "application/json"
      body = f[4]
    end
    lines[#lines + 1] = wrk.format(f[1], f[2], headers, body)
  end
  local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
  counter = math.floor(#lines * id / nthreads)
  local rate = tonumber(os.getenv("BENCH_RATE") or "0")
  if rate > 0 then interval = 1000 * nthreads / rate end
end

function delay()
  if interval == nil then return 0 end
  local now = now_ms()
  if next_slot == nil then next_slot = now end
  if next_slot < now - interval then  -- behind schedule: send now, do not burst to catch up
    late = late + 1
    next_slot = now
  end
  local wait = next_slot - now
  next_slot = next_slot + interval
  return wait
end

function request()
  counter = counter + 1
  if counter > #lines then counter = 1 end
  return lines[counter]
end

function response(status, headers, body)
  local key
  if status < 300 then
    key = tostring(status)
  else
    key = tostring(status) .. " " .. (body:match('"code":"([A-Z_]+)"') or "?")
  end
  codes[key] = (codes[key] or 0) + 1
end

function done(summary, latency, requests)
  local merged = {}
  local behind = 0
  for _, thread in ipairs(threads) do
    local c = thread:get("codes")
    for k, v in pairs(c) do merged[k] = (merged[k] or 0) + v end
    behind = behind + thread:get("late")
  end
  local parts = {}
  for k, v in pairs(merged) do parts[#parts + 1] = string.format('"%s": %d', k, v) end
  -- the distribution at every half percent, so that several runs can be merged
  local quantiles = {}
  for step = 1, 200 do
    quantiles[#quantiles + 1] = string.format("%.3f", latency:percentile(step / 2) / 1000)
  end
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "seconds": %.3f, "errors": {"connect": %d, "read": %d, ' ..
    '"write": %d, "timeout": %d}, "p50_ms": %.3f, "p90_ms": %.3f, "p99_ms": %.3f, ' ..
    '"max_ms": %.3f, "late": %d, "codes": {%s}, "quantiles_ms": [%s]}\n',
    summary.requests, summary.duration / 1e6, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, latency:percentile(50) / 1000,
    latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    behind, table.concat(parts, ", "), table.concat(quantiles, ", ")))
end
