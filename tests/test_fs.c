/* File operations on the loop's pool (uva_fs_*): each operation and its
 * errors, read and write at the file position and at offsets, stat
 * fields, readdir contents, the getters' rules, the job's own copies of
 * its arguments, and a descriptor opened for a job closed before it ended
 * (closed by the core, not leaked).
 *
 * Each test works in a fresh directory under /tmp and removes it. The
 * operations run as jobs; outside a task a test runs the loop until the
 * job ended and reads its status with uva_work_wait(w, NULL). */
#include "support.h"

#include <dirent.h>
#include <limits.h>
#include <stdatomic.h>
#include <stddef.h>

static char dir[64];

static void mk_tmpdir(void) {
  strcpy(dir, "/tmp/uva_fs_XXXXXX");
  cr_assert_not_null(mkdtemp(dir));
}

static char *in_dir(char *buf, const char *name) {
  snprintf(buf, 256, "%s/%s", dir, name);
  return buf;
}

static void rm_tmpdir(void) {
  DIR *d = opendir(dir);
  struct dirent *e;
  char p[512];
  while (d != NULL && (e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    if (unlink(p) != 0) rmdir(p);
  }
  if (d != NULL) closedir(d);
  rmdir(dir);
}

/* Run the loop until the job ended; its status. */
static int await(uva_loop_t *loop, uva_work_t *w) {
  int done = 0;
  for (int i = 0; i < 10000 && !done; i++) {
    UVT_OK(uva_loop_run(loop, UVA_RUN_ONCE));
    UVT_OK(uva_work_done(&done, w));
  }
  cr_assert(done, "the job never ended");
  run(loop); /* its completion (done, waiters) */
  return uva_work_wait(w, NULL);
}

/* Status and uva_fs_result of a job, then closed. */
static int64_t finish(uva_loop_t *loop, uva_work_t *w, int want) {
  int64_t r = -1;
  UVT_EQ(await(loop, w), want);
  UVT_EQ(uva_fs_result(&r, w), want);
  UVT_OK(uva_work_close(w));
  return r;
}

static int fs_open(uva_loop_t *loop, const char *path, int flags, int mode) {
  uva_work_t *w;
  UVT_OK(uva_fs_open(&w, loop, path, flags, mode));
  return (int) finish(loop, w, 0);
}

static int64_t fs_write(uva_loop_t *loop, int fd, const char *s, int64_t off) {
  uva_work_t *w;
  UVT_OK(uva_fs_write(&w, loop, fd, s, strlen(s), off));
  return finish(loop, w, 0);
}

/* Read up to len bytes into out (NUL-terminated); the count. */
static size_t fs_read(uva_loop_t *loop, int fd, size_t len, int64_t off,
                      char *out) {
  uva_work_t *w;
  const void *data;
  size_t n = 0;
  UVT_OK(uva_fs_read(&w, loop, fd, len, off));
  UVT_OK(await(loop, w));
  UVT_OK(uva_fs_data(&data, &n, w));
  memcpy(out, data, n);
  out[n] = '\0';
  UVT_OK(uva_work_close(w));
  return n;
}

static void fs_close(uva_loop_t *loop, int fd) {
  uva_work_t *w;
  UVT_OK(uva_fs_close(&w, loop, fd));
  finish(loop, w, 0);
}

static int path_op(uva_loop_t *loop,
                   int (*op)(uva_work_t **, uva_loop_t *, const char *),
                   const char *path) {
  uva_work_t *w;
  UVT_OK(op(&w, loop, path));
  int rc = await(loop, w);
  UVT_OK(uva_work_close(w));
  return rc;
}

static int mkdir_op(uva_loop_t *loop, const char *path, int mode) {
  uva_work_t *w;
  UVT_OK(uva_fs_mkdir(&w, loop, path, mode));
  int rc = await(loop, w);
  UVT_OK(uva_work_close(w));
  return rc;
}

/* ---- read and write --------------------------------------------------------- */

Test(fs, write_and_read_at_the_position_and_at_offsets, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  char p[256], buf[128];
  mk_tmpdir();
  int fd = fs_open(loop, in_dir(p, "f"), O_CREAT | O_RDWR | O_TRUNC, 0644);
  cr_assert(fd >= 0);
  cr_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC, "O_CLOEXEC is always added");
  cr_assert_eq(fs_write(loop, fd, "hello", -1), 5);
  cr_assert_eq(fs_write(loop, fd, "world", -1), 5);
  cr_assert_eq(lseek(fd, 0, SEEK_CUR), 10, "write at -1 advances");
  cr_assert_eq(fs_write(loop, fd, "HE", 0), 2); /* pwrite */
  cr_assert_eq(lseek(fd, 0, SEEK_CUR), 10, "a pwrite leaves the position");
  cr_assert_eq(fs_write(loop, fd, "!", -1), 1);
  cr_assert_eq(fs_read(loop, fd, 100, 0, buf), 11);
  cr_assert_str_eq(buf, "HElloworld!");
  cr_assert_eq(fs_read(loop, fd, 4, 5, buf), 4); /* pread in the middle */
  cr_assert_str_eq(buf, "worl");
  cr_assert_eq(lseek(fd, 0, SEEK_CUR), 11);
  cr_assert_eq(fs_read(loop, fd, 100, -1, buf), 0, "at the end: 0 bytes");
  cr_assert_eq(lseek(fd, 3, SEEK_SET), 3);
  cr_assert_eq(fs_read(loop, fd, 3, -1, buf), 3); /* read at the position */
  cr_assert_str_eq(buf, "low");
  cr_assert_eq(lseek(fd, 0, SEEK_CUR), 6, "read at -1 advances");
  cr_assert_eq(fs_read(loop, fd, 100, 50, buf), 0, "past the end");
  /* A write job copied its data: the caller's buffer may change at once. */
  uva_work_t *w;
  char mine[8] = "copied";
  UVT_OK(uva_fs_write(&w, loop, fd, mine, 6, 20));
  memset(mine, 'X', 6);
  cr_assert_eq(finish(loop, w, 0), 6);
  cr_assert_eq(fs_read(loop, fd, 6, 20, buf), 6);
  cr_assert_str_eq(buf, "copied");
  /* A zero-length read and write. */
  UVT_OK(uva_fs_write(&w, loop, fd, NULL, 0, -1));
  cr_assert_eq(finish(loop, w, 0), 0);
  cr_assert_eq(fs_read(loop, fd, 0, 0, buf), 0);
  fs_close(loop, fd);
  cr_assert_eq(fcntl(fd, F_GETFD), -1, "uva_fs_close closed it");
  rm_tmpdir();
  UVT_CLOSE_LOOP(loop);
}

