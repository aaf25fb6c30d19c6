/* Version and wrap-around ticks (uvasync.h "Version", "Wrap-around ticks"). */
#include "helpers.h"

#include <limits.h>

#define PERIOD UVA_TICKS_PERIOD
#define HALF (UVA_TICKS_PERIOD / 2)

Test(abi, version_matches_header, .timeout = 10) {
  cr_assert_eq(uva_version(), (unsigned) UVA_VERSION_HEX);
  cr_assert_eq(UVA_VERSION_HEX, (UVA_VERSION_MAJOR << 16) |
                                    (UVA_VERSION_MINOR << 8) |
                                    UVA_VERSION_PATCH);
  cr_assert_eq(uva_version() >> 16, (unsigned) UVA_VERSION_MAJOR);
  cr_assert_eq((uva_version() >> 8) & 0xff, (unsigned) UVA_VERSION_MINOR);
  cr_assert_eq(uva_version() & 0xff, (unsigned) UVA_VERSION_PATCH);
}

Test(abi, version_string_starts_with_numbers, .timeout = 10) {
  char want[64];
  const char *s = uva_version_string();
  size_t n;
  cr_assert_not_null(s);
  n = (size_t) snprintf(want, sizeof want, "%d.%d.%d", UVA_VERSION_MAJOR,
                        UVA_VERSION_MINOR, UVA_VERSION_PATCH);
  cr_assert_eq(strncmp(s, want, n), 0, "got \"%s\", want prefix \"%s\"", s,
               want);
  /* Then either the end, or "-suffix" for a pre-release. */
  if (UVA_VERSION_IS_RELEASE) {
    cr_assert_eq(s[n], '\0', "got \"%s\"", s);
  } else {
    cr_assert_eq(s[n], '-', "got \"%s\"", s);
    cr_assert_str_eq(s + n + 1, UVA_VERSION_SUFFIX);
  }
  /* Static: the same pointer every time. */
  cr_assert_eq(uva_version_string(), s);
}

Test(abi, ticks_ms_in_range_and_advances, .timeout = 10) {
  long a, b, d;
  int i;
  for (i = 0; i < 1000; i++) {
    long t = uva_ticks_ms();
    cr_assert(t >= 0 && t < PERIOD, "ticks %ld", t);
  }
  a = uva_ticks_ms();
  uvt_sleep_ms(30);
  b = uva_ticks_ms();
  d = uva_ticks_diff(b, a);
  cr_assert_geq(d, 29, "diff %ld", d);
  cr_assert_lt(d, 30000, "diff %ld", d);
}

/* Any long is accepted: a sum or difference past LONG_MAX wraps like the
 * period does (it was signed overflow, which UBSan reports). */
Test(abi, ticks_add_and_diff_accept_extreme_longs, .timeout = 10) {
  cr_assert_eq(uva_ticks_add(LONG_MAX, 1), 0); /* 2^63 is a multiple */
  cr_assert_eq(uva_ticks_add(LONG_MIN, -1), PERIOD - 1);
  cr_assert_eq(uva_ticks_add(LONG_MAX, LONG_MAX), PERIOD - 2);
  long d = uva_ticks_diff(LONG_MIN, 1);
  cr_assert(d >= -PERIOD / 2 && d < PERIOD / 2, "diff %ld", d);
  cr_assert_eq(d, -1);
  d = uva_ticks_diff(LONG_MAX, LONG_MIN);
  cr_assert_eq(d, -1);
}

Test(abi, ticks_add_wraps, .timeout = 10) {
  cr_assert_eq(uva_ticks_add(PERIOD - 1, 1), 0);
  cr_assert_eq(uva_ticks_add(0, -1), PERIOD - 1);
  cr_assert_eq(uva_ticks_add(0, 0), 0);
  cr_assert_eq(uva_ticks_add(100, 23), 123);
  cr_assert_eq(uva_ticks_add(123, -23), 100);
  cr_assert_eq(uva_ticks_add(PERIOD - 10, 25), 15);
  cr_assert_eq(uva_ticks_add(10, -25), PERIOD - 15);
  cr_assert_eq(uva_ticks_add(0, HALF), HALF);
  cr_assert_eq(uva_ticks_add(HALF, HALF), 0);
  cr_assert_eq(uva_ticks_add(0, -HALF), HALF);
  cr_assert_eq(uva_ticks_add(PERIOD - 1, HALF - 1), HALF - 2);
}

Test(abi, ticks_diff_signed_within_half_period, .timeout = 10) {
  cr_assert_eq(uva_ticks_diff(0, PERIOD - 1), 1);
  cr_assert_eq(uva_ticks_diff(PERIOD - 1, 0), -1);
  cr_assert_eq(uva_ticks_diff(5, 5), 0);
  cr_assert_eq(uva_ticks_diff(123, 100), 23);
  cr_assert_eq(uva_ticks_diff(100, 123), -23);
  /* a - b = HALF - 1: the largest positive difference. */
  cr_assert_eq(uva_ticks_diff(HALF - 1, 0), HALF - 1);
  cr_assert_eq(uva_ticks_diff(10 + HALF - 1, 10), HALF - 1);
  cr_assert_eq(uva_ticks_diff(uva_ticks_add(PERIOD - 7, HALF - 1), PERIOD - 7),
               HALF - 1);
  /* a - b = -HALF: the most negative one; the result lies in [-HALF, HALF). */
  cr_assert_eq(uva_ticks_diff(0, HALF), -HALF);
  cr_assert_eq(uva_ticks_diff(10, 10 + HALF), -HALF);
  /* A difference of exactly +HALF is out of range and reads as -HALF. */
  cr_assert_eq(uva_ticks_diff(HALF, 0), -HALF);
}

Test(abi, ticks_add_and_diff_round_trip, .timeout = 10) {
  static const long bases[] = {0,    1,          1000,         HALF - 1,
                               HALF, PERIOD - 1, PERIOD - 1000};
  static const long deltas[] = {
      0, 1, -1, 999, -999, HALF - 1, -HALF, -(HALF - 1), 123456789, -123456789};
  size_t i, j;
  for (i = 0; i < sizeof bases / sizeof bases[0]; i++)
    for (j = 0; j < sizeof deltas / sizeof deltas[0]; j++) {
      long t = uva_ticks_add(bases[i], deltas[j]);
      cr_assert(t >= 0 && t < PERIOD);
      cr_assert_eq(uva_ticks_diff(t, bases[i]), deltas[j], "base %ld delta %ld",
                   bases[i], deltas[j]);
    }
}
