-- bench/chat.lua: wrk's request for the non-streaming rows (bench/run.sh):
-- POST of one small chat completion; the token comes from the environment
-- (BENCH_AUTH: the whole Authorization value), the body from BENCH_BODY.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = os.getenv("BENCH_BODY") or
    '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello."}]}'
local auth = os.getenv("BENCH_AUTH")
if auth ~= nil and auth ~= "" then wrk.headers["Authorization"] = auth end

local errs = 0
response = function(status, headers, body)
    if status ~= 200 then errs = errs + 1 end
end

done = function(summary, latency, requests)
    io.write(string.format('{"requests":%d,"duration_us":%d,"errors_connect":%d,'
        .. '"errors_read":%d,"errors_write":%d,"errors_status":%d,"errors_timeout":%d,'
        .. '"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.1f}\n',
        summary.requests, summary.duration, summary.errors.connect,
        summary.errors.read, summary.errors.write, summary.errors.status,
        summary.errors.timeout, latency:percentile(50), latency:percentile(90),
        latency:percentile(99), latency.mean))
end
