/* Error codes: values, names, messages (uvasync.h "Errors"). */
#include "helpers.h"

struct code_info {
  const char *name;
  int value;
  const char *msg;
};

#define XX(name, value, msg) {#name, value, msg},
static const struct code_info all_codes[] = {UVA_ERRNO_MAP(XX)};
#undef XX
#define N_CODES ((int) (sizeof(all_codes) / sizeof(all_codes[0])))

#define XX(name, value, msg) {#name, value, msg},
static const struct code_info own_codes[] = {UVA_ERRNO_MAP_OWN(XX)};
static const struct code_info libuv_codes[] = {UVA_ERRNO_MAP_LIBUV(XX)};
#undef XX
#define N_OWN ((int) (sizeof(own_codes) / sizeof(own_codes[0])))
#define N_LIBUV ((int) (sizeof(libuv_codes) / sizeof(libuv_codes[0])))

Test(errors, values_are_negative_errno, .timeout = 10) {
  cr_assert_eq(UVA_EINVAL, -EINVAL);
  cr_assert_eq(UVA_EAGAIN, -EAGAIN);
  cr_assert_eq(UVA_ENOENT, -ENOENT);
  cr_assert_eq(UVA_ENOMEM, -ENOMEM);
  cr_assert_eq(UVA_EBUSY, -EBUSY);
  cr_assert_eq(UVA_ECANCELED, -ECANCELED);
  cr_assert_eq(UVA_ETIMEDOUT, -ETIMEDOUT);
  cr_assert_eq(UVA_EPIPE, -EPIPE);
  cr_assert_eq(UVA_ECONNRESET, -ECONNRESET);
  cr_assert_eq(UVA_ECONNREFUSED, -ECONNREFUSED);
  cr_assert_eq(UVA_EADDRINUSE, -EADDRINUSE);
  cr_assert_eq(UVA_ENOTSUP, -ENOTSUP);
  cr_assert_eq(UVA_ESOCKTNOSUPPORT, -ESOCKTNOSUPPORT);
#ifdef __linux__
  /* The numbers themselves, as libuv has them on Linux. */
  cr_assert_eq(UVA_EPERM, -1);
  cr_assert_eq(UVA_ENOENT, -2);
  cr_assert_eq(UVA_EINTR, -4);
  cr_assert_eq(UVA_EIO, -5);
  cr_assert_eq(UVA_EBADF, -9);
  cr_assert_eq(UVA_EAGAIN, -11);
  cr_assert_eq(UVA_ENOMEM, -12);
  cr_assert_eq(UVA_EACCES, -13);
  cr_assert_eq(UVA_EBUSY, -16);
  cr_assert_eq(UVA_EEXIST, -17);
  cr_assert_eq(UVA_EINVAL, -22);
  cr_assert_eq(UVA_EPIPE, -32);
  cr_assert_eq(UVA_ENOSYS, -38);
  cr_assert_eq(UVA_ECONNRESET, -104);
  cr_assert_eq(UVA_ETIMEDOUT, -110);
  cr_assert_eq(UVA_ECONNREFUSED, -111);
  cr_assert_eq(UVA_ECANCELED, -125);
#endif
}

Test(errors, libuv_specific_values, .timeout = 10) {
  cr_assert_eq(UVA_EOF, -4095);
  cr_assert_eq(UVA_UNKNOWN, -4094);
  cr_assert_eq(UVA_ECHARSET, -4080);
  cr_assert_eq(UVA_EFTYPE, -4028);
  cr_assert_eq(UVA_EAI_ADDRFAMILY, -3000);
  cr_assert_eq(UVA_EAI_AGAIN, -3001);
  cr_assert_eq(UVA_EAI_BADFLAGS, -3002);
  cr_assert_eq(UVA_EAI_CANCELED, -3003);
  cr_assert_eq(UVA_EAI_FAIL, -3004);
  cr_assert_eq(UVA_EAI_FAMILY, -3005);
  cr_assert_eq(UVA_EAI_MEMORY, -3006);
  cr_assert_eq(UVA_EAI_NODATA, -3007);
  cr_assert_eq(UVA_EAI_NONAME, -3008);
  cr_assert_eq(UVA_EAI_OVERFLOW, -3009);
  cr_assert_eq(UVA_EAI_SERVICE, -3010);
  cr_assert_eq(UVA_EAI_SOCKTYPE, -3011);
  cr_assert_eq(UVA_EAI_BADHINTS, -3013);
  cr_assert_eq(UVA_EAI_PROTOCOL, -3014);
}

Test(errors, all_codes_negative_and_distinct, .timeout = 10) {
  int i, j;
  cr_assert_gt(N_CODES, 80);
  for (i = 0; i < N_CODES; i++) {
    cr_expect_lt(all_codes[i].value, 0, "%s = %d", all_codes[i].name,
                 all_codes[i].value);
    for (j = i + 1; j < N_CODES; j++)
      cr_expect_neq(all_codes[i].value, all_codes[j].value,
                    "%s and %s share %d", all_codes[i].name, all_codes[j].name,
                    all_codes[i].value);
  }
}

