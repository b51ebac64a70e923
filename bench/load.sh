#!/usr/bin/env bash
# HTTP load against wt-host and a bare hyper baseline in the same run, on the
# same machine: each server pinned to CPU 0, the load generator (wrk) to CPU 1,
# 32 connections. Prints requests/s for each target and the ratios that issue 9
# sets targets for. Needs `wrk` (apt-get install wrk) and `taskset`.
#
#   bench/load.sh [SECONDS] [ROUNDS]   default 10 s per target, 3 rounds
#
# This VM's throughput drifts by tens of percent between minutes, so the
# targets are measured in interleaved rounds (baseline, hello, GET, POST,
# then again) and each figure is the median of its rounds.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
rounds="${2:-3}"
for tool in wrk taskset curl; do
  command -v "$tool" >/dev/null || { echo "bench/load.sh: needs $tool (apt-get install $tool)" >&2; exit 2; }
done

cargo build --release -q -p wt-host -p wt-bench --bins
cargo xtask build-twins >/dev/null
bin=target/release
tmp="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

wait_for() { for _ in $(seq 1 300); do curl -sf -o /dev/null "$1" && return 0; sleep 0.1; done; echo "no answer from $1" >&2; exit 1; }

taskset -c 0 "$bin/baseline-hyper" 127.0.0.1:4290 >/dev/null & pids+=($!)
# Logs off (WT_LOG=warn): the access log is not what is being measured.
WT_LOG=warn taskset -c 0 "$bin/wt-host" run target/twins/hello.wasm target/twins/stripe.wasm \
  --listen 127.0.0.1:4280 --port hello=4281 --port stripe=4282 --cache-dir "$tmp/cache" >/dev/null & pids+=($!)
wait_for http://127.0.0.1:4290/
wait_for http://127.0.0.1:4281/

key="sk_test_load$(date +%s)"
auth="Authorization: Bearer $key"
cat > "$tmp/post.lua" <<LUA
wrk.method = "POST"
wrk.body = "email=load%40example.com&name=Load"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Bearer $key"
LUA
# Each round starts the Stripe twin from one customer: creates at full speed
# reach the default state quota (1,000,000 keys, four per create) within a
# few rounds, and a refused create answers faster than a stored one.
fresh_customer() {
  curl -sf -o /dev/null -X POST http://127.0.0.1:4280/_wt/twins/stripe/reset
  curl -sf -H "$auth" -d email=load@example.com http://127.0.0.1:4282/v1/customers \
    | sed -E 's/.*"id":"(cus_[A-Za-z0-9]+)".*/\1/'
}

rps() { # URL [wrk args...]
  local url="$1"; shift
  local out
  out=$(taskset -c 1 wrk -t1 -c32 -d"${secs}s" "$@" "$url")
  # A figure made of error answers would measure the wrong thing.
  if grep -q "Non-2xx" <<<"$out"; then
    echo "bench/load.sh: $url answered errors under load:" >&2
    echo "$out" >&2
    exit 1
  fi
  awk '/Requests\/sec/ {print $2}' <<<"$out"
}
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
: > "$tmp/base"; : > "$tmp/hello"; : > "$tmp/get"; : > "$tmp/post"
for round in $(seq 1 "$rounds"); do
  rps http://127.0.0.1:4290/ >> "$tmp/base"
  rps http://127.0.0.1:4281/ >> "$tmp/hello"
  customer=$(fresh_customer)
  rps "http://127.0.0.1:4282/v1/customers/$customer" -H "$auth" >> "$tmp/get"
  rps http://127.0.0.1:4282/v1/customers -s "$tmp/post.lua" >> "$tmp/post"
  echo "round $round: $(tail -1 "$tmp/base") $(tail -1 "$tmp/hello") $(tail -1 "$tmp/get") $(tail -1 "$tmp/post")" >&2
done
base=$(median < "$tmp/base")
hello=$(median < "$tmp/hello")
get=$(median < "$tmp/get")
post=$(median < "$tmp/post")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
printf '%-34s %12s %8s %8s\n' target "requests/s" ratio target
printf '%-34s %12.0f %8s %8s\n' "bare hyper baseline" "$base" 1.00 -
printf '%-34s %12.0f %8s %8s\n' "wt-host hello GET /" "$hello" "$(ratio "$hello" "$base")" ">=0.60"
printf '%-34s %12.0f %8s %8s\n' "wt-host stripe GET /v1/customers/ID" "$get" "$(ratio "$get" "$base")" ">=0.30"
printf '%-34s %12.0f %8s %8s\n' "wt-host stripe POST /v1/customers" "$post" "$(ratio "$post" "$base")" ">=0.20"
echo "($(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), median of $rounds rounds of ${secs}s, 32 connections, $(date -u +%F))"
