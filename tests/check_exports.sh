#!/usr/bin/env bash
# abi_exports: the shared library exports the public C API and nothing else.
#
#   check_exports.sh LIBUVASYNC.so [include/uvasync.h]
#
# Fails if a defined dynamic symbol is not uva_* (or is an internal uva__*),
# or if a uva_* symbol is not under the UVASYNC_<major> version node. Given
# the header, it also fails if a function declared UVA_EXTERN there is not
# exported (declared but never implemented).
set -euo pipefail

lib=${1:?usage: check_exports.sh LIB [HEADER]}
header=${2:-}
nm_bin=${NM:-nm}
command -v "$nm_bin" >/dev/null 2>&1 || nm_bin=nm

[ -f "$lib" ] || { echo "abi_exports: no such file: $lib" >&2; exit 1; }

# Lines look like "000000000000abcd T uva_loop_new@@UVASYNC_1"; the version
# node itself shows up as an absolute symbol ("A UVASYNC_1").
symbols=$("$nm_bin" -D --defined-only --with-symbol-versions "$lib" 2>/dev/null ||
          "$nm_bin" -D --defined-only "$lib")

status=0
exported=()
while read -r _addr type sym; do
  [ -n "${sym:-}" ] || continue
  base=${sym%%@*}
  version=""
  [[ "$sym" == *@* ]] && version=${sym##*@}
  if [ "$type" = A ] && [[ "$base" =~ ^UVASYNC_[0-9]+$ ]]; then
    continue                                   # the version node
  fi
  if [[ "$base" == uva__* ]]; then
    echo "abi_exports: internal symbol exported: $sym ($type)"; status=1; continue
  fi
  if [[ "$base" != uva_* ]]; then
    echo "abi_exports: non-uva_ symbol exported: $sym ($type)"; status=1; continue
  fi
  if [ -n "$version" ] && ! [[ "$version" =~ ^UVASYNC_[0-9]+$ ]]; then
    echo "abi_exports: $base has version '$version', expected UVASYNC_<major>"; status=1
  fi
  exported+=("$base")
done <<<"$symbols"

echo "abi_exports: ${#exported[@]} uva_* symbols exported by $(basename "$lib")"
[ "${#exported[@]}" -gt 0 ] || { echo "abi_exports: nothing exported"; status=1; }

if [ -n "$header" ]; then
  # Every function declared "UVA_EXTERN <type> <name>(" must be exported.
  # Declarations may span lines, so squash the header first; the macro's own
  # definition lines (#define UVA_EXTERN ...) carry no '(' after a uva_ name.
  declared=$(tr '\n' ' ' <"$header" |
             grep -oE 'UVA_EXTERN[^;(]*\buva_[A-Za-z0-9_]+[[:space:]]*\(' |
             grep -oE 'uva_[A-Za-z0-9_]+[[:space:]]*\($' | tr -d '( ' | sort -u)
  missing=0
  for fn in $declared; do
    found=0
    for e in "${exported[@]}"; do [ "$e" = "$fn" ] && { found=1; break; }; done
    if [ "$found" = 0 ]; then
      echo "abi_exports: declared in $(basename "$header") but not exported: $fn"
      missing=$((missing + 1))
    fi
  done
  [ "$missing" = 0 ] || status=1
  echo "abi_exports: $(wc -w <<<"$declared") functions declared in $(basename "$header")"
fi

[ "$status" = 0 ] && echo "abi_exports: OK"
exit "$status"
