#!/usr/bin/env bash
# Run the libFuzzer targets for longer than the test suite does, one after
# the other, each on a scratch copy of its committed corpus; report
# executions and coverage, and keep any crash in build-fuzz/fuzz/.
#
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]   # default 600 s, every target
#
# New corpus entries stay in build-fuzz/fuzz/<target>_long/; to grow the
# committed corpus, merge them (minimised):
#   build-fuzz/fuzz/<target> -merge=1 -use_counters=0 fuzz/corpus/<target> build-fuzz/fuzz/<target>_long
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
seconds=${1:-600}
shift || true
targets=("$@")
# fuzz_tls needs a library with TLS (OpenSSL): name it to run it.
[ "${#targets[@]}" -gt 0 ] || targets=(fuzz_stream_read fuzz_api fuzz_waits)

UVA_APT_EXTRA="clang libclang-rt-dev" bash scripts/setup.sh
cmake -S "$ROOT" -B build-fuzz -DCMAKE_C_COMPILER=clang \
  -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug \
  -DUVA_SANITIZE=address -DUVA_BUILD_FUZZERS=ON -DUVA_BUILD_TESTS=OFF \
  -DUVA_BUILD_EXAMPLES=OFF -DUVA_BUILD_BENCH=OFF
cmake --build build-fuzz -j"${UVA_JOBS:-2}" --target "${targets[@]}"

status=0
for t in "${targets[@]}"; do
  work=build-fuzz/fuzz/${t}_long
  mkdir -p "$work"
  cp -n fuzz/corpus/"$t"/* "$work"/ 2>/dev/null || true
  log=build-fuzz/fuzz/$t.log
  echo "=== $t: ${seconds}s"
  rc=0
  nice build-fuzz/fuzz/"$t" -max_total_time="$seconds" -timeout=20 \
    -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix=build-fuzz/fuzz/"$t"- "$work" >"$log" 2>&1 || rc=$?
  # The last status line has the coverage (cov: edges, ft: features).
  grep -E '^#[0-9]+' "$log" | tail -n 1
  grep -E 'stat::number_of_executed_units|stat::peak_rss_mb' "$log" || true
  if [ "$rc" -ne 0 ]; then
    echo "=== $t: FAILED (exit $rc), see $log"
    status=1
  fi
done
exit "$status"
