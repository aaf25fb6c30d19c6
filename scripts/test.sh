#!/usr/bin/env bash
# Command (b): set up the machine, then run every test suite and print one
# summary line. Exits non-zero if any suite fails.
#
#   bash scripts/test.sh              # all suites
#   bash scripts/test.sh c asan       # only some (names as in SUITES)
#
# A suite is a function suite_<name> that returns non-zero on failure; it
# runs in a subshell with `set -e`, so any failing command fails the suite
# and the next suite still runs. To add one (pytest, cargo test, bindings),
# write the function and add its name to SUITES.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

JOBS=${UVA_JOBS:-2}
SUITES=(c asan fault fuzz)

log() { printf '\n=== %s\n' "$*"; }

# configure_and_build DIR [cmake -D args...]
configure_and_build() {
  local dir=$1; shift
  cmake -S "$ROOT" -B "$dir" "$@"
  cmake --build "$dir" -j"$JOBS"
}

# configure_and_build_target DIR TARGET [cmake -D args...]: one target only.
configure_and_build_target() {
  local dir=$1 target=$2; shift 2
  cmake -S "$ROOT" -B "$dir" -DUVA_BUILD_EXAMPLES=OFF -DUVA_BUILD_BENCH=OFF "$@"
  cmake --build "$dir" -j"$JOBS" --target "$target"
}

# run_ctest DIR: every registered test, output of failures shown.
run_ctest() {
  (cd "$1" && ctest --output-on-failure --no-tests=error)
}

# run_pytest ARGS...: pytest, where exit code 5 ("no tests collected") is
# reported but not a failure.
run_pytest() {
  local rc=0
  python3 -m pytest "$@" || rc=$?
  if [ "$rc" -eq 5 ]; then
    echo "pytest: no tests collected in $*"
    return 0
  fi
  return "$rc"
}

# --- suites ------------------------------------------------------------------

# The C library: Criterion suites (shared and static), ABI and install checks.
suite_c() {
  configure_and_build build -DCMAKE_BUILD_TYPE=Release -DUVA_SANITIZE=
  run_ctest build
}

# The same under AddressSanitizer + UndefinedBehaviorSanitizer.
suite_asan() {
  configure_and_build build-asan -DCMAKE_BUILD_TYPE=Debug -DUVA_SANITIZE=address
  run_ctest build-asan
}

# Fault injection under ASan+UBSan: the Nth allocation or socket call of the
# core fails, for every N of a server/client scenario (tests/fault/fault.c).
suite_fault() {
  configure_and_build_target build-fault test_fault -DCMAKE_BUILD_TYPE=Debug \
    -DUVA_SANITIZE=address -DUVA_FAULT_INJECTION=ON
  (cd build-fault && ctest --output-on-failure -R '^test_fault$')
}

# The libFuzzer targets (fuzz/), a few seconds each on their committed
# corpora (clang; scripts/fuzz.sh runs them for longer).
suite_fuzz() {
  UVA_APT_EXTRA="clang libclang-rt-dev" bash scripts/setup.sh
  cmake -S "$ROOT" -B build-fuzz -DCMAKE_C_COMPILER=clang \
    -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug \
    -DUVA_SANITIZE=address -DUVA_BUILD_FUZZERS=ON -DUVA_BUILD_TESTS=OFF \
    -DUVA_BUILD_EXAMPLES=OFF -DUVA_BUILD_BENCH=OFF
  cmake --build build-fuzz -j"$JOBS" --target fuzz_stream_read fuzz_api
  (cd build-fuzz && ctest --output-on-failure -L fuzz)
}

# --- driver ------------------------------------------------------------------

main() {
  local selected=("$@")
  [ "${#selected[@]}" -gt 0 ] || selected=("${SUITES[@]}")
  local name
  for name in "${selected[@]}"; do
    declare -F "suite_$name" >/dev/null || { echo "test.sh: unknown suite '$name' (have: ${SUITES[*]})" >&2; exit 2; }
  done

  log "setup"
  bash scripts/setup.sh

  local passed=() failed=() rc start
  for name in "${selected[@]}"; do
    log "suite $name"
    start=$SECONDS
    set +e
    (set -e; "suite_$name")
    rc=$?
    set -e
    if [ "$rc" -eq 0 ]; then
      passed+=("$name")
      echo "=== suite $name: PASSED ($((SECONDS - start)) s)"
    else
      failed+=("$name")
      echo "=== suite $name: FAILED (exit $rc, $((SECONDS - start)) s)"
    fi
  done

  echo
  [ "${#passed[@]}" -eq 0 ] || echo "passed suites: ${passed[*]}"
  [ "${#failed[@]}" -eq 0 ] || echo "failed suites: ${failed[*]}"
  echo "suites: ${#passed[@]} passed, ${#failed[@]} failed"
  [ "${#failed[@]}" -eq 0 ]
}

main "$@"
