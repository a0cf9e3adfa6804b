-- POST JSON bodies in rotation and print a machine-readable summary.
-- Bodies: one JSON document per line in the file named by $WRK_BODIES.
-- Each wrk thread starts at a different offset so threads do not move in step.

local path = os.getenv("WRK_BODIES")
local bodies = {}
for line in io.lines(path) do
  if #line > 0 then bodies[#bodies + 1] = line end
end
assert(#bodies > 0, "no bodies in " .. tostring(path))

local counter = 0
local thread_offset = 0
local headers = { ["Content-Type"] = "application/json" }
local target = os.getenv("WRK_PATH") or "/predict"

function setup(thread)
  thread:set("thread_offset", math.random(#bodies))
end

function request()
  counter = counter + 1
  local body = bodies[((counter + thread_offset) % #bodies) + 1]
  return wrk.format("POST", target, headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