Test(errors, uvasync_codes_in_own_range, .timeout = 10) {
  static const int own[] = {UVA_EINTERNAL,   UVA_EWRONGTHREAD, UVA_ECLOSED,
                            UVA_EHANDLEKIND, UVA_EUSER,        UVA_ERUNNING};
  int i, j;
  cr_assert_eq(UVA_EINTERNAL, -5000);
  cr_assert_eq(UVA_EWRONGTHREAD, -5001);
  cr_assert_eq(UVA_ECLOSED, -5002);
  cr_assert_eq(UVA_EHANDLEKIND, -5003);
  cr_assert_eq(UVA_EUSER, -5004);
  cr_assert_eq(UVA_ERUNNING, -5005);
  for (i = 0; i < (int) (sizeof(own) / sizeof(own[0])); i++) {
    cr_assert(own[i] <= -5000 && own[i] >= -5099);
    for (j = i + 1; j < (int) (sizeof(own) / sizeof(own[0])); j++)
      cr_assert_neq(own[i], own[j]);
  }
  /* Every uvasync-only code lies in -5000..-5099, and no libuv code does. */
  for (i = 0; i < N_OWN; i++)
    cr_expect(own_codes[i].value <= -5000 && own_codes[i].value >= -5099,
              "%s = %d", own_codes[i].name, own_codes[i].value);
  for (i = 0; i < N_LIBUV; i++)
    cr_expect(!(libuv_codes[i].value <= -5000 && libuv_codes[i].value >= -5099),
              "%s = %d", libuv_codes[i].name, libuv_codes[i].value);
  cr_assert_eq(N_OWN + N_LIBUV, N_CODES);
}

Test(errors, strerror_and_name_for_every_known_code, .timeout = 10) {
  int i;
  for (i = 0; i < N_CODES; i++) {
    const char *m = uva_strerror(all_codes[i].value);
    const char *n = uva_err_name(all_codes[i].value);
    cr_assert_not_null(m, "%s", all_codes[i].name);
    cr_assert_not_null(n, "%s", all_codes[i].name);
    cr_expect_str_eq(m, all_codes[i].msg, "message of %s", all_codes[i].name);
    cr_expect_str_eq(n, all_codes[i].name);
    /* Static strings: the same pointer each time. */
    cr_expect_eq(uva_strerror(all_codes[i].value), m);
    cr_expect_eq(uva_err_name(all_codes[i].value), n);
  }
  cr_assert_str_eq(uva_err_name(UVA_EINVAL), "EINVAL");
  cr_assert_str_eq(uva_strerror(UVA_EINVAL), "invalid argument");
  cr_assert_str_eq(uva_err_name(UVA_EOF), "EOF");
  cr_assert_str_eq(uva_strerror(UVA_EOF), "end of file");
  cr_assert_str_eq(uva_err_name(UVA_EAI_NONAME), "EAI_NONAME");
  cr_assert_str_eq(uva_err_name(UVA_EWRONGTHREAD), "EWRONGTHREAD");
}

Test(errors, unknown_codes_give_non_null_text, .timeout = 10) {
  static const int unknown[] = {-12345, -4999, -5100,           0,         1,
                                12345,  -3012, -2147483647 - 1, 2147483647};
  int i;
  for (i = 0; i < (int) (sizeof(unknown) / sizeof(unknown[0])); i++) {
    const char *m = uva_strerror(unknown[i]);
    const char *n;
    cr_assert_not_null(m, "uva_strerror(%d)", unknown[i]);
    cr_assert_gt(strlen(m), 0);
    n = uva_err_name(unknown[i]);
    cr_assert_not_null(n, "uva_err_name(%d)", unknown[i]);
    cr_assert_gt(strlen(n), 0);
  }
  /* The header: an unknown code gives "unknown uvasync error <n>". */
  cr_expect_str_eq(uva_strerror(-12345), "unknown uvasync error -12345");
  cr_expect_str_eq(uva_err_name(-12345), "unknown uvasync error -12345");
  cr_assert_not_null(strstr(uva_strerror(-12345), "12345"), "got \"%s\"",
                     uva_strerror(-12345));
  cr_assert_not_null(strstr(uva_err_name(-12345), "12345"), "got \"%s\"",
                     uva_err_name(-12345));
}

Test(errors, strerror_r_full_buffer, .timeout = 10) {
  char buf[128];
  int i;
  for (i = 0; i < N_CODES; i++) {
    memset(buf, 'x', sizeof buf);
    cr_assert_eq(uva_strerror_r(all_codes[i].value, buf, sizeof buf), buf);
    cr_expect_str_eq(buf, all_codes[i].msg);
    memset(buf, 'x', sizeof buf);
    cr_assert_eq(uva_err_name_r(all_codes[i].value, buf, sizeof buf), buf);
    cr_expect_str_eq(buf, all_codes[i].name);
  }
  cr_assert_eq(uva_strerror_r(-12345, buf, sizeof buf), buf);
  cr_assert_not_null(strstr(buf, "12345"), "got \"%s\"", buf);
  cr_assert_eq(uva_err_name_r(-12345, buf, sizeof buf), buf);
  cr_assert_not_null(strstr(buf, "12345"), "got \"%s\"", buf);
}