Test(fs, ftruncate_fsync_and_fstat, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  char p[256];
  mk_tmpdir();
  int fd = fs_open(loop, in_dir(p, "f"), O_CREAT | O_RDWR, 0600);
  cr_assert_eq(fs_write(loop, fd, "0123456789", -1), 10);
  uva_work_t *w;
  UVT_OK(uva_fs_ftruncate(&w, loop, fd, 4));
  cr_assert_eq(finish(loop, w, 0), 0);
  UVT_OK(uva_fs_fsync(&w, loop, fd, 0));
  finish(loop, w, 0);
  UVT_OK(uva_fs_fsync(&w, loop, fd, 1));
  finish(loop, w, 0);
  uva_stat_t st;
  memset(&st, 0, sizeof st);
  st.size = sizeof st;
  UVT_OK(uva_fs_fstat(&w, loop, fd));
  UVT_OK(await(loop, w));
  UVT_OK(uva_fs_statbuf(&st, w));
  UVT_OK(uva_work_close(w));
  cr_assert_eq(st.file_size, 4);
  cr_assert_eq(st.type, UVA_FILE_REGULAR);
  UVT_EQ(uva_fs_ftruncate(&w, loop, fd, -1), UVA_EINVAL);
  fs_close(loop, fd);
  /* Operations on a closed descriptor fail with its error. */
  UVT_OK(uva_fs_fsync(&w, loop, fd, 0));
  finish(loop, w, UVA_EBADF);
  UVT_OK(uva_fs_close(&w, loop, fd));
  finish(loop, w, UVA_EBADF);
  UVT_OK(uva_fs_read(&w, loop, fd, 10, -1));
  UVT_EQ(await(loop, w), UVA_EBADF);
  const void *data;
  size_t n;
  UVT_EQ(uva_fs_data(&data, &n, w), UVA_EBADF);
  UVT_OK(uva_work_close(w));
  rm_tmpdir();
  UVT_CLOSE_LOOP(loop);
}

