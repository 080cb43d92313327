#!/usr/bin/env bash
# Drives examples/http_service.rs with oha (https://github.com/hatoo/oha,
# `cargo install oha --locked`), open loop: a fixed request rate, latency
# counted from each request's scheduled send time (--latency-correction),
# so a server that falls behind is charged for the wait it causes.
#
#   bash benches/http/run.sh [--rounds R] [--duration 20s] [--capacity RPS]
#                            [--workers N] [--server-cpus LIST] [--client-cpus LIST] [--out DIR]
#
# The service runs on --server-cpus (default: CPU 0) with --workers hashing
# threads (default 1), oha on --client-cpus (default: CPU 1), both through
# taskset: on a 2-core machine a load generator sharing the server's cores
# would take the CPU it is measuring.
#
# 1. Capacity: the served req/s of the corepool and inline engines at
#    saturation (closed loop, 64 connections, no rate limit); the larger
#    one is "1x" unless --capacity gives it.
# 2. For 0.5x, 1x and 2x that rate, each engine in a fresh process:
#    corepool with --budget-ms 10 (also with --hash-nice 10) and with
#    --budget-ms 5, corepool with its default queue bound and no budget,
#    spawn-blocking, rayon, inline. Each row: served (200) req/s, p50,
#    p99 and p99.9 of the served requests only (oha's
#    --stats-success-breakdown), the share of 503s, requests oha gave up
#    on at the deadline, the server's peak RSS (VmHWM), and for corepool
#    the p99 of the served requests' wait in its queue and of their time
#    in the pool, as the service measured them (--report-waits), and with
#    a budget the pool's share of it at the end of the run.
#
# Writes DIR/results.tsv, DIR/table.md, DIR/chart.svg and oha's JSON per
# run (DIR defaults to target/http-bench). Runs about 8 minutes. Not part
# of `cargo test`: the load generator is not ours, and timings belong here.
set -euo pipefail
cd "$(dirname "$0")/../.."

rounds=5000
duration=20s
capacity=
out=target/http-bench
workers=1
server_cpus=0
client_cpus=1
connections=128
while (($#)); do
    case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --capacity) capacity=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --workers) workers=$2; shift 2 ;;
    --server-cpus) server_cpus=$2; shift 2 ;;
    --client-cpus) client_cpus=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
command -v oha >/dev/null || { echo "oha not found: cargo install oha --locked" >&2; exit 1; }
command -v jq >/dev/null || { echo "jq not found" >&2; exit 1; }
mkdir -p "$out"

cargo build --release --quiet --features prometheus --example http_service
bin="${CARGO_TARGET_DIR:-target}/release/examples/http_service"

server=
hwm=
base=
cleanup() {
    if [[ -n $server ]] && kill -0 "$server" 2>/dev/null; then
        kill -TERM "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
}
trap cleanup EXIT

start() { # start ARGS...: runs the service on a free port, sets $server and $base
    : >"$out/server.out" # now, not when the background job gets to its redirection
    taskset -c "$server_cpus" "$bin" --addr 127.0.0.1:0 --workers "$workers" "$@" \
        >"$out/server.out" 2>"$out/server.err" &
    server=$!
    base=
    for _ in $(seq 200); do
        base=$(sed -n 's|^listening on \(http://.*\)$|\1|p' "$out/server.out")
        [[ -n $base ]] && return 0
        kill -0 "$server" 2>/dev/null || { cat "$out/server.err" >&2; exit 1; }
        sleep 0.05
    done
    echo "the service printed no address" >&2
    exit 1
}

stop() { # stop: SIGTERM, wait for the exit, set $hwm to the peak RSS in KiB read before it
    hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$server/status")
    kill -TERM "$server"
    # In this shell, not a subshell: only the parent can wait for the
    # server, and its shutdown line is complete once it has exited.
    wait "$server"
    server=
}

engine_args() { # engine_args NAME: the service's flags for a row's engine
    case $1 in
    corepool-budget10) echo "--engine corepool --budget-ms 10 --report-waits" ;;
    corepool-budget10-nice10) echo "--engine corepool --budget-ms 10 --hash-nice 10 --report-waits" ;;
    corepool-budget5) echo "--engine corepool --budget-ms 5 --report-waits" ;;
    corepool) echo "--engine corepool --report-waits" ;;
    *) echo "--engine $1" ;;
    esac
}

