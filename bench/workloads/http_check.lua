-- wrk script: POST /api/v1/authz/check with the same request mix as bench/workloads/check.sql (same arithmetic,
-- Lua's own random numbers, seeded per thread). Arguments after `--`:
--   spaces breadth depth members resq gs alevels [header]
-- where header is an optional "Name: value" sent with every request (an API key, once the front has them).
-- done() prints one line "BENCHJSON {...}" that bench/harness.py reads.

local threads = {}
local counter = 0

function setup(thread)
    thread:set("tid", counter)
    counter = counter + 1
    table.insert(threads, thread)
end

local bodies = {}
local n = 0
local i_next = 0
local headers = { ["Content-Type"] = "application/json" }

local function ipow(b, e)
    local r = 1
    for _ = 1, e do r = r * b end
    return r
end

local function idiv(a, b) return math.floor(a / b) end

function init(args)
    local spaces, breadth, depth = tonumber(args[1]), tonumber(args[2]), tonumber(args[3])
    local members, resq, gs, alevels = tonumber(args[4]), tonumber(args[5]), tonumber(args[6]), tonumber(args[7])
    if args[8] and args[8] ~= "" then
        local name, value = args[8]:match("^([^:]+):%s*(.*)$")
        if name then headers[name] = value end
    end
    math.randomseed(42 + (tid or 0))
    local actions = { "read", "reject", "approve" }
    for k = 1, 10000 do
        local i = math.random(0, members - 1)
        local s = i % spaces
        local t = idiv(i, spaces)
        local la = 1 + t % alevels
        local ka = idiv(t, alevels) % ipow(breadth, la)
        local kind = math.random(1, 100)
        local g
        if kind <= 55 then
            local lp = la + math.random(0, depth - la)
            local span = ipow(breadth, lp - la)
            g = idiv(ipow(breadth, lp) - breadth, breadth - 1) + ka * span + math.random(0, span - 1)
        else
            g = math.random(0, gs - 1)
        end
        local j = (math.random(0, idiv(resq - 1 - g, gs)) * gs + g) * spaces + s
        local a = 1
        if kind > 95 then
            j = j + spaces * resq
        elseif kind > 90 then
            j = j - s + (s + 1) % spaces
        elseif kind > 85 then
            a = 2
        elseif kind > 80 then
            a = 3
        end
        bodies[k] = string.format(
            '{"actor":{"user_id":"bu_%d","member_id":"bm_%d","user_member_id":"bum_%d","space_id":"bsp_%d"},'
                .. '"resource_type":"invoice","resource_id":"bres_%d","action":"%s"}',
            i, i, i, s, j, actions[a])
    end
    n = #bodies
end

function request()
    i_next = i_next % n + 1
    return wrk.format("POST", "/api/v1/authz/check", headers, bodies[i_next])
end

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        'BENCHJSON {"requests":%d,"duration_us":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
            .. '"p50_us":%d,"p95_us":%d,"p99_us":%d,"mean_us":%.1f,"max_us":%d}\n',
        summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
        latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.mean, latency.max))
end
