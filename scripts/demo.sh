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
"$BUILD_DIR/examples/demo" "$@"

# The Python package (pip install ./python compiles the core into it), and
# its example: a server and a client talking to each other.
echo "== installing the Python package (pip install ./python)"
python3 -m pip install --quiet --disable-pip-version-check \
  --root-user-action=ignore ./python
echo "== running the Python example (examples/chat.py)"
python3 examples/chat.py

# The Rust crate's echo server example, serving one client of its own.
CARGO=$(command -v cargo || echo "$HOME/.cargo/bin/cargo")
if [ -x "$CARGO" ]; then
  echo "== running the Rust example (rust/uvasync/examples/echo_server.rs --demo)"
  (cd rust && "$CARGO" run -q -j2 --release --example echo_server -- --demo)
else
  echo "== skipping the Rust example: cargo not found"
fi
