-- wrk script: POST the JSON body in WRK_BODY, with the Authorization header WRK_AUTHORIZATION
-- when it is set (e.g. "Bearer <JWT>"); with WRK_DELAY_MS, pause that long after each
-- response on each connection (pacing); print one JSON line with the summary at the end.
--
-- WRK_METHOD=GET sends GETs without a body instead (e.g. GET /healthz, same headers).
-- WRK_ORDER_ID_PREFIX, when set, gives every request a new order id: the body (a JSON object)
-- gets "order_id": <prefix><wrk thread>-<request number> as its first member, so no two
-- requests of a run, nor of runs with different prefixes, place the same order.
local method = os.getenv("WRK_METHOD") or "POST"
wrk.method = method
if method ~= "GET" then
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = os.getenv("WRK_BODY")
end

local authorization = os.getenv("WRK_AUTHORIZATION") or ""
if authorization ~= "" then
  wrk.headers["Authorization"] = authorization
end

local pause = tonumber(os.getenv("WRK_DELAY_MS") or "0")
if pause > 0 then
  function delay()
    return pause
  end
end

local threads_made = 0
function setup(thread)
  threads_made = threads_made + 1
  thread:set("thread_no", threads_made)
end

local id_prefix = os.getenv("WRK_ORDER_ID_PREFIX") or ""
if id_prefix ~= "" and method ~= "GET" then
  local rest = string.sub(wrk.body, 2) -- the body without its opening brace
  local sent = 0
  function request()
    sent = sent + 1
    local body = '{"order_id":"' .. id_prefix .. (thread_no or 1) .. "-" .. sent .. '",' .. rest
    return wrk.format(nil, nil, nil, body)
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"status_errors":%d,"timeouts":%d,"p50_us":%d,"p95_us":%d,' ..
    '"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max,
    latency.mean))
end
