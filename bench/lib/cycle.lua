-- wrk script body (writeWrkScripts in bench/lib/http.mjs puts a `paths` table in front of it):
-- every request takes the next query variant in turn; each wrk thread starts at a different
-- offset. done() prints one JSON line that bench/run reads.

local nthreads = 0

function setup(thread)
  thread:set("offset", nthreads * 7919)
  nthreads = nthreads + 1
end

local i = 0
local headers = { ["Accept"] = "application/fhir+json" }

function init(args)
  i = (offset or 0) % #paths
end

function request()
  i = i % #paths + 1
  return wrk.format("GET", paths[i], headers)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"mean_us":%.1f,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
end
