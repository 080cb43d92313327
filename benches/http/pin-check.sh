#!/usr/bin/env bash
# Sequential requests (one connection, keep-alive, curl) against the
# corepool engine with 2 workers, pinned (the default) and --no-pin,
# alternating, 60 requests each: p50, p90 and max of curl's total time.
# No load generator and no other load from us: what it shows is what the
# machine's other processes do to a worker that cannot leave its core.
#
#   bash benches/http/pin-check.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-1000}
cargo build --release --quiet --features prometheus --example http_service
bin="${CARGO_TARGET_DIR:-target}/release/examples/http_service"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for pin in --no-pin "" --no-pin "" --no-pin ""; do
    # shellcheck disable=SC2086
    "$bin" --addr 127.0.0.1:0 --workers 2 $pin >"$out" &
    server=$!
    until grep -q '^listening on ' "$out"; do sleep 0.05; done
    base=$(sed -n 's|^listening on ||p' "$out")
    urls=()
    for _ in $(seq 60); do urls+=("$base/hash?rounds=$rounds"); done
    printf '%-9s ' "${pin:-pinned}"
    curl -s -w 'T%{time_total}\n' --data-binary hello "${urls[@]}" | grep -o 'T[0-9.]*' | tr -d T |
        sort -n | awk '{ a[NR] = $1 * 1000 } END { printf "p50 %.2f ms  p90 %.2f ms  max %.2f ms\n", a[int(NR / 2)], a[int(NR * 0.9)], a[NR] }'
    kill -TERM "$server"
    wait "$server"
done
