#!/usr/bin/env bash
# Copy the C library's sources into uvasync-sys/vendor/ so that the crate
# `cargo package` makes builds on its own (build.rs prefers vendor/ when it
# has no installed library). vendor/ is not committed: it is made from the
# repository at packaging time.
#
#   bash rust/uvasync-sys/vendor.sh            # refresh vendor/
#   bash rust/uvasync-sys/vendor.sh --package  # refresh, then cargo package
#                                              # (which builds the packaged crate)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
vendor=$here/vendor

rm -rf "$vendor"
mkdir -p "$vendor"
cp -R "$repo/src" "$repo/include" "$repo/cmake" "$repo/CMakeLists.txt" "$vendor/"
echo "vendor.sh: copied src/ include/ cmake/ CMakeLists.txt into $vendor"

if [ "${1:-}" = "--package" ]; then
  cargo=${CARGO:-cargo}
  # UVASYNC_VENDOR: build the packaged crate from vendor/ even if a system
  # library exists, so this checks what a user without one gets.
  (cd "$here/.." && UVASYNC_VENDOR=1 "$cargo" package -p uvasync-sys --allow-dirty -j"${UVA_JOBS:-2}")
fi
