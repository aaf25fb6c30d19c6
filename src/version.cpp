/* uvasync — run-time version. */
#include "internal.h"

#define UVA__STR2(x) #x
#define UVA__STR(x) UVA__STR2(x)

namespace uva {
namespace detail {

unsigned int version() { return UVA_VERSION_HEX; }

const char *version_string() {
#if UVA_VERSION_IS_RELEASE
  return UVA__STR(UVA_VERSION_MAJOR) "." UVA__STR(
      UVA_VERSION_MINOR) "." UVA__STR(UVA_VERSION_PATCH);
#else
  return UVA__STR(UVA_VERSION_MAJOR) "." UVA__STR(
      UVA_VERSION_MINOR) "." UVA__STR(UVA_VERSION_PATCH) "-" UVA_VERSION_SUFFIX;
#endif
}

}  // namespace detail
}  // namespace uva
