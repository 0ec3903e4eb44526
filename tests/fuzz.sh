#!/usr/bin/env bash
# Fuzzes harden's parsers for a bounded time (the targets are in fuzz/, see fuzz/Cargo.toml).
#
#   bash tests/fuzz.sh [TARGET...]      all five targets when none is named
#
# 1. Installs cargo-fuzz (pinned below) when it is missing or another version.
# 2. Builds the targets. The toolchain is stable Rust: cargo-fuzz's default sanitizer,
#    AddressSanitizer, needs `-Zsanitizer`, a nightly-only flag, so the targets are built
#    with `--sanitizer none`. Everything else cargo-fuzz passes is stable (`-Cpasses=
#    sancov-module` and `-Cllvm-args=-sanitizer-coverage-*` for libFuzzer's coverage
#    feedback, `--cfg fuzzing`, debug assertions and overflow checks), and libfuzzer-sys
#    compiles libFuzzer itself with the installed C++ compiler (g++; clang is not needed).
#    Without ASan nothing is lost for harden's own code, which is safe Rust
#    (`unsafe_code = "deny"`): a bounds or overflow error is a panic, which libFuzzer
#    reports as a crash. FUZZ_SANITIZER=address builds with ASan anyway, by setting
#    RUSTC_BOOTSTRAP=1 (stable rustc then accepts -Z flags; rustup ships the ASan runtime).
# 3. Replays the seed corpus (fuzz/corpus/<target>/) and every kept crash case
#    (fuzz/regressions/<target>/) once.
# 4. Fuzzes each target FUZZ_SECONDS (default 60) with FUZZ_JOBS (default 2) processes
#    (libFuzzer's -fork mode), starting from the seeds (plus playbooks/ for the playbook
#    target). New inputs go to fuzz/target/corpus/<target>/, never into the seeds. A slow
#    input (FUZZ_TIMEOUT seconds, default 10) or one using more than 2 GB counts as a crash.
# 5. Prints, per target, executions per second and libFuzzer's coverage figures (`cov`:
#    code edges reached, `ft`: features, finer-grained) from the last status line.
#
# Exits 1 when any target crashed; the input that did it is in fuzz/artifacts/<target>/ and
# the log in fuzz/target/logs/<target>.log. Reproduce with
# `fuzz/target/x86_64-unknown-linux-gnu/release/<target> <input>`; once fixed, keep the input
# in fuzz/regressions/<target>/ and add a unit test beside the parser.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CARGO_FUZZ_VERSION=0.13.2
seconds=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-2}
timeout=${FUZZ_TIMEOUT:-10}
sanitizer=${FUZZ_SANITIZER:-none}
targets=(playbook sshd_config ufw_state fail2ban_ini apt_conf)
if [ $# -gt 0 ]; then
    targets=("$@")
fi

if ! cargo fuzz --version 2>/dev/null | grep -qx "cargo-fuzz $CARGO_FUZZ_VERSION"; then
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

if [ "$sanitizer" != none ]; then
    export RUSTC_BOOTSTRAP=1
fi
triple=$(rustc -vV | sed -n 's/^host: //p')
echo "fuzz: building ${targets[*]} (sanitizer: $sanitizer, $triple)"
if [ $# -eq 0 ]; then
    cargo fuzz build --sanitizer "$sanitizer" --target "$triple"
else
    for target in "${targets[@]}"; do
        cargo fuzz build --sanitizer "$sanitizer" --target "$triple" "$target"
    done
fi
bin=fuzz/target/$triple/release
mkdir -p fuzz/target/logs

# Replays: every seed and kept crash case runs once; any failure stops here.
for target in "${targets[@]}"; do
    dirs=(fuzz/corpus/"$target")
    if compgen -G "fuzz/regressions/$target/*" >/dev/null; then
        dirs+=(fuzz/regressions/"$target")
    fi
    log=fuzz/target/logs/$target-replay.log
    mkdir -p fuzz/artifacts/"$target"
    if ! "$bin/$target" -runs=0 -timeout="$timeout" -rss_limit_mb=2048 \
        -artifact_prefix=fuzz/artifacts/"$target"/ "${dirs[@]}" >"$log" 2>&1; then
        tail -n 40 "$log"
        echo "fuzz: $target fails on a seed or kept regression input (log: $log)"
        exit 1
    fi
    echo "fuzz: $target: $(find "${dirs[@]}" -type f | wc -l) seed and regression inputs replayed"
done

status=0
failed=0
summary=()
for target in "${targets[@]}"; do
    work=fuzz/target/corpus/$target
    artifacts=fuzz/artifacts/$target
    log=fuzz/target/logs/$target.log
    mkdir -p "$work" "$artifacts"
    seeds=(fuzz/corpus/"$target")
    if [ "$target" = playbook ]; then
        seeds+=(playbooks)
    fi
    echo "fuzz: $target for ${seconds}s on $jobs processes"
    set +e
    "$bin/$target" -fork="$jobs" -max_total_time="$seconds" -timeout="$timeout" \
        -rss_limit_mb=2048 -ignore_timeouts=0 -ignore_ooms=0 -ignore_crashes=0 \
        -artifact_prefix="$artifacts/" "$work" "${seeds[@]}" >"$log" 2>&1
    code=$?
    set -e
    # Fork mode's status lines: `#N: cov: C ft: F corp: K exec/s: E oom/timeout/crash: ...`.
    last=$(grep -E '^#[0-9]+: cov: ' "$log" | tail -n 1 || true)
    field() { sed -n "s|.* $1: \([0-9]*\).*|\1|p" <<<"$last"; }
    execs=$(sed -n 's/^#\([0-9]*\):.*/\1/p' <<<"$last")
    result=ok
    if [ "$code" -ne 0 ]; then
        result="CRASH (exit $code)"
        status=1
        failed=$((failed + 1))
        tail -n 60 "$log"
        echo "fuzz: $target crashed; input kept in $artifacts/:"
        ls -1 "$artifacts" | sed "s|^|  $artifacts/|"
    fi
    summary+=("$(printf '%-13s %9s %9s %7s %7s %7s  %s' "$target" "${execs:-?}" "$(field exec/s)" \
        "$(field cov)" "$(field ft)" "$(field corp)" "$result")")
done

echo
printf '%-13s %9s %9s %7s %7s %7s  %s\n' target execs exec/s cov ft corpus result
printf '%s\n' "${summary[@]}"
echo "fuzz: $((${#targets[@]} - failed)) passed, $failed failed"
exit "$status"
