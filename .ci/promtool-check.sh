#!/usr/bin/env bash
# Checks the real /metrics output of examples/metrics_server.rs with
# Prometheus's own tools. Run from anywhere: `bash .ci/promtool-check.sh`.
#
# * The classic text format (what the server sends to `Accept: text/plain`,
#   i.e. curl) must pass `promtool check metrics` with no lint problem.
#   promtool check metrics parses the classic text format only (promtool
#   2.42, Debian 12): fed OpenMetrics it reports every counter as "no help
#   text" (OpenMetrics names the family without `_total`) and exits 3.
# * The OpenMetrics format (what Prometheus asks for) must parse with
#   promtool's OpenMetrics parser: `promtool tsdb create-blocks-from
#   openmetrics`, which needs a timestamp on each sample, so one is added.
# * Counters must move between two scrapes, and the server must exit 0 by
#   itself at the end of its --seconds.
# * The same checks on examples/http_service.rs's /metrics (the pool's
#   metrics and the HTTP response counters) after a few requests; that
#   service must exit 0 on SIGTERM.
#
# Installs Debian's `prometheus` package (it ships /usr/bin/promtool) if
# promtool is missing, and curl if that is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { printf 'promtool-check: FAIL: %s\n' "$*" >&2; exit 1; }
note() { printf 'promtool-check: %s\n' "$*"; }

