#!/usr/bin/env bash
# The C test suite under valgrind memcheck: no error and no definite or
# indirect leak in any process (Criterion runs each test in a worker
# process; --trace-children follows them, one log per process).
#
#   bash scripts/valgrind.sh                 # every tests/test_*.c program,
#                                            # test_threads and a short soak
#   bash scripts/valgrind.sh test_stream_read  # some programs only
#
# Builds a plain Debug tree in build-valgrind/ (no sanitizer). Logs go to
# build-valgrind/valgrind/<program>.<pid>.log. Slow (valgrind runs code
# 20-50 times slower): tests scale their timeouts with
# UVA_TEST_TIMEOUT_MULTIPLIER (20 here).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
BUILD=$ROOT/build-valgrind
JOBS=${UVA_JOBS:-2}

UVA_APT_EXTRA="valgrind ${UVA_APT_EXTRA:-}" bash scripts/setup.sh
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Debug -DUVA_SANITIZE= \
  -DUVA_BUILD_EXAMPLES=OFF -DUVA_BUILD_BENCH=OFF
cmake --build "$BUILD" -j"$JOBS"

logs=$BUILD/valgrind
rm -rf "$logs"
mkdir -p "$logs"
export UVA_TEST_TIMEOUT_MULTIPLIER=${UVA_TEST_TIMEOUT_MULTIPLIER:-20}

vg() { # vg NAME PROGRAM ARGS...
  local name=$1; shift
  # --fair-sched=yes: valgrind's thread lock is a futex, not a pipe whose
  # one-byte writes would count in the tests that count write calls.
  valgrind --tool=memcheck --leak-check=full --fair-sched=yes \
    --errors-for-leak-kinds=definite,indirect \
    --show-leak-kinds=definite,indirect --error-exitcode=99 \
    --trace-children=yes --log-file="$logs/$name.%p.log" "$@"
}

programs=("$@")
if [ "${#programs[@]}" -eq 0 ]; then
  for f in tests/test_*.c; do programs+=("$(basename "$f" .c)"); done
  programs+=(test_threads soak)
fi

failed=()
for p in "${programs[@]}"; do
  echo "=== valgrind: $p"
  rc=0
  case $p in
    # RSS says nothing under memcheck: freed blocks wait in its quarantine
    # (--freelist-vol, 20 MB), so the soak's growth check only reports.
    soak) vg soak "$BUILD/soak/soak" --short --no-rss-check || rc=$? ;;
    test_threads) vg "$p" "$BUILD/tests/$p" || rc=$? ;;
    *) vg "$p" "$BUILD/tests/$p" --jobs 1 || rc=$? ;;
  esac
  # Every process of the program: no error (leaks count as errors).
  if [ "$rc" -ne 0 ] || grep -L 'ERROR SUMMARY: 0 errors' "$logs/$p".*.log | grep -q .; then
    echo "=== valgrind: $p FAILED (exit $rc); logs with errors:"
    grep -L 'ERROR SUMMARY: 0 errors' "$logs/$p".*.log || true
    failed+=("$p")
  else
    echo "=== valgrind: $p clean ($(ls "$logs/$p".*.log | wc -l) processes)"
  fi
done

echo
if [ "${#failed[@]}" -gt 0 ]; then
  echo "valgrind: errors or leaks in: ${failed[*]} (logs in $logs)"
  exit 1
fi
echo "valgrind: ${#programs[@]} programs clean"
