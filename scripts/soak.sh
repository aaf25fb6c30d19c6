#!/usr/bin/env bash
# Load and soak test (tests/soak/soak.c) on an optimised build: 10,000
# loopback connections held open and echoing, then 1,000,000 verified
# request/response exchanges over connections opened and closed 1,000 at a
# time, with tasks sleeping, cancelling and timing out around them. Prints
# the RSS curve of both processes and fails if it grows by more than 5%
# after warm-up.
#
#   bash scripts/soak.sh [soak options]     # e.g. --exchanges 5000000
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DUVA_SANITIZE=
cmake --build build -j"${UVA_JOBS:-2}" --target soak
exec build/soak/soak "$@"