oha_json() { # oha_json OUTFILE OHA-ARGS...
    local file=$1
    shift
    taskset -c "$client_cpus" oha --no-tui --output-format json --stats-success-breakdown -m POST -d 'hello, corepool' \
        "$@" "$base/hash?rounds=$rounds" >"$file"
}

served_rps() { # served_rps JSON SECONDS
    jq -r --argjson s "$2" '((.statusCodeDistribution["200"] // 0) / $s)' "$1"
}

seconds=${duration%s}

if [[ -z $capacity ]]; then
    best=0
    for engine in corepool inline; do
        # shellcheck disable=SC2046
        start $(engine_args "$engine")
        oha_json "$out/capacity-$engine.json" -z 10s -c 64
        rps=$(served_rps "$out/capacity-$engine.json" 10)
        stop
        printf 'capacity %-10s %8.0f req/s served at saturation\n' "$engine" "$rps"
        best=$(jq -n --argjson a "$best" --argjson b "$rps" 'if $a > $b then $a else $b end')
    done
    capacity=$(jq -n --argjson c "$best" '$c | floor')
fi
echo "1x = $capacity req/s (rounds=$rounds, workers=$workers on CPUs $server_cpus, oha on CPUs $client_cpus, $duration per run, $connections connections)"

results="$out/results.tsv"
printf 'load\tengine\trate\tserved_rps\tp50_ms\tp99_ms\tp999_ms\tshare_503\tdeadline_aborts\tpeak_rss_mib\tpool_wait_p99_ms\tpool_time_p99_ms\tqueue_budget_ms\n' >"$results"
for load in 0.5 1 2; do
    rate=$(jq -n --argjson c "$capacity" --argjson l "$load" '$c * $l | floor')
    for engine in corepool-budget10 corepool-budget10-nice10 corepool-budget5 corepool spawn-blocking rayon inline; do
        # shellcheck disable=SC2046
        start $(engine_args "$engine")
        json="$out/load${load}x-$engine.json"
        oha_json "$json" -q "$rate" --latency-correction -z "$duration" -c "$connections"
        stop
        # corepool's own view (--report-waits): p99 of the requests' wait
        # in its queue and of their whole time in the pool.
        pool_wait=$(sed -n 's|.* pool_wait_ms=[^/]*/\([^/]*\)/.*|\1|p' "$out/server.out")
        pool_time=$(sed -n 's|.* pool_time_ms=[^/]*/\([^/]*\)/.*|\1|p' "$out/server.out")
        # With --budget-ms, the pool's share of it when the run ended.
        queue_budget=$(sed -n 's|.* queue_budget_ms=\([^ ]*\) .*|\1|p' "$out/server.out")
        jq -r --arg load "${load}x" --arg engine "$engine" --argjson rate "$rate" \
            --argjson s "$seconds" --argjson hwm "$hwm" \
            --arg pool_wait "${pool_wait:-n/a}" --arg pool_time "${pool_time:-n/a}" \
            --arg queue_budget "${queue_budget:-n/a}" '
            (.statusCodeDistribution // {}) as $codes
            | ([$codes[]] | add // 0) as $answered
            | (.latencyPercentilesSuccessful // {}) as $p
            | def ms(x): if x == null then "n/a" else (x * 1000 * 100 | round / 100 | tostring) end;
              [$load, $engine, ($rate | tostring),
               (($codes["200"] // 0) / $s | floor | tostring),
               ms($p.p50), ms($p.p99), ms($p["p99.9"]),
               (if $answered == 0 then "n/a" else (($codes["503"] // 0) / $answered * 1000 | round / 10 | tostring) + "%" end),
               ([.errorDistribution // {} | to_entries[] | .value] | add // 0 | tostring),
               ($hwm / 1024 | . * 10 | round / 10 | tostring),
               $pool_wait, $pool_time, $queue_budget]
            | @tsv' "$json" >>"$results"
        tail -n 1 "$results"
    done
done

python3 benches/http/chart.py "$results" "$out/table.md" "$out/chart.svg"
echo "wrote $results, $out/table.md, $out/chart.svg"
