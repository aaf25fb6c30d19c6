/* A 1 GiB file copied through the file API by a task, in 256 KiB reads and
 * writes (one job each): the copy's checksum equals the source's, and the
 * process's peak memory grows by a few MB at most (no full copy in
 * memory: each job owns one chunk, freed when it is closed).
 *
 * The source is real data (no holes): 64-bit words that differ at every
 * position, written with plain write(2). The files live in /tmp, unlinked
 * as soon as they are open. */
#include "support.h"

#include <stdatomic.h>

#define BIG_FILE ((int64_t) 1 << 30)
#define CHUNK ((size_t) 256 * 1024)

static uint64_t word_at(uint64_t k) {
  return k * 0x9E3779B97F4A7C15ull ^ (k >> 7);
}

/* An order-sensitive checksum of 64-bit words. */
static uint64_t sum_words(uint64_t h, const void *buf, size_t n) {
  const uint64_t *w = buf;
  for (size_t i = 0; i < n / 8; i++)
    h = (h ^ w[i]) * 0x100000001B3ull;
  return h;
}

static long maxrss_kb(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

struct copier {
  int pc, rc;
  uva_loop_t *loop;
  int in, out;
  int64_t off;
  uva_work_t *w;
  const void *data;
  size_t n;
  uint64_t sum;
  int chunks;
};

static int step_copy(uva_task_t *t, int status, void *d) {
  struct copier *c = d;
  if (status != 0) return status;
  CO_BEGIN(c);
  for (;;) {
    c->rc = uva_fs_read(&c->w, c->loop, c->in, CHUNK, -1);
    if (c->rc != 0) return c->rc;
    CO_CALL(c, uva_work_wait(c->w, t));
    if (c->rc != 0) return c->rc;
    c->rc = uva_fs_data(&c->data, &c->n, c->w);
    if (c->rc != 0) return c->rc;
    if (c->n == 0) break;
    c->sum = sum_words(c->sum, c->data, c->n);
    {
      uva_work_t *r = c->w;
      /* The write job copies the bytes: the read's job can go first. */
      c->rc = uva_fs_write(&c->w, c->loop, c->out, c->data, c->n, c->off);
      uva_work_close(r);
      if (c->rc != 0) return c->rc;
    }
    CO_CALL(c, uva_work_wait(c->w, t));
    if (c->rc != 0) return c->rc;
    {
      int64_t wrote = 0;
      c->rc = uva_fs_result(&wrote, c->w);
      if (c->rc != 0 || wrote != (int64_t) c->n) return UVA_EIO;
    }
    uva_work_close(c->w);
    c->off += (int64_t) c->n;
    c->chunks++;
  }
  uva_work_close(c->w);
  CO_END(c);
}

/* ASan keeps freed memory in its quarantine (256 MB by default) and its
 * allocator's caches before reuse, so there the bound is 512 MB: still
 * half of what a whole copy in memory would take. */
#if defined(__SANITIZE_ADDRESS__)
#define RSS_SLACK_KB (512L * 1024)
#else
#define RSS_SLACK_KB 0L
#endif

Test(fs_big, copy_1gib_in_chunks_checksum_and_flat_memory, .timeout = 60) {
  char src[] = "/tmp/uva_big_src_XXXXXX";
  char dst[] = "/tmp/uva_big_dst_XXXXXX";
  int in = mkstemp(src), out = mkstemp(dst);
  cr_assert(in >= 0 && out >= 0);
  unlink(src); /* gone with the descriptors, also if the test fails */
  unlink(dst);
  uint64_t *buf = malloc(1 << 20);
  cr_assert_not_null(buf);
  uint64_t want = 0xCBF29CE484222325ull, k = 0;
  for (int64_t off = 0; off < BIG_FILE; off += 1 << 20) {
    for (size_t i = 0; i < (1 << 20) / 8; i++)
      buf[i] = word_at(k++);
    want = sum_words(want, buf, 1 << 20);
    cr_assert_eq(write(in, buf, 1 << 20), 1 << 20);
  }
  cr_assert_eq(lseek(in, 0, SEEK_SET), 0);

  uva_loop_t *loop = uvt_loop_new();
  struct copier c = {0};
  c.loop = loop;
  c.in = in;
  c.out = out;
  c.sum = 0xCBF29CE484222325ull;
  long rss0 = maxrss_kb();
  double t0 = uvt_ms();
  uva_task_t *t;
  UVT_OK(uva_task_spawn(&t, loop, step_copy, &c, NULL));
  run(loop);
  double ms = uvt_ms() - t0;
  long grew = maxrss_kb() - rss0;
  UVT_OK(task_rc(t));
  uva_task_release(t);
  UVT_CLOSE_LOOP(loop);
  cr_log_info("1 GiB copied in %.0f ms, %d chunks, peak RSS +%ld KiB", ms,
              c.chunks, grew);
  cr_assert_eq(c.off, BIG_FILE);
  cr_assert_eq(c.chunks, (int) (BIG_FILE / (int64_t) CHUNK));
  cr_assert_eq(c.sum, want, "the bytes read differ from the source");
  cr_assert(grew < 8 * 1024 + RSS_SLACK_KB, "peak RSS grew by %ld KiB", grew);

  /* The copy, read back with plain read(2). */
  uint64_t got = 0xCBF29CE484222325ull;
  cr_assert_eq(lseek(out, 0, SEEK_SET), 0);
  int64_t total = 0;
  for (;;) {
    ssize_t n = read(out, buf, 1 << 20);
    cr_assert(n >= 0);
    if (n == 0) break;
    got = sum_words(got, buf, (size_t) n);
    total += n;
  }
  cr_assert_eq(total, BIG_FILE);
  cr_assert_eq(got, want, "the copy differs from the source");
  free(buf);
  close(in);
  close(out);
}