missing=()
command -v promtool >/dev/null || missing+=(prometheus)
command -v curl >/dev/null || missing+=(curl)
if ((${#missing[@]})); then
    sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    note "installing ${missing[*]} from Debian"
    "${sudo[@]}" apt-get update -qq
    # --no-install-recommends: prometheus recommends node-exporter; and
    # policy-rc.d or the lack of an init system keeps the daemon from starting.
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
promtool --version 2>&1 | head -n 1

cargo build --quiet --features prometheus --example metrics_server
bin="${CARGO_TARGET_DIR:-target}/debug/examples/metrics_server"
[[ -x $bin ]] || fail "no binary at $bin"

tmp=$(mktemp -d)
server=
cleanup() {
    if [[ -n $server ]] && kill -0 "$server" 2>/dev/null; then
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# Port 0: the server binds a free loopback port and prints it.
seconds=6
: >"$tmp/out" # before the server starts: the loop below reads it at once
"$bin" --port 0 --seconds "$seconds" --rate 2000 --work-us 20 >"$tmp/out" 2>"$tmp/err" &
server=$!

url=
for _ in $(seq 100); do
    url=$(sed -n 's|^listening on \(http://127\.0\.0\.1:[0-9]*/metrics\) .*|\1|p' "$tmp/out")
    [[ -n $url ]] && break
    kill -0 "$server" 2>/dev/null || fail "server exited early: $(cat "$tmp/err")"
    sleep 0.1
done
[[ -n $url ]] || fail "server printed no address"
note "scraping $url"

scrape() { # scrape OUTFILE ACCEPT
    curl --silent --show-error --fail --max-time 5 -H "Accept: $2" -D "$1.headers" -o "$1" "$url"
}
value() { # value FILE METRIC: the sample's value, for a series without labels
    awk -v m="$2" '$1 == m { print $2 }' "$1"
}

scrape "$tmp/first" 'text/plain'
first=$(value "$tmp/first" corepool_executed_total)
[[ $first =~ ^[0-9]+$ ]] || fail "no corepool_executed_total in the first scrape"
# Scrape again until the counter has moved (the producer submits 2000/s).
for _ in $(seq 30); do
    scrape "$tmp/second" 'text/plain'
    second=$(value "$tmp/second" corepool_executed_total)
    ((second > first)) && break
    sleep 0.1
done
((second > first)) || fail "corepool_executed_total did not move: $first -> $second"
note "corepool_executed_total $first -> $second"

grep -qi '^content-type: text/plain; version=0.0.4' "$tmp/second.headers" ||
    fail "text scrape has content type: $(grep -i '^content-type' "$tmp/second.headers")"
for metric in corepool_accepted_total corepool_rejected_full_total corepool_rejected_shutdown_total \
    corepool_timed_out_total corepool_executed_total corepool_stolen_total corepool_steal_attempts_total \
    corepool_panicked_total corepool_workers corepool_max_workers corepool_queue_depth \
    corepool_queue_capacity corepool_queue_fill_ratio corepool_in_flight \
    corepool_queue_wait_seconds_bucket corepool_queue_wait_seconds_sum corepool_queue_wait_seconds_count \
    corepool_worker_executed_total corepool_worker_stolen_total corepool_worker_parks_total \
    corepool_worker_busy_seconds_total corepool_worker_active corepool_worker_local_queue_depth; do
    grep -Eq "^$metric[ {]" "$tmp/second" || fail "$metric missing from the scrape"
done
count=$(value "$tmp/second" corepool_queue_wait_seconds_count)
((count > 0)) || fail "queue wait histogram is empty although the example tracks latency"

note "promtool check metrics (text format 0.0.4)"
promtool check metrics <"$tmp/second" || fail "promtool check metrics rejected the text format"

scrape "$tmp/om" 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5'
grep -qi '^content-type: application/openmetrics-text; version=1.0.0' "$tmp/om.headers" ||
    fail "OpenMetrics scrape has content type: $(grep -i '^content-type' "$tmp/om.headers")"
[[ $(tail -n 1 "$tmp/om") == '# EOF' ]] || fail "OpenMetrics scrape does not end with # EOF"
note "promtool tsdb create-blocks-from openmetrics (OpenMetrics 1.0 parser)"
awk -v ts="$(date +%s)" '/^#/ { print; next } NF { print $0 " " ts }' "$tmp/om" >"$tmp/om-ts"
promtool tsdb create-blocks-from openmetrics "$tmp/om-ts" "$tmp/blocks" >"$tmp/blocks.log" 2>&1 ||
    fail "promtool's OpenMetrics parser rejected the scrape: $(cat "$tmp/blocks.log")"

# The server must stop by itself and exit cleanly.
for _ in $(seq $(((seconds + 10) * 10))); do
    kill -0 "$server" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$server" 2>/dev/null && fail "server still running $((seconds + 10)) s after start"
status=0
wait "$server" || status=$?
server=
((status == 0)) || fail "server exited with $status: $(cat "$tmp/err")"
grep -q '^done: ' "$tmp/out" || fail "server did not report a clean shutdown"
note "$(grep '^done: ' "$tmp/out")"

# --- examples/http_service.rs ------------------------------------------------
cargo build --quiet --features prometheus --example http_service
bin="${CARGO_TARGET_DIR:-target}/debug/examples/http_service"
[[ -x $bin ]] || fail "no binary at $bin"
# Created here, not by the background job's redirection, which may come
# after the first read below.
: >"$tmp/http-out"
"$bin" --addr 127.0.0.1:0 --workers 2 --budget-ms 10 >"$tmp/http-out" 2>"$tmp/http-err" &
server=$!
base=
for _ in $(seq 100); do
    base=$(sed -n 's|^listening on \(http://127\.0\.0\.1:[0-9]*\)$|\1|p' "$tmp/http-out")
    [[ -n $base ]] && break
    kill -0 "$server" 2>/dev/null || fail "http_service exited early: $(cat "$tmp/http-err")"
    sleep 0.1
done
[[ -n $base ]] || fail "http_service printed no address"
url="$base/metrics"
note "scraping $url"
for rounds in 1 10 1000; do
    curl --silent --show-error --fail --max-time 10 --data-binary hello "$base/hash?rounds=$rounds" >/dev/null ||
        fail "POST /hash?rounds=$rounds failed"
done
code=$(curl --silent --max-time 10 -o /dev/null -w '%{http_code}' --data-binary x "$base/hash?rounds=0")
[[ $code == 400 ]] || fail "rounds=0 answered $code, not 400"

scrape "$tmp/http" 'text/plain'
for metric in corepool_accepted_total corepool_rejected_budget_total \
    corepool_queue_wait_seconds_count http_responses_total http_hash_in_flight; do
    grep -Eq "^$metric[ {]" "$tmp/http" || fail "$metric missing from the http_service scrape"
done
grep -q '^http_responses_total{code="400"} 1$' "$tmp/http" || fail "the 400 is not counted"
note "promtool check metrics (http_service, text format 0.0.4)"
promtool check metrics <"$tmp/http" || fail "promtool check metrics rejected http_service's text format"

scrape "$tmp/http-om" 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5'
[[ $(tail -n 1 "$tmp/http-om") == '# EOF' ]] || fail "http_service's OpenMetrics scrape does not end with # EOF"
awk -v ts="$(date +%s)" '/^#/ { print; next } NF { print $0 " " ts }' "$tmp/http-om" >"$tmp/http-om-ts"
promtool tsdb create-blocks-from openmetrics "$tmp/http-om-ts" "$tmp/http-blocks" >"$tmp/http-blocks.log" 2>&1 ||
    fail "promtool's OpenMetrics parser rejected http_service's scrape: $(cat "$tmp/http-blocks.log")"

kill -TERM "$server"
status=0
wait "$server" || status=$?
server=
((status == 0)) || fail "http_service exited with $status on SIGTERM: $(cat "$tmp/http-err")"
grep -q '^shutdown: ' "$tmp/http-out" || fail "http_service printed no shutdown summary"
note "$(grep '^shutdown: ' "$tmp/http-out")"
note "ok"
