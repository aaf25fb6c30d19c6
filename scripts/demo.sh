#!/usr/bin/env bash
# Command (a): set up the machine, build uvasync (Release) into build/ and
# run the demo program, examples/demo.c. Arguments are passed to the demo.
#
#   bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh

BUILD_DIR=${UVA_BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" -j2 --target demo

echo "== running $BUILD_DIR/examples/demo"
exec "$BUILD_DIR/examples/demo" "$@"
