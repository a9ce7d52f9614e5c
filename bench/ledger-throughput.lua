-- wrk script for bench/ledger-throughput: every request cancels a NEW sandbox benchmark
-- reservation (`res_bench…`, created by the sandbox on its first cancel), so each one is a
-- full ledger write path + one upstream call, never a replay.
-- Env: BENCH_RUN (a run id, letters/digits), BENCH_KEY (client key).

local run = os.getenv("BENCH_RUN") or "0"
local key = os.getenv("BENCH_KEY") or "cg_demo_key_local_only"
local threads = {}
local next_thread = 0

function setup(thread)
  next_thread = next_thread + 1
  thread:set("tid", next_thread)
  table.insert(threads, thread)
end

function init(args)
  n = 0
  not_200 = 0
  wrk.method = "POST"
  wrk.path = "/v1/cancellations"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. key
end

function request()
  n = n + 1
  local body = string.format('{"provider":"chargeapi","reference":"res_bench%st%dn%d"}', run, tid, n)
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if status ~= 200 then
    not_200 = not_200 + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("not_200")
  end
  local seconds = summary.duration / 1e6
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  local ok = summary.requests - bad
  io.write(string.format("RESULT requests=%d cancelled_200=%d not_200=%d socket_errors=%d seconds=%.2f\n",
    summary.requests, ok, bad, errors, seconds))
  io.write(string.format("RESULT cancels_per_s=%.1f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
    ok / seconds, latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
