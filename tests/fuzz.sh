#!/usr/bin/env bash
# Runs each fuzz target (fuzz/fuzz_targets) for a bounded time: request parsing, the decision core and the audit
# writer's reading of its queued records.
# cargo-fuzz on this stable toolchain runs without a sanitizer (--sanitizer none); libFuzzer still guides it.
set -uo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${FUZZ_SECONDS:-30}
echo "fuzz check:"
n=0
fails=0
for target in request decide audit_record; do
    n=$((n + 1))
    log=$(mktemp)
    if (cd fuzz && cargo fuzz run --sanitizer none "$target" -- -max_total_time="$SECONDS_PER_TARGET" >"$log" 2>&1); then
        echo "ok $n - fuzz target $target: $(grep -Eo 'Done [0-9]+ runs in [0-9]+ second' "$log" | tail -n1)s, no crash"
    else
        echo "not ok $n - fuzz target $target crashed; the reproducer is in fuzz/artifacts/$target"
        tail -n 30 "$log"
        fails=$((fails + 1))
    fi
    rm -f "$log"
done
echo "1..$n"
[ "$fails" -eq 0 ]
