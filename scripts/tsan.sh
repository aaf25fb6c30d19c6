#!/usr/bin/env bash
# ThreadSanitizer check of everything that crosses threads: stop, wake,
# call_soon_threadsafe, retain/release and the thread-safe flag from other
# threads (tests/threads/threads.c), and the loop's thread pool with its
# file jobs and sendfile (tests/threads/pool.c), TLS contexts shared by
# loops of several threads (tests/threads/tls.c): plain programs, since
# Criterion cannot start under TSan (its suites are built but disabled in
# this build).
#
#   bash scripts/tsan.sh
#
# Builds build-tsan/ with -DUVA_SANITIZE=thread and runs its ctest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
JOBS=${UVA_JOBS:-2}

bash scripts/setup.sh
cmake -S "$ROOT" -B "$ROOT/build-tsan" -DCMAKE_BUILD_TYPE=Debug \
  -DUVA_SANITIZE=thread -DUVA_BUILD_EXAMPLES=OFF -DUVA_BUILD_BENCH=OFF
cmake --build "$ROOT/build-tsan" -j"$JOBS" --target test_threads test_threads_pool
# TLS contexts across threads (tests/threads/tls.c), when the build has TLS.
if grep -q "^UVA_TLS_BUILT:INTERNAL=ON" "$ROOT/build-tsan/CMakeCache.txt"; then
  cmake --build "$ROOT/build-tsan" -j"$JOBS" --target test_threads_tls
fi
(cd "$ROOT/build-tsan" && ctest --output-on-failure -R '^test_threads(_pool|_tls)?$')
