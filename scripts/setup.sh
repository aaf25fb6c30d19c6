#!/usr/bin/env bash
# Install what building and testing uvasync needs on Debian/Ubuntu.
# Idempotent: asks dpkg first and calls apt-get (update + install) only when
# something is missing, so a second run takes well under a second.
#
#   bash scripts/setup.sh                 # everything below
#   UVA_APT_EXTRA="valgrind gdb" bash scripts/setup.sh
#
# To add a dependency, add it to the list of its group.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

# Groups of Debian packages. Keep one package a line.
APT_BUILD=(
  build-essential   # gcc, g++, make, binutils (nm, readelf)
  cmake
  pkg-config
  libuv1-dev
  libssl-dev        # TLS (src/tls.cpp); without it uva_tls_* return ENOTSUP
)
APT_TEST=(
  libcriterion-dev  # C test suite (tests/test_*.c)
  openssl           # s_server/s_client, the TLS suites' peers
  luajit            # bindings/luajit client
  nodejs            # bindings/node client (koffi from npm)
  redis-server      # python/tests/test_aio_apps.py (redis-py's client)
  wrk               # bench/run_aio.py's HTTP load client
)
APT_LINT=(
  clang-format      # scripts/format.sh, the lint suite (ruff comes from pip)
  python3-venv      # the lint suite's venv for ruff
)
# Extra packages from the environment (space separated).
read -r -a APT_EXTRA <<<"${UVA_APT_EXTRA:-}"

apt_is_installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

# ensure_apt_packages PKG... : install the ones that are missing.
ensure_apt_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    apt_is_installed "$pkg" || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    return 0
  fi
  echo "setup: installing ${missing[*]}"
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    sudo=(sudo -n)
  fi
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
}

main() {
  if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "setup: not a Debian-like system; install by hand: ${APT_BUILD[*]} ${APT_TEST[*]} ${APT_LINT[*]}" >&2
    return 1
  fi
  ensure_apt_packages "${APT_BUILD[@]}" "${APT_TEST[@]}" "${APT_LINT[@]}" "${APT_EXTRA[@]}"
  # Debian packages npm apart from nodejs; other nodejs builds bundle it.
  command -v npm >/dev/null 2>&1 || ensure_apt_packages npm
  echo "setup: ok ($(cmake --version | head -n1), libuv $(pkg-config --modversion libuv), criterion $(pkg-config --modversion criterion))"
}

main "$@"
