/* uvasync — version macros.
 *
 * The version of the header a program was compiled against. Compare it with
 * uva_version() at run time to detect a library that is older than the header
 * (within one major version the ABI only grows, so a newer library is fine).
 */
#ifndef UVASYNC_VERSION_H
#define UVASYNC_VERSION_H

#define UVA_VERSION_MAJOR 1
#define UVA_VERSION_MINOR 0
#define UVA_VERSION_PATCH 0
#define UVA_VERSION_IS_RELEASE 0
#define UVA_VERSION_SUFFIX "dev"

/* 0xMMmmpp: one byte per component, so versions compare as integers. */
#define UVA_VERSION_HEX                                                       \
  ((UVA_VERSION_MAJOR << 16) | (UVA_VERSION_MINOR << 8) | (UVA_VERSION_PATCH))

#endif /* UVASYNC_VERSION_H */
