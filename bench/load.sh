#!/usr/bin/env bash
# HTTP load against wt-host and a bare hyper baseline in the same run, on the
# same machine: each server pinned to CPU 0, the load generator (wrk) to CPU 1,
# 32 connections. Prints requests/s for each target and the ratios that issue 9
# sets targets for. Needs `wrk` (apt-get install wrk) and `taskset`.
#
#   bench/load.sh [SECONDS] [ROUNDS]   default 10 s per target, 3 rounds
#
# WT_HOST_BIN=path/to/wt-host measures that binary instead of building this
# tree's: a before/after comparison builds each commit's release binary,
# copies it aside, and runs the script once with each.
#
# This VM's throughput drifts by tens of percent between minutes, so the
# targets are measured in interleaved rounds (baseline, hello, GET, POST,
# then again) and each figure is the median of its rounds. The bare
# baseline drifts most (its cost is nearly all the kernel's loopback path),
# so the script also prints the server's CPU per request, split into user
# time (the server's own code: what wt controls) and system time (the
# kernel's share, which follows the VM's mood).
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
wt_host="${WT_HOST_BIN:-$bin/wt-host}"
tmp="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

wait_for() { for _ in $(seq 1 300); do curl -sf -o /dev/null "$1" && return 0; sleep 0.1; done; echo "no answer from $1" >&2; exit 1; }

taskset -c 0 "$bin/baseline-hyper" 127.0.0.1:4290 >/dev/null & pids+=($!); base_pid=$!
# Logs off (WT_LOG=warn): the access log is not what is being measured.
WT_LOG=warn taskset -c 0 "$wt_host" run target/twins/hello.wasm target/twins/stripe.wasm \
  --listen 127.0.0.1:4280 --port hello=4281 --port stripe=4282 --cache-dir "$tmp/cache" >/dev/null & pids+=($!); wt_pid=$!
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

ticks() { awk '{print $14, $15}' "/proc/$1/stat"; } # user and system clock ticks
hz=$(getconf CLK_TCK)
rps() { # PID NAME URL [wrk args...]: requests/s to stdout; CPU µs per request to $tmp/NAME.cpu
  local pid="$1" name="$2" url="$3"; shift 3
  local out before after
  before=$(ticks "$pid")
  out=$(taskset -c 1 wrk -t1 -c32 -d"${secs}s" "$@" "$url")
  after=$(ticks "$pid")
  # A figure made of error answers would measure the wrong thing.
  if grep -q "Non-2xx" <<<"$out"; then
    echo "bench/load.sh: $url answered errors under load:" >&2
    echo "$out" >&2
    exit 1
  fi
  local requests; requests=$(awk '/requests in/ {print $1}' <<<"$out")
  echo "$before $after" | awk -v n="$requests" -v hz="$hz" \
    '{ printf "%.2f %.2f\n", ($3 - $1) * 1e6 / hz / n, ($4 - $2) * 1e6 / hz / n }' >> "$tmp/$name.cpu"
  awk '/Requests\/sec/ {print $2}' <<<"$out"
}
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
: > "$tmp/base"; : > "$tmp/hello"; : > "$tmp/get"; : > "$tmp/post"
for round in $(seq 1 "$rounds"); do
  rps "$base_pid" base http://127.0.0.1:4290/ >> "$tmp/base"
  rps "$wt_pid" hello http://127.0.0.1:4281/ >> "$tmp/hello"
  customer=$(fresh_customer)
  rps "$wt_pid" get "http://127.0.0.1:4282/v1/customers/$customer" -H "$auth" >> "$tmp/get"
  rps "$wt_pid" post http://127.0.0.1:4282/v1/customers -s "$tmp/post.lua" >> "$tmp/post"
  echo "round $round: $(tail -1 "$tmp/base") $(tail -1 "$tmp/hello") $(tail -1 "$tmp/get") $(tail -1 "$tmp/post")" >&2
done
base=$(median < "$tmp/base")
hello=$(median < "$tmp/hello")
get=$(median < "$tmp/get")
post=$(median < "$tmp/post")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
cpu() { # NAME COLUMN: the median µs per request
  awk -v c="$2" '{print $c}' "$tmp/$1.cpu" | median
}
row() { # LABEL NAME RPS TARGET
  printf '%-34s %12.0f %8s %8s %9.2f %9.2f\n' "$1" "$3" "$(ratio "$3" "$base")" "$4" "$(cpu "$2" 1)" "$(cpu "$2" 2)"
}
printf '%-34s %12s %8s %8s %9s %9s\n' target "requests/s" ratio target "user µs" "sys µs"
row "bare hyper baseline" base "$base" -
row "wt-host hello GET /" hello "$hello" ">=0.60"
row "wt-host stripe GET /v1/customers/ID" get "$get" ">=0.30"
row "wt-host stripe POST /v1/customers" post "$post" ">=0.20"
echo "(user µs, sys µs: the server's CPU time per request, median of the rounds)"
echo "($(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), median of $rounds rounds of ${secs}s, 32 connections, $(date -u +%F))"
