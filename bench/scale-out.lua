-- bench/scale-out.sh: allowed cross-origin traffic through HAProxy, every
-- response expected to succeed. Alternates an allowed preflight (204,
-- answered by the gateway) and an allowed GET proxied to the upstream (200).
-- wrk counts non-2xx/3xx answers as errors.status and lost connections as
-- errors.connect/read/write/timeout; the report prints them all.
local origin = "https://app.example.com"
local requests = {
  wrk.format("OPTIONS", "/api/items", {
    ["Origin"] = origin,
    ["Access-Control-Request-Method"] = "PUT",
    ["Access-Control-Request-Headers"] = "content-type",
  }),
  wrk.format("GET", "/api/items", { ["Origin"] = origin }),
}
local n = 0

request = function()
  n = n + 1
  return requests[n % 2 + 1]
end

done = function(summary, latency, _)
  local e = summary.errors
  local failed = e.connect + e.read + e.write + e.status + e.timeout
  io.write(string.format(
    "RESULT requests=%d failed=%d connect=%d read=%d write=%d status=%d timeout=%d p99_ms=%.2f\n",
    summary.requests, failed, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(99) / 1000))
end
