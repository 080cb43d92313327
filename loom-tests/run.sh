#!/usr/bin/env bash
# Runs corepool's loom models against the real crate built with
# RUSTFLAGS="--cfg corepool_loom", optimized, in its own target directory
# (target-loom/ at the repository root): first the component models inside
# the crate (`mod loom_tests`, one component each, seconds), then the
# whole-pool models (loom-tests/tests/*.rs), the test binaries in parallel.
#
#   loom-tests/run.sh                          # every model, preemption bound 2
#   loom-tests/run.sh steal no_lost_wakeup     # only these whole-pool models
#   loom-tests/run.sh async_waiters            # the waiter queue with futures
#   LOOM_MAX_PREEMPTIONS=3 loom-tests/run.sh   # bound 3: much slower
#   LOOM_JOBS=1 loom-tests/run.sh              # one model at a time
#   LOOM_SKIP=wait_park loom-tests/run.sh      # all but these models
#
# A failing model prints loom's message; rerun it alone with LOOM_LOG=1
# LOOM_LOCATION=1 (and LOOM_CHECKPOINT_FILE) to see the interleaving.
# See docs/verification.md.
set -euo pipefail
cd "$(dirname "$0")/.."

export RUSTFLAGS="--cfg corepool_loom"
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-2}"
# Optimized, but with corepool's debug assertions and overflow checks on.
export CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=true
export CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS=true
target_dir="${LOOM_TARGET_DIR:-target-loom}"
jobs="${LOOM_JOBS:-$(nproc 2>/dev/null || echo 2)}"

started=$(date +%s)
tests=()
for name in "$@"; do tests+=(--test "$name"); done
if [ ${#tests[@]} -eq 0 ]; then
    tests=(--tests)
    # The component models first: a broken component fails in seconds.
    # Unoptimized: they run in seconds anyway, and building the crate's
    # dev-dependencies unoptimized saves CI a minute.
    cargo test -p corepool --lib --target-dir "$target_dir" loom_ \
        -- --test-threads 1
fi

# Build once; collect the model binaries (integration tests of loom-tests).
binaries=$(cargo test -p loom-tests --release --target-dir "$target_dir" "${tests[@]}" \
    --no-run --message-format=json \
    | grep '"kind":\["test"\]' \
    | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p')
if [ -z "$binaries" ]; then
    echo "run.sh: no loom model was built" >&2
    exit 1
fi
built=$(date +%s)
# Longest first, so that two at a time finish together: `join` (models 9
# and 9b, one after the other) alone takes about as long as the other
# models together (docs/verification.md has the times).
longest="join wait_park steal blocked_producers"
binaries=$(
    for name in $longest; do echo "$binaries" | grep -E "/$name-[0-9a-f]+$" || true; done
    echo "$binaries" | grep -v -E "/($(echo "$longest" | tr ' ' '|'))-[0-9a-f]+$" || true
)
# LOOM_SKIP="a b": leave these models out (CI leaves out the longest one
# that no seeded bug needs, to keep within its time budget).
for name in ${LOOM_SKIP:-}; do
    binaries=$(echo "$binaries" | grep -v -E "/$name-[0-9a-f]+$" || true)
done

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
echo "loom models, LOOM_MAX_PREEMPTIONS=$LOOM_MAX_PREEMPTIONS, $jobs at a time"
# Each binary in its own process: a loom deadlock aborts the whole binary.
echo "$binaries" | xargs -P "$jobs" -I{} sh -c '
    bin="$1"; logs="$2"
    name=$(basename "$bin" | sed "s/-[0-9a-f]*$//")
    if "$bin" --test-threads 1 --nocapture >"$logs/$name.log" 2>&1; then
        echo ok >"$logs/$name.status"
    else
        echo FAILED >"$logs/$name.status"
    fi
    grep -ho "loom model .*" "$logs/$name.log" || true
' _ {} "$logs"

failed=0
for status in "$logs"/*.status; do
    name=$(basename "$status" .status)
    if [ "$(cat "$status")" != ok ]; then
        failed=1
        echo "---- $name FAILED; its output:"
        cat "$logs/$name.log"
    fi
done
finished=$(date +%s)
echo "build $((built - started))s, models $((finished - built))s, total $((finished - started))s"
if [ "$failed" -ne 0 ]; then
    echo "run.sh: loom models FAILED" >&2
    exit 1
fi
echo "run.sh: every loom model passed"