/* ---- paths ------------------------------------------------------------------ */

Test(fs, open_errors, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  char p[256];
  mk_tmpdir();
  uva_work_t *w;
  UVT_OK(uva_fs_open(&w, loop, in_dir(p, "missing"), O_RDONLY, 0));
  finish(loop, w, UVA_ENOENT);
  UVT_OK(uva_fs_open(&w, loop, dir, O_WRONLY, 0));
  finish(loop, w, UVA_EISDIR);
  close(fs_open(loop, in_dir(p, "f"), O_CREAT | O_WRONLY, 0644));
  UVT_OK(uva_fs_open(&w, loop, p, O_CREAT | O_EXCL | O_WRONLY, 0644));
  finish(loop, w, UVA_EEXIST);
  rm_tmpdir();
  UVT_CLOSE_LOOP(loop);
}

Test(fs, mkdir_rmdir_rename_unlink, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  char p[256], q[256];
  mk_tmpdir();
  UVT_OK(mkdir_op(loop, in_dir(p, "d"), 0755));
  struct stat st;
  cr_assert_eq(stat(p, &st), 0);
  cr_assert(S_ISDIR(st.st_mode));
  UVT_EQ(mkdir_op(loop, p, 0755), UVA_EEXIST);
  UVT_EQ(mkdir_op(loop, in_dir(q, "no/such"), 0755), UVA_ENOENT);
  close(fs_open(loop, in_dir(q, "d/f"), O_CREAT | O_WRONLY, 0644));
  UVT_EQ(path_op(loop, uva_fs_rmdir, in_dir(p, "d")), UVA_ENOTEMPTY);
  UVT_EQ(path_op(loop, uva_fs_unlink, in_dir(p, "d")), UVA_EISDIR);
  uva_work_t *w;
  UVT_OK(uva_fs_rename(&w, loop, in_dir(p, "d/f"), in_dir(q, "g")));
  finish(loop, w, 0);
  cr_assert_eq(access(p, F_OK), -1);
  cr_assert_eq(access(q, F_OK), 0);
  UVT_OK(uva_fs_rename(&w, loop, in_dir(p, "d/f"), in_dir(q, "h")));
  finish(loop, w, UVA_ENOENT);
  UVT_OK(path_op(loop, uva_fs_unlink, in_dir(p, "g")));
  UVT_EQ(path_op(loop, uva_fs_unlink, p), UVA_ENOENT);
  UVT_OK(path_op(loop, uva_fs_rmdir, in_dir(p, "d")));
  UVT_EQ(path_op(loop, uva_fs_rmdir, p), UVA_ENOENT);
  rm_tmpdir();
  UVT_CLOSE_LOOP(loop);
}

