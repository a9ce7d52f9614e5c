-- wrk script for bench/run: one cancel per request, every reference unique unless asked.
--
-- Environment (read once per wrk thread):
--   BENCH_MODE     "upstream" (the sandbox's own ChargeAPI endpoint, directly or through nginx)
--                  or "gateway" (POST /v1/cancellations)
--   BENCH_PREFIX   letters/digits making this run's references unique: res_bench<PREFIX>t<thread>n<counter>
--   BENCH_REPLAY   share (0..1) of requests that repeat an already cancelled reference (gateway only)
--   BENCH_REPLAY_PREFIX, BENCH_REPLAY_MAX   those references: res_bench<REPLAY_PREFIX>t1n<1..MAX>
--   BENCH_DELAY_MS pause before each request on a connection (pacing: rate ~ conns*1000/(delay+latency))
--   BENCH_OUT      file the summary is written to (one JSON object)

local threads = {}
local tid_counter = 0

function setup(thread)
   tid_counter = tid_counter + 1
   thread:set("tid", tid_counter)
   table.insert(threads, thread)
end

local mode, prefix, replay, replay_prefix, replay_max, delay_ms
counter = 0  -- global: done() reads it through thread:get
local gateway_headers = {
   ["Authorization"] = "Bearer cg_demo_key_local_only",
   ["Content-Type"] = "application/json",
}
local upstream_headers = {
   ["Authorization"] = "Bearer ch_sk_test_sandbox",
   ["Content-Type"] = "application/json",
}

function init(args)
   mode = os.getenv("BENCH_MODE") or "upstream"
   prefix = (os.getenv("BENCH_PREFIX") or "x") .. "t" .. tostring(tid or 1) .. "n"
   replay = tonumber(os.getenv("BENCH_REPLAY") or "0")
   replay_prefix = (os.getenv("BENCH_REPLAY_PREFIX") or "") .. "t1n"
   replay_max = tonumber(os.getenv("BENCH_REPLAY_MAX") or "0")
   delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
   math.randomseed(os.time() + (tid or 1) * 7919)
end

function delay()
   return delay_ms
end

function request()
   local ref
   if replay > 0 and replay_max > 0 and math.random() < replay then
      ref = "res_bench" .. replay_prefix .. tostring(math.random(1, replay_max))
   else
      counter = counter + 1
      ref = "res_bench" .. prefix .. tostring(counter)
   end
   if mode == "gateway" then
      local body = '{"provider":"chargeapi","reference":"' .. ref .. '"}'
      return wrk.format("POST", "/v1/cancellations", gateway_headers, body)
   else
      return wrk.format("POST", "/v1/reservations/" .. ref .. "/cancel", upstream_headers, "{}")
   end
end

function done(summary, latency, requests)
   local generated = 0
   for _, t in ipairs(threads) do
      generated = generated + (t:get("counter") or 0)
   end
   local e = summary.errors
   local secs = summary.duration / 1e6
   local out = string.format(
      '{"requests":%d,"duration_s":%.3f,"rps":%.1f,"bytes":%d,"unique_generated":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_us":{"mean":%.1f,"stdev":%.1f,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d}}',
      summary.requests, secs, summary.requests / secs, summary.bytes, generated,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.mean, latency.stdev, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency:percentile(99.9), latency.max)
   local path = os.getenv("BENCH_OUT")
   if path then
      local f = io.open(path, "w")
      f:write(out .. "\n")
      f:close()
   end
   io.write(out .. "\n")
end
