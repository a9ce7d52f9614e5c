# Sourced by scripts that test the real binary: `start_gateway` builds it, starts
# `cancelgate serve --sandbox` on a free port in a scratch working directory (a copy of config/)
# and sets `addr` (host:port) and `work` (the directory; its gateway.log is the JSON log). The
# gateway is stopped (SIGTERM) and the directory removed on exit. Needs `root` (the repository).
# The demo client's rate limit is raised: test tools send bursts, and 429 is not under test.

gateway_pid=""
work=""
addr=""

stop_gateway() {
  if [[ -n "$gateway_pid" ]]; then
    kill -TERM "$gateway_pid" 2>/dev/null || true
    wait "$gateway_pid" 2>/dev/null || true
    gateway_pid=""
  fi
  if [[ -n "$work" ]]; then
    rm -rf "$work"
  fi
}

start_gateway() {
  cargo build --quiet --bin cancelgate
  local binary="$root/target/debug/cancelgate"
  work=$(mktemp -d)
  trap stop_gateway EXIT
  cp -r "$root/config" "$work/config"
  (
    cd "$work"
    CANCELGATE__LISTEN=127.0.0.1:0 CANCELGATE__LOG__FORMAT=json RUST_LOG=warn,cancelgate_gateway::startup=info \
      CANCELGATE__CLIENTS__DEMO__RATE_LIMIT__PER_SECOND=10000 \
      exec "$binary" serve --sandbox >"$work/gateway.log" 2>&1
  ) &
  gateway_pid=$!
  for _ in $(seq 1 300); do
    addr=$(sed -n 's/.*"message":"cancelgate listening".*"addr":"\([^"]*\)".*/\1/p; s/.*"addr":"\([^"]*\)".*"message":"cancelgate listening".*/\1/p' "$work/gateway.log" | head -n1)
    [[ -n "$addr" ]] && break
    if ! kill -0 "$gateway_pid" 2>/dev/null; then
      cat "$work/gateway.log" >&2
      echo "$0: the gateway did not start" >&2
      exit 1
    fi
    sleep 0.1
  done
  [[ -n "$addr" ]] || { cat "$work/gateway.log" >&2; echo "$0: no listen line" >&2; exit 1; }
  echo "$0: gateway on http://$addr" >&2
}

# Exit status 1 (after printing them) when the gateway logged an error.
check_gateway_log() {
  if grep -q '"level":"ERROR"' "$work/gateway.log"; then
    echo "$0: the gateway logged errors:" >&2
    grep '"level":"ERROR"' "$work/gateway.log" | head -20 >&2
    return 1
  fi
}
