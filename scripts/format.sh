#!/usr/bin/env bash
# Apply the tree's formatters, or check that they would change nothing:
#
#   bash scripts/format.sh           # rewrite files in place
#   bash scripts/format.sh --check   # exit non-zero, naming the findings
#
# clang-format (.clang-format) for the C and C++ of the tree, rustfmt
# (rust/rustfmt.toml) for the crates, ruff format (ruff.toml) for Python.
# scripts/test.sh's lint suite runs the --check form, so these are exactly
# the files it checks. clang-format comes from scripts/setup.sh; ruff is
# pip-installed, pinned, into build-lint/tools (its output changes between
# versions, so everybody formats with the same one).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

RUFF_VERSION=0.17.6
RUFF_VENV=$ROOT/build-lint/tools
# The Python of the tree (ruff skips what .gitignore ignores).
PY_DIRS=(python bench bindings scripts examples)

check=0
case "${1:-}" in
  --check) check=1 ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

# c_files: tracked and new C/C++ files, except generated ones.
# bindings/uvasync.cdef.h is gen_cdef.py's output (cffi's cdef dialect).
c_files() {
  git ls-files --cached --others --exclude-standard -- \
      '*.c' '*.h' '*.cpp' '*.hpp' '*.cc' |
    grep -v -x -e 'bindings/uvasync.cdef.h' |
    while read -r f; do [ -f "$f" ] && echo "$f"; done
}

# ensure_ruff: the pinned ruff in RUFF_VENV; only pip when it is missing or
# another version.
ensure_ruff() {
  local ruff=$RUFF_VENV/bin/ruff
  if [ -x "$ruff" ] && [ "$("$ruff" --version)" = "ruff $RUFF_VERSION" ]; then
    return 0
  fi
  [ -x "$RUFF_VENV/bin/pip" ] || python3 -m venv --clear "$RUFF_VENV"
  "$RUFF_VENV/bin/pip" install --quiet --disable-pip-version-check \
    "ruff==$RUFF_VERSION"
}

find_cargo() {
  local c
  for c in "$(command -v cargo || true)" "$HOME/.cargo/bin/cargo" /root/.cargo/bin/cargo; do
    if [ -n "$c" ] && [ -x "$c" ]; then
      echo "$c"
      return 0
    fi
  done
  echo "format.sh: cargo not found (install Rust with rustup)" >&2
  return 1
}

main() {
  command -v clang-format >/dev/null ||
    { echo "format.sh: clang-format not found (bash scripts/setup.sh)" >&2; return 1; }
  ensure_ruff
  local cargo rc=0
  cargo=$(find_cargo)
  mapfile -t cfiles < <(c_files)
  if [ "$check" -eq 1 ]; then
    echo "format: clang-format $(clang-format --version | grep -o '[0-9][0-9.]*' | head -n1), ${#cfiles[@]} files"
    clang-format --dry-run --Werror "${cfiles[@]}" || rc=1
    echo "format: cargo fmt"
    (cd rust && "$cargo" fmt --check) || rc=1
    echo "format: ruff format"
    "$RUFF_VENV/bin/ruff" format --check "${PY_DIRS[@]}" || rc=1
    [ "$rc" -eq 0 ] || echo "format: findings above; bash scripts/format.sh fixes them" >&2
    return "$rc"
  fi
  clang-format -i "${cfiles[@]}"
  (cd rust && "$cargo" fmt)
  "$RUFF_VENV/bin/ruff" format "${PY_DIRS[@]}"
}

main
