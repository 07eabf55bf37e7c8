-- wrk script: GET /api/v1/health on the same server as the check (the HTTP floor). Optional argument after `--`:
-- a "Name: value" header sent with every request. done() prints "BENCHJSON {...}" for bench/harness.py.

local headers = {}

function init(args)
    if args[1] and args[1] ~= "" then
        local name, value = args[1]:match("^([^:]+):%s*(.*)$")
        if name then headers[name] = value end
    end
end

function request()
    return wrk.format("GET", "/api/v1/health", headers)
end

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        'BENCHJSON {"requests":%d,"duration_us":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
            .. '"p50_us":%d,"p95_us":%d,"p99_us":%d,"mean_us":%.1f,"max_us":%d}\n',
        summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
        latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.mean, latency.max))
end
