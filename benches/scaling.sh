#!/usr/bin/env bash
# Scaling of corepool and its peers against the worker count W, for a
# many-core machine that has no cargo and no network.
#
#   benches/scaling.sh pack [DIR]   # here, with cargo: build the bench
#                                   # binaries and copy them, with this
#                                   # script, to DIR (default target/scaling-pack)
#   DIR/scaling.sh run              # there: run them at each W, write $OUT
#
# `run` measures, at W = 16, 8, 4, 2, 1 (`SCALING_WORKERS`; a W above the
# machine's cores is skipped unless `SCALING_OVERSUBSCRIBE=1`), the `spawn`
# workloads (ns/task: spawn_many_remote, _multi, spawn_many_local,
# chained_spawn, ping_pong) and the `fork_join` workloads (fib_join,
# fib_join_fine, tree_sum, join_chain: ms and speedup over the plain
# recursion), every runtime with W workers (`COREPOOL_BENCH_WORKERS`).
# Criterion runs 10 samples per benchmark after a short warm-up
# (`COREPOOL_BENCH_WARMUP_SECS`, `COREPOOL_BENCH_MEASURE_SECS`; 0.3 s and
# 1 s here): one W took 114 s on the 2-core VM under a load average of 12
# (2026-12-06). Each step runs under `timeout`, and the run starts no step
# once `SCALING_BUDGET_S` (default 450 s) is spent, largest W first, so it
# ends within 8 minutes; a W it had no time for says so in log.txt.
#
# Output, under $OUT (default target/scaling-out):
#   machine.txt              nproc, lscpu, uname, date of the run
#   w<W>/criterion/          criterion's samples
#   w<W>/corepool-bench/     the benches' JSON (machine, sizes)
#   w<W>/report/             tables.md, summary.json and charts for that W
#   scaling.md, scaling.json one table per workload: median against W
#   log.txt                  everything the binaries printed
set -u

usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
    exit 2
}

pack() {
    local dir=${1:-target/scaling-pack}
    mkdir -p "$dir/bin"
    local json
    json=$(nice -n 19 cargo bench --no-run --message-format=json \
        --bench spawn --bench fork_join --bench report) || exit 1
    for name in spawn fork_join report; do
        local exe
        exe=$(printf '%s\n' "$json" | grep '"reason":"compiler-artifact"' \
            | grep "\"name\":\"$name\"" | grep -o '"executable":"[^"]*"' \
            | head -n 1 | sed 's/"executable":"\(.*\)"/\1/')
        if [ -z "$exe" ] || [ ! -x "$exe" ]; then
            echo "pack: no executable for bench $name" >&2
            exit 1
        fi
        cp "$exe" "$dir/bin/$name"
    done
    cp "$0" "$dir/scaling.sh"
    chmod +x "$dir/scaling.sh"
    echo "packed into $dir: $(ls "$dir/bin" | tr '\n' ' ')"
    echo "run there: $dir/scaling.sh run   (OUT=<dir> for the results)"
}

run() {
    local here bin out budget start cores
    here=$(cd "$(dirname "$0")" && pwd)
    bin=${SCALING_BIN:-$here/bin}
    out=${OUT:-target/scaling-out}
    budget=${SCALING_BUDGET_S:-450}
    mkdir -p "$out"
    out=$(cd "$out" && pwd)
    for name in spawn fork_join report; do
        [ -x "$bin/$name" ] || { echo "run: $bin/$name missing (pack first)" >&2; exit 1; }
    done
    cores=$(nproc)
    {
        echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
        echo "nproc: $cores"
        uname -sr
        lscpu 2>/dev/null | grep -E '^(Model name|Socket|Core|Thread|NUMA node\(s\)|CPU\(s\))'
        echo "workers: ${SCALING_WORKERS:-16 8 4 2 1}"
        echo "warm-up ${COREPOOL_BENCH_WARMUP_SECS:-0.3} s, measurement ${COREPOOL_BENCH_MEASURE_SECS:-1} s"
    } > "$out/machine.txt"
    cat "$out/machine.txt"
    export COREPOOL_BENCH_WARMUP_SECS=${COREPOOL_BENCH_WARMUP_SECS:-0.3}
    export COREPOOL_BENCH_MEASURE_SECS=${COREPOOL_BENCH_MEASURE_SECS:-1}
    local spawn_filter=${SCALING_SPAWN_FILTER:-'^(spawn_many_remote|spawn_many_remote_multi|spawn_many_local|chained_spawn|ping_pong)/'}
    local fork_filter=${SCALING_FORK_FILTER:-'^(fib_join|fib_join_fine|tree_sum|join_chain)/'}
    start=$(date +%s)
    local done_ws=""
    for w in ${SCALING_WORKERS:-16 8 4 2 1}; do
        if [ "$w" -gt "$cores" ] && [ "${SCALING_OVERSUBSCRIBE:-0}" != 1 ]; then
            echo "W=$w: skipped, the machine has $cores cores" | tee -a "$out/log.txt"
            continue
        fi
        local dir="$out/w$w"
        mkdir -p "$dir"
        for step in "spawn $spawn_filter" "fork_join $fork_filter"; do
            local name=${step%% *} filter=${step#* }
            local left=$((budget - ($(date +%s) - start)))
            if [ "$left" -le 10 ]; then
                echo "W=$w $name: skipped, budget spent" | tee -a "$out/log.txt"
                continue
            fi
            echo "W=$w $name (${left} s of budget left)" | tee -a "$out/log.txt"
            CARGO_TARGET_DIR="$dir" COREPOOL_BENCH_WORKERS="$w" \
                timeout "$left" "$bin/$name" --bench "$filter" >> "$out/log.txt" 2>&1 \
                || echo "W=$w $name: exit $?" | tee -a "$out/log.txt"
        done
        CARGO_TARGET_DIR="$dir" "$bin/report" --bench --out "$dir/report" >> "$out/log.txt" 2>&1 \
            || echo "W=$w report: exit $?" | tee -a "$out/log.txt"
        done_ws="$done_ws $w"
    done
    "$bin/report" --bench --scaling "$out" >> "$out/log.txt" 2>&1 \
        || echo "scaling summary: exit $?" | tee -a "$out/log.txt"
    echo "measured W:$done_ws in $(($(date +%s) - start)) s; results in $out" | tee -a "$out/log.txt"
    [ -f "$out/scaling.md" ] && cat "$out/scaling.md"
}

case "${1:-}" in
    pack) shift; pack "$@" ;;
    run) shift; run "$@" ;;
    *) usage ;;
esac