Test(fs, stat_fields, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  char p[256], l[256];
  mk_tmpdir();
  int fd = fs_open(loop, in_dir(p, "f"), O_CREAT | O_WRONLY, 0640);
  cr_assert_eq(fs_write(loop, fd, "12345", -1), 5);
  close(fd);
  cr_assert_eq(symlink(p, in_dir(l, "link")), 0);
  struct stat want;
  cr_assert_eq(stat(p, &want), 0);
  uva_work_t *w;
  uva_stat_t st;
  memset(&st, 0xAB, sizeof st);
  st.size = sizeof st;
  UVT_OK(uva_fs_stat(&w, loop, l)); /* follows the link */
  UVT_OK(await(loop, w));
  UVT_OK(uva_fs_statbuf(&st, w));
  UVT_OK(uva_work_close(w));
  cr_assert_eq(st.size, sizeof st);
  cr_assert_eq(st.type, UVA_FILE_REGULAR);
  cr_assert_eq(st.mode, (uint64_t) want.st_mode);
  cr_assert_eq(st.mode & 0777, 0640 & ~0022 & 0777);
  cr_assert_eq(st.file_size, 5);
  cr_assert_eq(st.ino, (uint64_t) want.st_ino);
  cr_assert_eq(st.dev, (uint64_t) want.st_dev);
  cr_assert_eq(st.nlink, 1);
  cr_assert_eq(st.uid, (uint64_t) getuid());
  cr_assert_eq(st.gid, (uint64_t) want.st_gid);
  cr_assert_eq(st.blksize, (uint64_t) want.st_blksize);
  cr_assert_eq(st.blocks, (uint64_t) want.st_blocks);
  int64_t mtime =
      (int64_t) want.st_mtim.tv_sec * 1000000000 + want.st_mtim.tv_nsec;
  cr_assert_eq(st.mtime_ns, mtime);
  cr_assert(st.mtime_ns > (int64_t) (time(NULL) - 60) * 1000000000);
  cr_assert(st.atime_ns > 0 && st.ctime_ns > 0);
  /* lstat: the link itself. */
  UVT_OK(uva_fs_lstat(&w, loop, l));
  UVT_OK(await(loop, w));
  UVT_OK(uva_fs_statbuf(&st, w));
  UVT_OK(uva_work_close(w));
  cr_assert_eq(st.type, UVA_FILE_LINK);
  cr_assert_eq(st.file_size, strlen(p));
  /* A directory; a missing path. */
  UVT_OK(uva_fs_stat(&w, loop, dir));
  UVT_OK(await(loop, w));
  UVT_OK(uva_fs_statbuf(&st, w));
  cr_assert_eq(st.type, UVA_FILE_DIR);
  UVT_OK(uva_work_close(w));
  UVT_OK(uva_fs_stat(&w, loop, in_dir(p, "missing")));
  UVT_EQ(await(loop, w), UVA_ENOENT);
  UVT_EQ(uva_fs_statbuf(&st, w), UVA_ENOENT);
  UVT_OK(uva_work_close(w));
  rm_tmpdir();
  UVT_CLOSE_LOOP(loop);
}

Test(fs, statbuf_writes_only_the_size_the_caller_has, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_work_t *w;
  UVT_OK(uva_fs_stat(&w, loop, "/"));
  UVT_OK(await(loop, w));
  uva_stat_t st;
  memset(&st, 0xAB, sizeof st);
  st.size = offsetof(uva_stat_t, dev); /* an older, shorter struct */
  UVT_OK(uva_fs_statbuf(&st, w));
  cr_assert_eq(st.size, offsetof(uva_stat_t, dev));
  cr_assert_eq(st.type, UVA_FILE_DIR);
  unsigned char *rest = (unsigned char *) &st + offsetof(uva_stat_t, dev);
  for (size_t i = 0; i < sizeof st - offsetof(uva_stat_t, dev); i++)
    cr_assert_eq(rest[i], 0xAB, "byte %zu past size written", i);
  st.size = sizeof st.size - 1;
  UVT_EQ(uva_fs_statbuf(&st, w), UVA_EINVAL);
  st.size = 0;
  UVT_EQ(uva_fs_statbuf(&st, w), UVA_EINVAL);
  st.size = sizeof st.size; /* the first field only */
  UVT_OK(uva_fs_statbuf(&st, w));
  UVT_OK(uva_work_close(w));
  UVT_CLOSE_LOOP(loop);
}

