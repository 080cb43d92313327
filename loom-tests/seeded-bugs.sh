#!/usr/bin/env bash
# Builds corepool with each seeded bug and runs the loom models that must
# catch it. A seed is a patch in loom-tests/seeds/, applied to a scratch
# copy of the tree (target-loom/seed-trees/<name>), so the bug never lives
# in src/. Every listed model must FAIL; the script fails if any of them
# passes, that is, if a seeded bug goes undetected. Each model runs in its
# own process (a loom deadlock aborts the test binary). The seeds share one
# target directory (target-loom/seeds), so the dependencies build once and
# reruns are incremental; unoptimized: loom finds each seeded bug within a few
# hundred executions, so compiling loom's dependencies with optimizations
# would cost more than it saves. A model that does not fail within
# LOOM_MAX_DURATION seconds (default 300) stops exploring and passes, which
# counts as undetected. See docs/verification.md.
#
#   loom-tests/seeded-bugs.sh                 # every seed
#   loom-tests/seeded-bugs.sh split_acquire   # one seed
set -euo pipefail
cd "$(dirname "$0")/.."

export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-2}"
export LOOM_MAX_DURATION="${LOOM_MAX_DURATION:-300}"

# seed (loom-tests/seeds/<seed>.patch) -> the models that must catch it
declare -A patch_catchers=(
    [no_latch_wake]="join"
    [skip_recheck]="no_lost_wakeup steal"
    [drop_fence]="no_lost_wakeup steal"
    [split_acquire]="try_submit_vs_shutdown blocked_producers shutdown_now"
    [no_reclaim]="held_slots"
    [cancel_keeps_grant]="async_waiters"
)
seeds=("$@")
if [ ${#seeds[@]} -eq 0 ]; then
    seeds=("${!patch_catchers[@]}")
fi
root=$(pwd)

started=$(date +%s)
undetected=0
for seed in "${seeds[@]}"; do
    # One target directory for every seed: the dependencies (loom first)
    # build once; only the patched tree's own crates build per seed.
    target_dir="$root/target-loom/seeds"
    cd "$root"
    models="${patch_catchers[$seed]:?unknown seeded bug: $seed}"
    export RUSTFLAGS="--cfg corepool_loom"
    tree="$root/target-loom/seed-trees/$seed"
    rm -rf "$tree"
    mkdir -p "$tree"
    git ls-files -z | xargs -0 cp --parents -t "$tree"
    # The patch must apply: a seed that no longer matches the code is
    # a failure, not a detection.
    patch -d "$tree" -p1 --quiet <"loom-tests/seeds/$seed.patch"
    cd "$tree"
    tests=()
    for model in $models; do tests+=(--test "$model"); done
    # The build must succeed: a compile error is not a detection.
    cargo test -p loom-tests --target-dir "$target_dir" "${tests[@]}" --no-run --quiet
    for model in $models; do
        log="$tree/$model.log"
        t0=$(date +%s)
        if cargo test -p loom-tests --target-dir "$target_dir" --test "$model" --quiet \
            -- --test-threads 1 >"$log" 2>&1; then
            echo "UNDETECTED: seeded bug $seed passed model $model ($log)"
            undetected=1
        else
            why=$(grep -m1 -E "^deadlock|must|admitted|assertion|leaked" "$log" || echo "see $log")
            echo "caught: $seed by $model in $(( $(date +%s) - t0 ))s: $why"
        fi
    done
done
echo "seeded-bugs.sh: $(( $(date +%s) - started ))s"
if [ "$undetected" -ne 0 ]; then
    echo "seeded-bugs.sh: a seeded bug went undetected" >&2
    exit 1
fi
echo "seeded-bugs.sh: every seeded bug was caught"
