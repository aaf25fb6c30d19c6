/* uvasync — the fault-injection counter (built with UVA_FAULT_INJECTION
 * only; see fault.h). Tests arm it through two internal functions that the
 * static library provides and the shared library does not export. */
#ifdef UVA_FAULT_INJECTION
#include "fault.h"

#include <atomic>

namespace uva {
namespace detail {

static std::atomic<int> armed_kinds{0}; /* FaultKind mask that counts */
static std::atomic<long> fail_at{0};    /* 1-based call to fail; 0: none */
static std::atomic<long> calls{0};      /* counted calls since arming */

bool fault_hit(FaultKind kind) {
  if ((armed_kinds.load(std::memory_order_relaxed) & kind) == 0) return false;
  long n = calls.fetch_add(1, std::memory_order_relaxed) + 1;
  return n == fail_at.load(std::memory_order_relaxed);
}

}  // namespace detail
}  // namespace uva

using namespace uva::detail;

/* Count the calls of the kinds in `kinds` (a FaultKind mask; 0 stops
 * counting) from now on, and make call number `n` fail (0: none). */
extern "C" __attribute__((visibility("hidden"))) void uva__fault_arm(int kinds,
                                                                     long n) {
  armed_kinds.store(0);
  calls.store(0);
  fail_at.store(n);
  armed_kinds.store(kinds);
}

/* Calls counted since the last uva__fault_arm. */
extern "C" __attribute__((visibility("hidden"))) long uva__fault_calls(void) {
  return calls.load();
}
#endif /* UVA_FAULT_INJECTION */