Test(fs, readdir_contents, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  char p[256];
  mk_tmpdir();
  close(fs_open(loop, in_dir(p, "a"), O_CREAT | O_WRONLY, 0644));
  close(fs_open(loop, in_dir(p, "bb"), O_CREAT | O_WRONLY, 0644));
  UVT_OK(mkdir_op(loop, in_dir(p, "sub"), 0755));
  cr_assert_eq(symlink("a", in_dir(p, "ln")), 0);
  uva_work_t *w;
  UVT_OK(uva_fs_readdir(&w, loop, dir));
  UVT_OK(await(loop, w));
  int64_t n = -1;
  UVT_OK(uva_fs_result(&n, w));
  cr_assert_eq(n, 4);
  int seen = 0;
  for (size_t i = 0; i < 4; i++) {
    const char *name;
    uva_file_type type;
    UVT_OK(uva_fs_dirent(&name, &type, w, i));
    /* d_type may be unknown on some file systems: then UNKNOWN. */
    if (strcmp(name, "a") == 0) {
      cr_assert(type == UVA_FILE_REGULAR || type == UVA_FILE_UNKNOWN);
      seen |= 1;
    } else if (strcmp(name, "bb") == 0) {
      cr_assert(type == UVA_FILE_REGULAR || type == UVA_FILE_UNKNOWN);
      seen |= 2;
    } else if (strcmp(name, "sub") == 0) {
      cr_assert(type == UVA_FILE_DIR || type == UVA_FILE_UNKNOWN);
      seen |= 4;
    } else if (strcmp(name, "ln") == 0) {
      cr_assert(type == UVA_FILE_LINK || type == UVA_FILE_UNKNOWN);
      seen |= 8;
    } else {
      cr_assert_fail("unexpected entry %s", name);
    }
  }
  cr_assert_eq(seen, 15);
  const char *name;
  uva_file_type type;
  UVT_EQ(uva_fs_dirent(&name, &type, w, 4), UVA_EINVAL);
  UVT_OK(uva_work_close(w));
  /* An empty directory; a missing one; a file. */
  UVT_OK(uva_fs_readdir(&w, loop, in_dir(p, "sub")));
  cr_assert_eq(finish(loop, w, 0), 0);
  UVT_OK(uva_fs_readdir(&w, loop, in_dir(p, "missing")));
  finish(loop, w, UVA_ENOENT);
  UVT_OK(uva_fs_readdir(&w, loop, in_dir(p, "a")));
  finish(loop, w, UVA_ENOTDIR);
  rm_tmpdir();
  UVT_CLOSE_LOOP(loop);
}

/* ---- the getters and the starting calls ----------------------------------- */

static void noop(void *d) { (void) d; }

static void gate_fn(void *d) {
  while (atomic_load((atomic_int *) d) == 0)
    uvt_sleep_ms(1);
}

Test(fs, getters_apply_to_the_right_jobs, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  UVT_OK(uva_loop_configure(loop, UVA_LOOP_POOL_SIZE, 1));
  atomic_int gate = 0;
  uva_work_t *user, *blocker, *st;
  int64_t r;
  const void *data;
  size_t n;
  const char *name;
  uva_file_type type;
  uva_stat_t sb;
  memset(&sb, 0, sizeof sb);
  sb.size = sizeof sb;
  UVT_OK(uva_work_submit(&blocker, loop, gate_fn, &gate, NULL, NULL));
  UVT_OK(uva_fs_stat(&st, loop, "/"));
  UVT_EQ(uva_fs_result(&r, st), UVA_EAGAIN); /* not ended */
  UVT_EQ(uva_fs_statbuf(&sb, st), UVA_EAGAIN);
  atomic_store(&gate, 1);
  UVT_OK(await(loop, st));
  UVT_OK(uva_work_submit(&user, loop, noop, NULL, NULL, NULL));
  UVT_OK(await(loop, user));
  UVT_EQ(uva_fs_result(&r, user), UVA_EINVAL); /* not a file job */
  UVT_EQ(uva_fs_data(&data, &n, user), UVA_EINVAL);
  UVT_EQ(uva_fs_statbuf(&sb, user), UVA_EINVAL);
  UVT_EQ(uva_fs_dirent(&name, &type, user, 0), UVA_EINVAL);
  UVT_EQ(uva_fs_data(&data, &n, st), UVA_EINVAL); /* not a read */
  UVT_EQ(uva_fs_dirent(&name, &type, st, 0), UVA_EINVAL);
  UVT_OK(uva_fs_result(&r, st));
  cr_assert_eq(r, 0);
  UVT_EQ(uva_fs_result(NULL, st), UVA_EINVAL);
  UVT_EQ(uva_fs_statbuf(NULL, st), UVA_EINVAL);
  UVT_OK(uva_work_close(st));
  UVT_OK(uva_work_close(user));
  UVT_OK(uva_work_close(blocker));
  UVT_CLOSE_LOOP(loop);
}