/* A buffer with guard bytes on both sides: nothing outside [0, len) may be
 * written, and the text is NUL-terminated within it. */
static void check_truncation(char *(*fn)(int, char *, size_t), int code,
                             const char *full) {
  char area[64];
  char *buf = area + 16;
  size_t len, i;
  for (len = 0; len <= strlen(full) + 2 && len <= 32; len++) {
    memset(area, '#', sizeof area);
    cr_assert_eq(fn(code, buf, len), buf);
    for (i = 0; i < 16; i++)
      cr_assert_eq(area[i], '#', "underrun at len %zu", len);
    for (i = 16 + len; i < sizeof area; i++)
      cr_assert_eq(area[i], '#', "overrun at len %zu (byte %zu)", len, i - 16);
    if (len > 0) {
      size_t n = strnlen(buf, len);
      cr_assert_lt(n, len, "not NUL-terminated at len %zu", len);
      /* A prefix of the full text. */
      cr_assert_eq(strncmp(buf, full, n), 0, "len %zu: \"%s\"", len, buf);
      cr_assert_eq(n, len - 1 < strlen(full) ? len - 1 : strlen(full));
    }
  }
}

Test(errors, r_variants_truncate_safely, .timeout = 10) {
  char full[128];
  check_truncation(uva_strerror_r, UVA_EINVAL, "invalid argument");
  check_truncation(uva_err_name_r, UVA_EINVAL, "EINVAL");
  check_truncation(uva_strerror_r, UVA_EWRONGTHREAD,
                   "called from a thread that does not own the loop");
  check_truncation(uva_err_name_r, UVA_EAI_NONAME, "EAI_NONAME");
  uva_strerror_r(-777777, full, sizeof full);
  check_truncation(uva_strerror_r, -777777, full);
  uva_err_name_r(-777777, full, sizeof full);
  check_truncation(uva_err_name_r, -777777, full);
}

Test(errors, r_variants_accept_zero_length, .timeout = 10) {
  char c = '#';
  cr_assert_eq(uva_strerror_r(UVA_EINVAL, &c, 0), &c);
  cr_assert_eq(c, '#');
  cr_assert_eq(uva_err_name_r(UVA_EINVAL, &c, 0), &c);
  cr_assert_eq(c, '#');
  cr_assert_eq(uva_strerror_r(-99999, &c, 0), &c);
  cr_assert_eq(c, '#');
  cr_assert_eq(uva_strerror_r(-99999, &c, 1), &c);
  cr_assert_eq(c, '\0');
}

/* A NULL buffer with a length writes nothing and returns NULL, for known
 * and unknown codes alike (the unknown-code formatting crashed on it). */
Test(errors, r_variants_accept_null_buffer, .timeout = 10) {
  cr_assert_null(uva_err_name_r(-777777, NULL, 5));
  cr_assert_null(uva_strerror_r(-777777, NULL, 5));
  cr_assert_null(uva_err_name_r(UVA_EINVAL, NULL, 5));
  cr_assert_null(uva_strerror_r(UVA_EINVAL, NULL, 5));
  cr_assert_null(uva_err_name_r(-777777, NULL, 0));
}

/* The _r forms are thread-safe, also for unknown codes. */
struct r_thread {
  int base;
  int bad;
};

static void *r_thread_main(void *arg) {
  struct r_thread *rt = (struct r_thread *) arg;
  char buf[96], want[32];
  int i;
  for (i = 0; i < 20000; i++) {
    int code = -(rt->base + (i % 1000));
    snprintf(want, sizeof want, "%d", rt->base + (i % 1000));
    uva_strerror_r(code, buf, sizeof buf);
    if (strstr(buf, want) == NULL) rt->bad++;
    uva_err_name_r(code, buf, sizeof buf);
    if (strstr(buf, want) == NULL) rt->bad++;
    if (strcmp(uva_strerror(UVA_ECANCELED), "operation canceled") != 0)
      rt->bad++;
    if (strcmp(uva_err_name(UVA_ETIMEDOUT), "ETIMEDOUT") != 0) rt->bad++;
  }
  return NULL;
}

Test(errors, r_variants_thread_safe, .timeout = 30) {
  pthread_t th[4];
  struct r_thread rt[4];
  int i;
  for (i = 0; i < 4; i++) {
    rt[i].base = 10000 + i * 10000;
    rt[i].bad = 0;
    cr_assert_eq(pthread_create(&th[i], NULL, r_thread_main, &rt[i]), 0);
  }
  for (i = 0; i < 4; i++) {
    cr_assert_eq(pthread_join(th[i], NULL), 0);
    cr_expect_eq(rt[i].bad, 0, "thread %d saw %d wrong strings", i, rt[i].bad);
  }
}
