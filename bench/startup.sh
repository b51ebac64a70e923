#!/usr/bin/env bash
# Startup and density: time from spawn to every `ready` line, and the RSS of
# the idle process, for (1) the six vendor twins with a cold and a warm
# precompiled cache, and (2) N copies of `hello` under distinct names: idle
# right after start, and again after each copy has answered one request (up
# to --warm-instances of them then keep a warm instance; decisions §15).
#
#   bench/startup.sh [N...]        default N = 100 1000
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(100 1000)
cargo build --release -q -p wt-host
cargo xtask build-twins >/dev/null
bin=target/release/wt-host
tmp="$(mktemp -d)"
trap 'kill $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
pid=0

# start NAME EXPECTED ARGS...: runs wt-host until EXPECTED ready lines, prints
# "NAME ready_ms rss_mib".
start() {
  local label="$1" expected="$2"; shift 2
  local out="$tmp/out" t0 t1
  : > "$out"
  t0=$(date +%s%N)
  WT_LOG=warn "$bin" run "$@" --listen 127.0.0.1:0 --no-own-ports > "$out" 2>"$tmp/err" &
  pid=$!
  until [ "$(grep -c '^ready ' "$out" || true)" -ge "$expected" ]; do
    kill -0 "$pid" 2>/dev/null || { cat "$tmp/err" >&2; exit 1; }
    sleep 0.005
  done
  t1=$(date +%s%N)
  sleep 1 # idle
  local rss; rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  local served="-"
  if [ -n "${SERVE_EACH:-}" ]; then
    # `ready NAME VERSION OWN_URL PREFIXED_URL ...`: one GET / to each.
    awk '/^ready / {print $5 "/"}' "$out" | xargs -P 4 -I{} curl -sf -o /dev/null {}
    sleep 1
    served=$(awk '/VmRSS/ {printf "%.1f MiB", $2 / 1024}' "/proc/$pid/status")
  fi
  kill "$pid"; wait "$pid" 2>/dev/null || true
  printf '%-28s %10.1f ms %10.1f MiB %16s\n' "$label" "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print (b-a)/1e6}')" "$(awk -v r="$rss" 'BEGIN{print r/1024}')" "$served"
}

six=(target/twins/{stripe,twilio,clerk,resend,posthog,logodev}.wasm)
printf '%-28s %13s %14s %16s\n' case "to ready" "idle RSS" "RSS, each served"
start "six twins, cold cache" 6 "${six[@]}" --cache-dir "$tmp/cold"
start "six twins, warm cache" 6 "${six[@]}" --cache-dir "$tmp/cold"
for n in "${sizes[@]}"; do
  args=()
  for i in $(seq 1 "$n"); do args+=("h$i=target/twins/hello.wasm"); done
  SERVE_EACH=1 start "$n x hello, warm cache" "$n" "${args[@]}" --cache-dir "$tmp/cold"
done
echo "($(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%F))"