Test(fs, starting_calls_check_their_arguments, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_work_t *w = NULL;
  char b[4] = "abc";
  UVT_EQ(uva_fs_open(NULL, loop, "/", O_RDONLY, 0), UVA_EINVAL);
  UVT_EQ(uva_fs_open(&w, NULL, "/", O_RDONLY, 0), UVA_EINVAL);
  UVT_EQ(uva_fs_open(&w, loop, NULL, O_RDONLY, 0), UVA_EINVAL);
  UVT_EQ(uva_fs_stat(&w, loop, NULL), UVA_EINVAL);
  UVT_EQ(uva_fs_lstat(&w, loop, NULL), UVA_EINVAL);
  UVT_EQ(uva_fs_unlink(&w, loop, NULL), UVA_EINVAL);
  UVT_EQ(uva_fs_mkdir(&w, loop, NULL, 0755), UVA_EINVAL);
  UVT_EQ(uva_fs_rmdir(&w, loop, NULL), UVA_EINVAL);
  UVT_EQ(uva_fs_readdir(&w, loop, NULL), UVA_EINVAL);
  UVT_EQ(uva_fs_rename(&w, loop, NULL, "/x"), UVA_EINVAL);
  UVT_EQ(uva_fs_rename(&w, loop, "/x", NULL), UVA_EINVAL);
  UVT_EQ(uva_fs_read(&w, loop, 0, 10, -2), UVA_EINVAL);
  UVT_EQ(uva_fs_read(&w, loop, 0, (size_t) SSIZE_MAX + 1, 0), UVA_EINVAL);
  UVT_EQ(uva_fs_write(&w, loop, 1, b, 3, -2), UVA_EINVAL);
  UVT_EQ(uva_fs_write(&w, loop, 1, NULL, 3, -1), UVA_EINVAL);
  UVT_EQ(uva_fs_write(&w, loop, 1, b, (size_t) SSIZE_MAX + 1, -1), UVA_EINVAL);
  cr_assert_null(w, "no job made");
  UVT_CLOSE_LOOP(loop);
}

/* ---- closing a job whose descriptor nobody takes --------------------------- */

static int count_fds(void) {
  int n = 0;
  DIR *d = opendir("/proc/self/fd");
  if (d == NULL) return -1;
  while (readdir(d) != NULL)
    n++;
  closedir(d);
  return n;
}

Test(fs, open_closed_while_it_runs_closes_the_descriptor, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  char p[256];
  mk_tmpdir();
  cr_assert_eq(mkfifo(in_dir(p, "fifo"), 0600), 0);
  int before = count_fds();
  uva_work_t *w;
  /* Opening a FIFO for reading blocks until a writer comes. */
  UVT_OK(uva_fs_open(&w, loop, p, O_RDONLY, 0));
  uvt_sleep_ms(20);
  UVT_OK(uva_work_close(w));
  int wfd = -1;
  for (int i = 0; i < 5000 && wfd < 0; i++) { /* the reader is in open() */
    wfd = open(p, O_WRONLY | O_NONBLOCK);
    if (wfd < 0) uvt_sleep_ms(1);
  }
  cr_assert(wfd >= 0);
  run(loop); /* the job ends; its descriptor is closed with it */
  close(wfd);
  cr_assert_eq(count_fds(), before);
  rm_tmpdir();
  UVT_CLOSE_LOOP(loop);
}

/* ---- a task waiting for a file job ------------------------------------------ */

struct reader {
  int pc, rc;
  int fd;
  uva_loop_t *loop;
  uva_work_t *w;
  char got[16];
};

static int step_reader(uva_task_t *t, int status, void *d) {
  struct reader *c = d;
  if (status != 0) return status;
  CO_BEGIN(c);
  c->rc = uva_fs_read(&c->w, c->loop, c->fd, 5, 0);
  if (c->rc != 0) return c->rc;
  CO_CALL(c, uva_work_wait(c->w, t));
  if (c->rc == 0) {
    const void *data;
    size_t n;
    c->rc = uva_fs_data(&data, &n, c->w);
    memcpy(c->got, data, n);
  }
  uva_work_close(c->w);
  return c->rc;
  CO_END(c);
}

Test(fs, a_task_waits_for_a_read, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  char p[256];
  mk_tmpdir();
  int fd = fs_open(loop, in_dir(p, "f"), O_CREAT | O_RDWR, 0600);
  cr_assert_eq(fs_write(loop, fd, "abcdefgh", -1), 8);
  struct reader c = {0};
  c.fd = fd;
  c.loop = loop;
  uva_task_t *t;
  UVT_OK(uva_task_spawn(&t, loop, step_reader, &c, NULL));
  run(loop);
  UVT_OK(task_rc(t));
  cr_assert_str_eq(c.got, "abcde");
  uva_task_release(t);
  close(fd);
  rm_tmpdir();
  UVT_CLOSE_LOOP(loop);
}
