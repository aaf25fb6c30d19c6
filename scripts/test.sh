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
SUITES=(lint c asan fault fuzz bindings python rust bench)

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

# Style and warnings, kept by tools: every formatter would change nothing
# (scripts/format.sh --check: clang-format, rustfmt, ruff format), ruff's
# and clippy's lints find nothing, and the C/C++ builds without a warning
# (-Werror, in the `build` dir that suite_c then reuses). The formatters'
# settings: .clang-format, rust/rustfmt.toml, ruff.toml.
suite_lint() {
  local cargo rc=0
  cargo=$(find_cargo)
  # Every check runs, so that one run names all the findings.
  bash scripts/format.sh --check || rc=1
  log "lint: ruff check"
  build-lint/tools/bin/ruff check --no-cache python bench bindings scripts examples || rc=1
  log "lint: cargo clippy"
  (cd rust && "$cargo" clippy --all-targets --all-features -j"$JOBS" -- -D warnings) || rc=1
  log "lint: build with warnings as errors"
  configure_and_build build "${UVA_BUILD_FLAGS[@]}" || rc=1
  return "$rc"
}

# The `build` dir's flags, shared by suite_lint, suite_c and suite_bindings
# (so that suite_c reuses the build suite_lint made).
UVA_BUILD_FLAGS=(-DCMAKE_BUILD_TYPE=Release -DUVA_SANITIZE= -DUVA_WARNINGS_AS_ERRORS=ON)

# The C library: Criterion suites (shared and static), ABI and install checks.
suite_c() {
  configure_and_build build "${UVA_BUILD_FLAGS[@]}"
  run_ctest build
}

# The same under AddressSanitizer + UndefinedBehaviorSanitizer.
suite_asan() {
  configure_and_build build-asan -DCMAKE_BUILD_TYPE=Debug -DUVA_SANITIZE=address
  run_ctest build-asan
}

# The dlopen bindings (bindings/): the generated C declarations are fresh and
# load in cffi, and the LuaJIT, Node.js and ctypes clients run against the
# shared library of the `build` dir (the one suite_c uses).
suite_bindings() {
  cmake -S "$ROOT" -B build "${UVA_BUILD_FLAGS[@]}"
  cmake --build build -j"$JOBS" --target uvasync
  export UVASYNC_LIBRARY=$ROOT/build/libuvasync.so
  python3 bindings/gen_cdef.py --check
  python3 bindings/check_cffi.py
  log "bindings: luajit";  timeout 120 luajit bindings/luajit/client.lua
  log "bindings: ctypes";  timeout 120 python3 bindings/ctypes/client.py
  ensure_node_modules bindings/node
  log "bindings: node";    timeout 120 node bindings/node/client.js
}

# ensure_node_modules DIR: `npm ci` from DIR's package-lock.json, skipped
# when node_modules already matches it.
ensure_node_modules() {
  if [ "$1/node_modules/.package-lock.json" -nt "$1/package-lock.json" ]; then
    return 0
  fi
  (cd "$1" && npm ci --no-audit --no-fund --loglevel=error)
}

# The Python package (python/): installed with pip from this checkout (it
# compiles the core into its cffi extension), then its pytest suite, run from
# outside the source tree so that the installed copy is what is tested.
# Among it, test_cpython_asyncio.py runs CPython's own test_asyncio (the
# interpreter's) on uvasync.EventLoop (about 2 minutes).
suite_python() {
  python3 -m pip install --quiet --disable-pip-version-check \
    --root-user-action=ignore "$ROOT/python[test]"
  # The PyPI applications of test_aio_apps.py (pinned; quick when present).
  python3 -m pip install --quiet --disable-pip-version-check \
    --root-user-action=ignore -r "$ROOT/python/tests/requirements-apps.txt"
  (cd "$ROOT/python/tests" && run_pytest -q -p no:cacheprovider .)
  run_cpython_asyncio_versions
}

