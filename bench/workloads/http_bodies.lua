-- wrk script: POST prepared request bodies, one a line of a file, in a cycle (each thread starts at its own
-- place). bench/harness.py writes the file: for Cerbos, CheckResources requests of the check workload's mix
-- (bench/workloads/check.sql's arithmetic), each carrying the facts the bench database holds for it. Arguments
-- after `--`:
--   path bodies_file [header]
-- where header is an optional "Name: value" sent with every request.
-- done() prints one line "BENCHJSON {...}" that bench/harness.py reads.

local counter = 0

function setup(thread)
    thread:set("tid", counter)
    counter = counter + 1
end

local bodies = {}
local n = 0
local i_next = 0
local path = "/"
local headers = { ["Content-Type"] = "application/json" }

function init(args)
    path = args[1]
    for line in io.lines(args[2]) do
        if line ~= "" then
            n = n + 1
            bodies[n] = line
        end
    end
    if n == 0 then
        error("no request bodies in " .. args[2])
    end
    if args[3] and args[3] ~= "" then
        local name, value = args[3]:match("^([^:]+):%s*(.*)$")
        if name then headers[name] = value end
    end
    -- Threads start far apart in the cycle, so that they do not send the same request at the same time.
    i_next = ((tid or 0) * 7919) % n
end

function request()
    i_next = i_next % n + 1
    return wrk.format("POST", path, headers, bodies[i_next])
end

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        'BENCHJSON {"requests":%d,"duration_us":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
            .. '"p50_us":%d,"p95_us":%d,"p99_us":%d,"mean_us":%.1f,"max_us":%d}\n',
        summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
        latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.mean, latency.max))
end
