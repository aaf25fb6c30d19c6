/* Helpers shared by bench_core.c (uvasync) and bench_raw_core.c (raw libuv).
 * Header-only, C99 + POSIX, no dependency on uvasync or libuv, so both sides
 * measure time, memory and random delays in exactly the same way. */
#ifndef UVA_BENCH_COMMON_H
#define UVA_BENCH_COMMON_H

/* Define _POSIX_C_SOURCE 200809L before including any system header. */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>

/* Fixed seed: both sides draw the same delay sequence. */
#define BENCH_SEED 0x5eed5eed5eedULL
/* Delays are spread uniformly over [0, BENCH_MAX_DELAY_MS]. */
#define BENCH_MAX_DELAY_MS 100

static inline uint64_t bench_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static inline uint64_t bench_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

/* Current resident set size in bytes, from /proc/self/statm. */
static inline long bench_rss_bytes(void) {
  long size = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f == NULL) return -1;
  if (fscanf(f, "%ld %ld", &size, &resident) != 2) resident = -1;
  fclose(f);
  return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
}

/* Peak resident set size of the process so far, in bytes. */
static inline long bench_peak_rss_bytes(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return -1;
  return ru.ru_maxrss * 1024L; /* kilobytes on Linux */
}

/* Make [p, p+n) resident by writing one byte per page through a volatile
 * pointer (a plain memset(0) after calloc, or malloc + memset(0), may be
 * optimized away or turned into calloc, leaving the pages untouched until
 * the measured region). */
static inline void bench_touch(void *p, size_t n) {
  volatile unsigned char *c = (volatile unsigned char *) p;
  size_t i;
  for (i = 0; i < n; i += 4096)
    c[i] = c[i];
  if (n > 0) c[n - 1] = c[n - 1];
}

/* splitmix64: small, fast, identical on both sides. */
typedef struct {
  uint64_t s;
} bench_rng;

static inline uint64_t bench_rng_next(bench_rng *r) {
  uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* n delays in [0, BENCH_MAX_DELAY_MS], fixed seed; the array is written, so
 * its pages are resident before any baseline RSS is taken. */
static inline int32_t *bench_make_delays(long n) {
  bench_rng r = {BENCH_SEED};
  int32_t *d = (int32_t *) malloc((size_t) (n > 0 ? n : 1) * sizeof *d);
  long i;
  if (d == NULL) {
    fprintf(stderr, "out of memory\n");
    exit(2);
  }
  for (i = 0; i < n; i++)
    d[i] = (int32_t) (bench_rng_next(&r) % (BENCH_MAX_DELAY_MS + 1));
  return d;
}

/* Parse "1000000", "1e6", "100k", "1M". Returns -1 on error. */
static inline long bench_parse_n(const char *s) {
  char *end = NULL;
  double v = strtod(s, &end);
  if (end == s) return -1;
  if (*end == 'k' || *end == 'K') {
    v *= 1e3;
    end++;
  } else if (*end == 'm' || *end == 'M') {
    v *= 1e6;
    end++;
  }
  if (*end != '\0' || v < 1 || v > 1e10) return -1;
  return (long) (v + 0.5);
}

typedef struct {
  const char *impl;      /* "uvasync" or "libuv" */
  const char *name;      /* benchmark name */
  long n;                /* operations */
  uint64_t wall_ns;      /* total wall time of the measured region */
  uint64_t cpu_ns;       /* process CPU time of the same region */
  long rss_growth;       /* bytes: peak RSS (or RSS at the probe) - baseline */
  double bytes_per_task; /* < 0: not measured */
  int ok;                /* every operation completed as expected */
} bench_result;

/* One machine-readable line on stdout. */
static inline void bench_print(const bench_result *r) {
  printf(
      "impl=%s name=%s n=%ld ns_per_op=%.2f cpu_ns_per_op=%.2f "
      "rss_growth_bytes=%ld",
      r->impl, r->name, r->n, (double) r->wall_ns / (double) r->n,
      (double) r->cpu_ns / (double) r->n, r->rss_growth);
  if (r->bytes_per_task >= 0) printf(" bytes_per_task=%.1f", r->bytes_per_task);
  printf(" ok=%d\n", r->ok ? 1 : 0);
  fflush(stdout);
}

#define BENCH_USAGE                                                         \
  "usage: %s BENCH N [ARG]\n"                                               \
  "  spawn  N [batch=1000]   spawn and complete N one-shot units of work\n" \
  "  yield  N [tasks=1000]   N task switches (tasks x N/tasks yields)\n"    \
  "  timers N                N timers, delays spread over 0..100 ms\n"      \
  "  sleep  N                N tasks each sleeping 0..100 ms once\n"        \
  "  idle   N                N parked tasks, then woken and finished\n"     \
  "N accepts 1000000, 1e6, 1M, 100k. Output: one key=value line.\n"

/* The line of bench_os / bench_raw_os: `rate` is ops per second of wall
 * time (processes, jobs) or, for a read, MB/s (10^6 bytes). */
static inline void bench_print_rate(const char *impl, const char *name, long n,
                                    double rate, uint64_t wall_ns,
                                    uint64_t cpu_ns, int ok) {
  printf("impl=%s name=%s n=%ld rate=%.1f wall_s=%.6f cpu_s=%.6f ok=%d\n", impl,
         name, n, rate, (double) wall_ns / 1e9, (double) cpu_ns / 1e9,
         ok ? 1 : 0);
  fflush(stdout);
}

#define BENCH_OS_USAGE                                                        \
  "usage: %s BENCH ARGS\n"                                                    \
  "  spawn N             spawn /bin/true and wait for its exit, N times\n"    \
  "  work N INFLIGHT     N no-op jobs on the thread pool, INFLIGHT at a\n"    \
  "                      time (1: sequential round trips)\n"                  \
  "  read PATH CHUNK     read the file PATH to its end, CHUNK bytes a read\n" \
  "N accepts 1000000, 1e6, 1M, 100k. Output: one key=value line.\n"

#endif /* UVA_BENCH_COMMON_H */
