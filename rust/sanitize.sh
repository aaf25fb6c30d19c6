#!/usr/bin/env bash
# Memory checks of the Rust crates' tests (not part of scripts/test.sh: they
# take a few minutes).
#
#   bash rust/sanitize.sh asan      # AddressSanitizer + LeakSanitizer on the
#                                   # Rust side (needs a nightly toolchain)
#   bash rust/sanitize.sh valgrind  # every test binary under valgrind: covers
#                                   # the C++ core as well (not instrumented
#                                   # by the Rust ASan build)
#   bash rust/sanitize.sh           # both
#
# valgrind counts one "possibly lost" 48-byte block of libtest's own channel
# context in every test binary (also in ones that never touch uvasync); it is
# reported, not failed on. Any invalid access, uninitialised read or
# definitely lost block fails.
set -euo pipefail
# Tests that bound their time leave it out under the sanitizers.
export UVASYNC_TEST_SLOW=1
cd "$(dirname "${BASH_SOURCE[0]}")"
CARGO=${CARGO:-$(command -v cargo || echo "$HOME/.cargo/bin/cargo")}
what=${1:-all}
rc=0

if [ "$what" = asan ] || [ "$what" = all ]; then
  echo "== ASan (nightly)"
  RUSTFLAGS="-Zsanitizer=address" ASAN_OPTIONS=detect_leaks=1 \
    "$CARGO" +nightly test --all-features --tests -j2 \
    --target x86_64-unknown-linux-gnu --target-dir target/asan || rc=1
fi

if [ "$what" = valgrind ] || [ "$what" = all ]; then
  echo "== valgrind"
  bins=$("$CARGO" test --all-features --no-run -j2 --message-format=json 2>/dev/null \
    | grep -o '"executable":"[^"]*"' | cut -d'"' -f4)
  for b in $bins; do
    out=$(mktemp)
    valgrind --leak-check=full --show-leak-kinds=definite "$b" --test-threads=1 >"$out" 2>&1 || true
    if grep -qE "Invalid (read|write|free)|uninitialised|definitely lost: [1-9]|test result: FAILED" "$out"; then
      echo "FAIL $(basename "$b")"; grep -E "Invalid|uninitialised|definitely lost|FAILED" "$out" | head; rc=1
    else
      echo "ok   $(basename "$b"): $(grep -c '^test .* ok$' "$out") tests, no invalid access, no definite leak"
    fi
    rm -f "$out"
  done
fi
exit $rc
