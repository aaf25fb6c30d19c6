/* Diagnostic: how fast `rep movsb` copies 100 KiB for each distance between
 * destination and source modulo 64. The kernel copies socket data to and
 * from user memory with `rep movsb` on CPUs with FSRM; on the AMD EPYC of
 * our benchmark VM a destination 1-31 bytes past the source (mod 64) runs
 * ~16x slower, so where the heap puts an echo server's buffers moves its
 * 100 KiB figures. Built only with -DUVA_BUILD_BENCH_TOOLS=ON, not
 * part of run_all:
 *
 *     taskset -c 0 build/bench/tools/movsb_distance
 *
 * x86-64 only. Prints the best of 5 rounds per distance, in microseconds. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__) && defined(__GNUC__)
static void copy_movsb(void *dst, const void *src, size_t n) {
  __asm__ volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double) t.tv_sec + (double) t.tv_nsec * 1e-9;
}

int main(void) {
  const size_t n = 100 * 1024;
  char *src, *dst;
  if (posix_memalign((void **) &src, 4096, 1 << 20) != 0 ||
      posix_memalign((void **) &dst, 4096, 1 << 20) != 0)
    return 1;
  memset(src, 1, 1 << 20);
  memset(dst, 2, 1 << 20);
  for (int d = 0; d < 64; d += 4) {
    double best = 1e9;
    for (int round = 0; round < 5; round++) {
      double t0 = now_s();
      for (int i = 0; i < 500; i++)
        copy_movsb(dst + d, src, n);
      double t = (now_s() - t0) / 500;
      if (t < best) best = t;
    }
    printf("dst - src = %2d (mod 64): %6.2f us\n", d, best * 1e6);
  }
  return 0;
}
#else
int main(void) {
  puts("movsb_distance: x86-64 only");
  return 0;
}
#endif
