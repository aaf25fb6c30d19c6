/* uvasync — fault injection for tests (CMake option UVA_FAULT_INJECTION).
 *
 * The core's allocation sites and the libuv socket calls it makes go through
 * the hooks below. In a normal build fault_hit() is constexpr false, so they
 * are plain malloc/calloc/realloc and plain libuv calls. In a fault-injection
 * build every hook counts as one "call", and a test can make the Nth call
 * fail (tests/fault/): an allocation returns NULL, a libuv call returns
 * UV_EIO without doing anything. Nothing here is API. */
#ifndef UVASYNC_FAULT_H
#define UVASYNC_FAULT_H

#include <cstddef>
#include <cstdlib>

namespace uva {
namespace detail {

enum FaultKind : int {
  FAULT_ALLOC = 1,  /* malloc/calloc/realloc, pool blocks, new */
  FAULT_IO = 2,     /* libuv socket calls (init, bind, listen, accept, read,
                      write, connect, getaddrinfo, ...) */
  FAULT_THREAD = 4, /* starting a pool thread (pool.cpp) */
};

#ifdef UVA_FAULT_INJECTION
bool fault_hit(FaultKind kind); /* fault.cpp: true = fail this call */
#else
constexpr bool fault_hit(FaultKind) { return false; }
#endif

inline void *fault_malloc(size_t n) {
  return fault_hit(FAULT_ALLOC) ? nullptr : std::malloc(n);
}
inline void *fault_calloc(size_t count, size_t size) {
  return fault_hit(FAULT_ALLOC) ? nullptr : std::calloc(count, size);
}
/* n bytes aligned to align (a power of two, a multiple of sizeof(void *)),
 * released with free(); NULL when out of memory. Windows has no aligned
 * allocation that free() releases: plain malloc there. */
inline void *fault_aligned_alloc(size_t align, size_t n) {
  if (fault_hit(FAULT_ALLOC)) return nullptr;
#ifdef _WIN32
  (void) align;
  return std::malloc(n);
#else
  void *p = nullptr;
  return posix_memalign(&p, align, n) == 0 ? p : nullptr;
#endif
}
/* As realloc: on failure p is left as it was. */
inline void *fault_realloc(void *p, size_t n) {
  return fault_hit(FAULT_ALLOC) ? nullptr : std::realloc(p, n);
}

}  // namespace detail
}  // namespace uva

/* A libuv call that fails with UV_EIO, without being made, when the fault
 * hits: FAULT_UV(uv_listen(...)). */
#define FAULT_UV(call) \
  (::uva::detail::fault_hit(::uva::detail::FAULT_IO) ? UV_EIO : (call))

#endif /* UVASYNC_FAULT_H */