# CPython's test_asyncio on uvasync.EventLoop under more CPython versions,
# each with the package installed in a venv of its own under build-py/:
#   UVA_CPYTHON_VERSIONS="3.12 3.13" bash scripts/test.sh python
# Off by default (each version builds the package, ~2 minutes, then runs
# ~2 minutes). A version asked for that cannot run fails the suite, saying
# why (no interpreter, or no test.test_asyncio installed with it).
run_cpython_asyncio_versions() {
  local v py venv rc=0
  for v in ${UVA_CPYTHON_VERSIONS:-}; do
    log "python: CPython $v's test_asyncio on uvasync.EventLoop"
    if ! py=$(command -v "python$v") || ! "$py" -c pass 2>/dev/null; then
      echo "NOT RUN: no python$v here"
      rc=1
      continue
    fi
    venv=$ROOT/build-py/venv-$v
    "$py" -m venv --clear "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
      "$ROOT/python"
    (cd "$ROOT/python/tests" &&
      timeout 900 "$venv/bin/python" cpython_asyncio_run.py) || rc=1
  done
  return "$rc"
}

# The Rust crates (rust/): cargo test with every feature (unit, scenario,
# Send/Sync and doc tests; uvasync-sys checks its declarations against the
# header), rustdoc with warnings denied (also as docs.rs builds it: DOCS_RS
# set, no native build), and `cargo package` of the workspace (each crate
# built from its .crate; uvasync-sys from the C++ sources it carries in
# vendor/, then once more offline from the unpacked .crate alone, with its
# tests). rust-version is checked by clippy's incompatible_msrv lint (lint
# suite); its toolchain is not installed here.
suite_rust() {
  local cargo crate out
  cargo=$(find_cargo)
  cd "$ROOT/rust"
  # The file test copies 1 GiB here, as the C and Python suites do (its
  # default is 256 MiB, for quick runs by hand).
  UVASYNC_BIG_FILE_MIB=1024 "$cargo" test --all-features -j"$JOBS"
  RUSTDOCFLAGS="-D warnings" "$cargo" doc --no-deps --all-features -j"$JOBS"
  DOCS_RS=1 CARGO_TARGET_DIR=target/docs-rs RUSTDOCFLAGS="-D warnings" \
    "$cargo" doc --no-deps --all-features -j"$JOBS"
  if find target/docs-rs -path '*uvasync-sys-*/out/build' | grep -q .; then
    echo "test.sh: the docs.rs build ran the native build" >&2
    return 1
  fi
  UVASYNC_VENDOR=1 "$cargo" package --workspace --allow-dirty -j"$JOBS"
  crate=$(ls target/package/uvasync-sys-*.crate)
  out=$(mktemp -d)
  tar xzf "$crate" -C "$out"
  (cd "$out"/uvasync-sys-* && UVASYNC_VENDOR=1 CARGO_TARGET_DIR="$out/target" \
    "$cargo" test --offline -j"$JOBS")
  rm -rf "$out"
}

# cargo from PATH, else rustup's default place (CI runs as root without it
# on PATH).
find_cargo() {
  local c
  for c in "$(command -v cargo || true)" "$HOME/.cargo/bin/cargo" /root/.cargo/bin/cargo; do
    if [ -n "$c" ] && [ -x "$c" ]; then
      echo "$c"
      return 0
    fi
  done
  echo "test.sh: cargo not found (install Rust with rustup)" >&2
  return 1
}

# Fault injection under ASan+UBSan: the Nth allocation or socket call of the
# core fails, for every N of a server/client scenario (tests/fault/fault.c),
# of a child process and signal scenario (tests/fault/fault_process.c), and
# the Nth allocation or pool thread start of a scenario of jobs and file
# operations (tests/fault/fault_pool.c), and of a TLS round trip
# (tests/fault/fault_tls.c, when the build has TLS).
suite_fault() {
  configure_and_build_target build-fault test_fault -DCMAKE_BUILD_TYPE=Debug \
    -DUVA_SANITIZE=address -DUVA_FAULT_INJECTION=ON
  cmake --build build-fault -j"$JOBS" --target test_fault_process test_fault_pool
  if grep -q "^UVA_TLS_BUILT:INTERNAL=ON" build-fault/CMakeCache.txt 2>/dev/null; then
    cmake --build build-fault -j"$JOBS" --target test_fault_tls
  fi
  (cd build-fault && ctest --output-on-failure -R '^test_fault(_process|_pool|_tls)?$')
}

