/* uvasync — error names and messages, generated from UVA_ERRNO_MAP. */
#include "internal.h"

#include <cstdio>
#include <cstring>

namespace uva {
namespace detail {

/* libuv names ENOEXEC from 1.45 on (UV__ENOEXEC, -ENOEXEC on Unix); the
 * spawn reports it, so the map has it with the value those versions give. */
#ifndef UV__ENOEXEC
enum { UV_ENOEXEC = -ENOEXEC };
#endif

/* Each code must equal libuv's: the ABI promises it. */
#define UVA__CHECK_XX(name, value, msg)            \
  static_assert(int(UVA_##name) == int(UV_##name), \
                "UVA_" #name " differs from libuv");
UVA_ERRNO_MAP_LIBUV(UVA__CHECK_XX)
#undef UVA__CHECK_XX

const char *err_name(int err) {
  switch (err) {
#define UVA__NAME_XX(name, value, msg) \
  case UVA_##name:                     \
    return #name;
    UVA_ERRNO_MAP(UVA__NAME_XX)
#undef UVA__NAME_XX
  }
  return nullptr;
}

const char *strerror(int err) {
  switch (err) {
#define UVA__MSG_XX(name, value, msg) \
  case UVA_##name:                    \
    return msg;
    UVA_ERRNO_MAP(UVA__MSG_XX)
#undef UVA__MSG_XX
  }
  return nullptr;
}

char *format_unknown(int err, char *buf, size_t len, const char *what) {
  if (buf != nullptr && len > 0)
    std::snprintf(buf, len, "unknown %s %d", what, err);
  return buf;
}

}  // namespace detail
}  // namespace uva
