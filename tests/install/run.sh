#!/usr/bin/env bash
# install_consumer: install a build to a temporary prefix, then build and run
# tests/install/consumer.c against it four ways: find_package + shared,
# find_package + static, pkg-config uvasync (shared), pkg-config
# uvasync-static. Run by ctest, which sets the variables below.
#
#   UVA_BUILD_DIR    the configured and built uvasync build tree (required)
#   UVA_WORK_DIR     scratch folder, wiped first (default: BUILD/install_consumer)
#   UVA_CMAKE, UVA_CC, UVA_CONFIG, UVA_GENERATOR
#   UVA_EXTRA_FLAGS  compile+link flags of the build (sanitizers), so the
#                    consumer links against an instrumented library
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=${UVA_BUILD_DIR:?UVA_BUILD_DIR must name the build tree}
work=${UVA_WORK_DIR:-$build/install_consumer}
cmake_bin=${UVA_CMAKE:-cmake}
cc=${UVA_CC:-cc}
config=${UVA_CONFIG:-}
generator=${UVA_GENERATOR:-}
read -r -a flags <<<"${UVA_EXTRA_FLAGS:-}"
pkg_config=$(command -v pkg-config || command -v pkgconf || true)

step() { echo "== install_consumer: $*"; }
fail() { echo "install_consumer: FAIL: $*" >&2; exit 1; }

rm -rf "$work"
mkdir -p "$work"
prefix=$work/prefix

step "install $build -> $prefix"
"$cmake_bin" --install "$build" --prefix "$prefix" ${config:+--config "$config"} >"$work/install.log" ||
  { cat "$work/install.log"; fail "cmake --install"; }

so=$(find "$prefix" -name 'libuvasync.so.[0-9]*' -type f | head -n1)
[ -n "$so" ] || fail "no libuvasync.so.* installed"
libdir=$(dirname "$so")
for f in "$prefix/include/uvasync.h" "$prefix/include/uvasync/version.h" \
         "$libdir/libuvasync.a" "$libdir/libuvasync.so" \
         "$libdir/pkgconfig/uvasync.pc" "$libdir/pkgconfig/uvasync-static.pc" \
         "$libdir/cmake/uvasync/uvasyncConfig.cmake" \
         "$libdir/cmake/uvasync/uvasyncConfigVersion.cmake" \
         "$libdir/cmake/uvasync/uvasyncTargets.cmake"; do
  [ -e "$f" ] || fail "not installed: ${f#$prefix/}"
done
soname=$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
[[ "$soname" =~ ^libuvasync\.so\.[0-9]+$ ]] || fail "SONAME is '$soname', want libuvasync.so.<major>"
[ -e "$libdir/$soname" ] || fail "no $soname symlink"
echo "installed: $(cd "$prefix" && find . -type f -o -type l | sort | tr '\n' ' ')"

# The static executables must not need the shared library.
check_static() {
  if readelf -d "$1" | grep -q 'NEEDED.*libuvasync'; then
    fail "$1 depends on the shared libuvasync"
  fi
}

step "CMake: find_package(uvasync 1) in a separate project"
gen_args=()
[ -n "$generator" ] && gen_args=(-G "$generator")
"$cmake_bin" -S "$here" -B "$work/cmake-build" "${gen_args[@]}" \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" \
  -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_C_FLAGS="${flags[*]}" -DCMAKE_EXE_LINKER_FLAGS="${flags[*]}" \
  >"$work/cmake-configure.log" || { cat "$work/cmake-configure.log"; fail "configure consumer"; }
grep -q "found uvasync .* in $prefix" "$work/cmake-configure.log" ||
  { cat "$work/cmake-configure.log"; fail "find_package did not find the package in $prefix"; }
"$cmake_bin" --build "$work/cmake-build" ${config:+--config "$config"} >"$work/cmake-build.log" ||
  { cat "$work/cmake-build.log"; fail "build consumer"; }
bin_dir=$work/cmake-build
[ -n "$config" ] && [ -x "$bin_dir/$config/consumer" ] && bin_dir=$bin_dir/$config
"$bin_dir/consumer"            # rpath from CMake, no LD_LIBRARY_PATH
"$bin_dir/consumer_static"
check_static "$bin_dir/consumer_static"
readelf -d "$bin_dir/consumer" | grep -q 'NEEDED.*libuvasync\.so' ||
  fail "consumer (shared) does not link libuvasync.so"

step "CMake: find_package(uvasync 2) must fail (SameMajorVersion)"
if "$cmake_bin" -S "$here" -B "$work/cmake-build-v2" "${gen_args[@]}" \
     -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" -DUVA_WANT_VERSION=2 \
     >"$work/cmake-v2.log" 2>&1; then
  cat "$work/cmake-v2.log"; fail "find_package(uvasync 2) accepted version 1"
fi

[ -n "$pkg_config" ] || fail "pkg-config not found"
export PKG_CONFIG_PATH="$libdir/pkgconfig"

step "pkg-config: uvasync (shared)"
read -r -a pc_shared <<<"$("$pkg_config" --cflags --libs uvasync)"
echo "cc consumer.c ${pc_shared[*]}"
"$cc" "${flags[@]}" "$here/consumer.c" "${pc_shared[@]}" -o "$work/consumer_pc"
LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$work/consumer_pc"

step "pkg-config: uvasync-static (--static)"
read -r -a pc_static <<<"$("$pkg_config" --static --cflags --libs uvasync-static)"
echo "cc consumer.c ${pc_static[*]}"
"$cc" "${flags[@]}" "$here/consumer.c" "${pc_static[@]}" -o "$work/consumer_pc_static"
"$work/consumer_pc_static"
check_static "$work/consumer_pc_static"

step "pkg-config versions: $("$pkg_config" --modversion uvasync) / $("$pkg_config" --modversion uvasync-static)"
echo "install_consumer: OK"