# The libFuzzer targets (fuzz/), a few seconds each on their committed
# corpora (clang; scripts/fuzz.sh runs them for longer).
suite_fuzz() {
  UVA_APT_EXTRA="clang libclang-rt-dev" bash scripts/setup.sh
  cmake -S "$ROOT" -B build-fuzz -DCMAKE_C_COMPILER=clang \
    -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug \
    -DUVA_SANITIZE=address -DUVA_BUILD_FUZZERS=ON -DUVA_BUILD_TESTS=OFF \
    -DUVA_BUILD_EXAMPLES=OFF -DUVA_BUILD_BENCH=OFF
  cmake --build build-fuzz -j"$JOBS" --target fuzz_stream_read fuzz_api fuzz_waits
  if grep -q "^UVA_TLS_BUILT:INTERNAL=ON" build-fuzz/CMakeCache.txt; then
    cmake --build build-fuzz -j"$JOBS" --target fuzz_tls
  fi
  (cd build-fuzz && ctest --output-on-failure -L fuzz)
}

# The benchmark harness (bench/run_all.py --quick, about 3 min plus builds
# that are mostly shared with the suites above: the CMake `build` dir, cargo's
# registry): it builds its programs, runs every peer comparison once in
# small, and must exit 0 with a complete JSON file and a chart. No timing is
# asserted; this only proves the harness works (and the echo load client's
# byte-for-byte check passes against every server).
suite_bench() {
  local out cargo
  cargo=$(find_cargo)
  out=$(mktemp -d)
  # Expanded now: the suite runs in its own subshell, whose EXIT runs after
  # this function's locals are gone.
  trap "rm -rf '$out'" EXIT
  CARGO=$cargo python3 bench/run_all.py --quick --out-dir "$out"
  test -s "$out/latest-quick.png"
  python3 - "$out/latest-quick.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
groups = {row["group"] for row in r["rows"]}
assert groups == {"c", "python", "rust"}, groups
for row in r["rows"]:
    assert row["impls"]["uvasync"]["median"], row
    assert all(v is not None for v in row["ratios"].values()), row
    if row["benchmark"].startswith("echo"):
        assert all(v is not None for v in row["paired_ratios"].values()), row
for g in groups:  # run_os.py's rows: processes, the executor, files
    have = {row["benchmark"] for row in r["rows"] if row["group"] == g}
    assert {"procs", "exec 1", "exec 64", "file read"} <= have, (g, have)
aio = {row["benchmark"] for row in r["aio"]["rows"]}  # run_aio.py's rows
assert {"echo protocol 1k", "echo streams 100k", "http", "call_soon",
        "call_later", "sock"} <= aio, aio
for row in r["aio"]["rows"]:
    assert set(row["impls"]) == {"uvasync", "uvloop", "asyncio"}, row
    assert all(v is not None for v in row["paired_ratios"].values()), row
# run_tls.py's rows: the TLS echo and handshakes, every server measured
tls = {row["workload"]: row for row in r["tls"]}
assert set(tls) == {"1k", "100k", "handshakes"}, tls.keys()
for row in tls.values():
    assert {"uvasync-c", "uvasync-py", "uvasync-rs", "asyncio", "uvloop",
            "tokio-rustls"} <= set(row["impls"]), row
hyper = r["hyper"]["rows"]  # run_hyper.py's row (wrk is installed here)
assert [row["benchmark"] for row in hyper] == ["hyper"], hyper
assert set(hyper[0]["impls"]) == {"uvasync", "tokio"}, hyper
assert all(v is not None for v in hyper[0]["paired_ratios"].values()), hyper
assert not r["errors"], r["errors"]
print(f"bench: {len(r['rows'])} + {len(aio)} asyncio + {len(tls)} TLS + "
      f"{len(hyper)} hyper result rows, machine {r['machine']['cpu_model']}")
PY
  # The echo driver's extra servers (a second tokio; uvasync on libuv's
  # level-triggered poll phase), one short round.
  CARGO=$cargo python3 bench/run_rust.py --only echo --quick --seconds 0.5 \
    --control --libuv-poller >/dev/null
  # cpu_split.py needs perf, which the set-up does not install: smoke-run it
  # where perf can record.
  if command -v perf >/dev/null && perf record -q -o /dev/null -- true >/dev/null 2>&1; then
    python3 bench/tools/cpu_split.py --set c --only 10x1k --repeats 1 --seconds 1 --symbols 3
  else
    echo "bench: cpu_split.py not run (no usable perf)"
  fi
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
