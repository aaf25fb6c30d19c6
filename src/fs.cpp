/* uvasync — file operations as jobs of the loop's thread pool (uva_fs_*).
 *
 * As libuv's uv_fs_* on Unix: each operation is a job that runs the plain
 * system call(s) on a pool thread, and its end completes a wait (pool.cpp).
 * The job owns copies of its arguments (paths, the bytes to write) and the
 * buffer it reads into, so a task cancelled while it waits, or a caller
 * that closes the job, leaves nothing that a pool thread still uses. The
 * job's status (Work::result) is 0 or -errno; what it produced (a
 * descriptor, a count, a stat, directory entries) is read with the
 * getters once it ended.
 */
#include "internal.h"
#include "fault.h"

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/sendfile.h>
#endif

namespace uva {
namespace detail {

struct DirEnt {
  char *name;
  uva_file_type type;
};

struct FsWork : Work {
  FsOp op;
  int fd;
  int flags;
  int mode;
  int64_t offset;
  size_t len;
  char *path;
  char *path2;
  char *buf;     /* READ: the bytes read; WRITE: the copy written */
  int64_t count; /* the descriptor, bytes, or entries */
  struct stat st;
  DirEnt *ents;
  size_t nents;
  int in_fd;      /* SENDFILE: the file; fd is the stream's descriptor */
  Stream *stream; /* SENDFILE: referenced until the job's memory goes */
};

static FsWork *as_fs(Work *w) { return static_cast<FsWork *>(w); }

/* ---- on a pool thread ----------------------------------------------------- */

static uva_file_type type_of_mode(mode_t m) {
  if (S_ISREG(m)) return UVA_FILE_REGULAR;
  if (S_ISDIR(m)) return UVA_FILE_DIR;
  if (S_ISLNK(m)) return UVA_FILE_LINK;
  if (S_ISFIFO(m)) return UVA_FILE_FIFO;
  if (S_ISSOCK(m)) return UVA_FILE_SOCKET;
  if (S_ISCHR(m)) return UVA_FILE_CHAR;
  if (S_ISBLK(m)) return UVA_FILE_BLOCK;
  return UVA_FILE_UNKNOWN;
}

static uva_file_type type_of_dirent(const struct dirent *d) {
#ifdef DT_REG
  switch (d->d_type) {
    case DT_REG:
      return UVA_FILE_REGULAR;
    case DT_DIR:
      return UVA_FILE_DIR;
    case DT_LNK:
      return UVA_FILE_LINK;
    case DT_FIFO:
      return UVA_FILE_FIFO;
    case DT_SOCK:
      return UVA_FILE_SOCKET;
    case DT_CHR:
      return UVA_FILE_CHAR;
    case DT_BLK:
      return UVA_FILE_BLOCK;
    default:
      return UVA_FILE_UNKNOWN;
  }
#else
  (void) d;
  return UVA_FILE_UNKNOWN;
#endif
}

/* -errno of a call that returned r (< 0), retried on EINTR by the caller. */
static int err() { return -errno; }

static int do_read(FsWork *f) {
  ssize_t n;
  do {
    n = f->offset < 0 ? read(f->fd, f->buf, f->len)
                      : pread(f->fd, f->buf, f->len, off_t(f->offset));
  } while (n < 0 && errno == EINTR);
  if (n < 0) return err();
  f->count = n;
  return 0;
}

/* All of it, looping on short writes; an error after some bytes went
 * ends it with the count written (the next write reports the error). */
static int do_write(FsWork *f) {
  size_t done = 0;
  while (done < f->len) {
    ssize_t n = f->offset < 0 ? write(f->fd, f->buf + done, f->len - done)
                              : pwrite(f->fd, f->buf + done, f->len - done,
                                       off_t(f->offset + int64_t(done)));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (done == 0) return err();
      break;
    }
    if (n == 0) break; /* no progress: do not spin */
    done += size_t(n);
  }
  f->count = int64_t(done);
  return 0;
}

/* The whole directory, without "." and "..". */
static int do_readdir(FsWork *f) {
  DIR *dir = opendir(f->path);
  if (dir == nullptr) return err();
  size_t cap = 0;
  int rc = 0;
  for (;;) {
    errno = 0;
    struct dirent *d = readdir(dir);
    if (d == nullptr) {
      if (errno != 0) rc = err();
      break;
    }
    if (std::strcmp(d->d_name, ".") == 0 || std::strcmp(d->d_name, "..") == 0)
      continue;
    if (f->nents == cap) {
      size_t ncap = cap == 0 ? 16 : cap * 2;
      void *p = fault_realloc(f->ents, ncap * sizeof(DirEnt));
      if (p == nullptr) {
        rc = UVA_ENOMEM;
        break;
      }
      f->ents = static_cast<DirEnt *>(p);
      cap = ncap;
    }
    size_t len = std::strlen(d->d_name);
    char *name = static_cast<char *>(fault_malloc(len + 1));
    if (name == nullptr) {
      rc = UVA_ENOMEM;
      break;
    }
    std::memcpy(name, d->d_name, len + 1);
    f->ents[f->nents].name = name;
    f->ents[f->nents].type = type_of_dirent(d);
    f->nents++;
  }
  closedir(dir);
  if (rc == 0) f->count = int64_t(f->nents);
  return rc;
}

/* ---- sendfile, on a pool thread ---------------------------------------------
 *
 * The stream's descriptor is non-blocking (libuv's): when the socket is
 * full the thread waits in poll() for room, a short while at a time, and
 * looks at the job's stop flag in between, which the loop sets when the
 * stream or the job is closed. The loop closes the descriptor only after
 * the job ended (stream_sendfile_end), so the thread never writes to a
 * descriptor that was closed, or reused. */

constexpr size_t SENDFILE_CHUNK = 4 * 1024 * 1024;
constexpr int STOP_CHECK_MS = 20;

/* Wait until fd takes bytes: 0, UVA_ECLOSED (stopped), or an error. */
static int wait_writable(FsWork *f) {
  for (;;) {
    if (f->stop.load(std::memory_order_relaxed)) return UVA_ECLOSED;
    struct pollfd p;
    p.fd = f->fd;
    p.events = POLLOUT;
    p.revents = 0;
    int r = poll(&p, 1, STOP_CHECK_MS);
    if (r < 0 && errno != EINTR) return err();
    if (r > 0) return 0; /* writable, or an error the next write reports */
  }
}

/* Write all of buf to the stream's descriptor. */
static int write_all(FsWork *f, const char *buf, size_t len) {
  size_t done = 0;
  while (done < len) {
    if (f->stop.load(std::memory_order_relaxed)) return UVA_ECLOSED;
    ssize_t n = send(f->fd, buf + done, len - done, MSG_NOSIGNAL);
    if (n < 0 && errno == ENOTSOCK)
      n = write(f->fd, buf + done, len - done); /* a pipe */
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return err();
      int rc = wait_writable(f);
      if (rc != 0) return rc;
      continue;
    }
    done += size_t(n);
  }
  return 0;
}

/* A buffer the kernel copies file bytes into (reads, the copy of a
 * write, copy_file's chunk), released with free(). A page or more is
 * page-aligned: malloc's 256 KiB chunk starts 16 bytes past a 64-byte
 * boundary, where the kernel's copy out of the page cache (rep movsb) ran
 * about 4x slower than into an aligned one (2.4 against 10 GB/s for
 * read(2) of a cached file, bench_raw_os.c's note). */
static char *chunk_alloc(size_t len) {
  if (len < 4096) return static_cast<char *>(fault_malloc(len));
  return static_cast<char *>(fault_aligned_alloc(4096, len));
}

/* Where sendfile(2) cannot (not Linux, or descriptors it does not take):
 * read a chunk of the file, write it, and again. */
static int copy_file(FsWork *f, int64_t off) {
  size_t chunk = f->len - size_t(f->count);
  if (chunk > SENDFILE_CHUNK) chunk = SENDFILE_CHUNK;
  char *buf = chunk_alloc(chunk > 0 ? chunk : 1);
  if (buf == nullptr) return UVA_ENOMEM;
  int rc = 0;
  while (size_t(f->count) < f->len) {
    size_t want = f->len - size_t(f->count);
    if (want > chunk) want = chunk;
    ssize_t n;
    do {
      n = off < 0 ? read(f->in_fd, buf, want)
                  : pread(f->in_fd, buf, want, off_t(off + f->count));
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      rc = err();
      break;
    }
    if (n == 0) break; /* end of file */
    rc = write_all(f, buf, size_t(n));
    if (rc != 0) break;
    f->count += n;
  }
  std::free(buf);
  return rc;
}

static int do_sendfile(FsWork *f) {
  int64_t off = f->offset;
#ifdef __linux__
  while (size_t(f->count) < f->len) {
    if (f->stop.load(std::memory_order_relaxed)) return UVA_ECLOSED;
    size_t want = f->len - size_t(f->count);
    if (want > SENDFILE_CHUNK) want = SENDFILE_CHUNK;
    off_t o = off_t(off + f->count);
    ssize_t n = sendfile(f->fd, f->in_fd, off < 0 ? nullptr : &o, want);
    if (n > 0) {
      f->count += n;
      continue;
    }
    if (n == 0) return 0; /* end of file */
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      int rc = wait_writable(f);
      if (rc != 0) return rc;
      continue;
    }
    if ((errno == EINVAL || errno == ENOSYS) && f->count == 0) break;
    return err();
  }
  if (size_t(f->count) >= f->len) return 0;
#endif
  return copy_file(f, off);
}

static int run_op(FsWork *f) {
  int r;
  switch (f->op) {
    case FsOp::OPEN:
      do {
        r = open(f->path, f->flags | O_CLOEXEC, f->mode);
      } while (r < 0 && errno == EINTR);
      if (r < 0) return err();
      f->count = r;
      return 0;
    case FsOp::CLOSE:
      /* Not retried on EINTR: on Linux the descriptor is gone then. */
      return close(f->fd) != 0 && errno != EINTR ? err() : 0;
    case FsOp::READ:
      return do_read(f);
    case FsOp::WRITE:
      return do_write(f);
    case FsOp::FSYNC:
#ifdef __APPLE__
      r = fsync(f->fd);
#else
      r = f->flags ? fdatasync(f->fd) : fsync(f->fd);
#endif
      return r != 0 ? err() : 0;
    case FsOp::FTRUNCATE:
      do {
        r = ftruncate(f->fd, off_t(f->offset));
      } while (r != 0 && errno == EINTR);
      return r != 0 ? err() : 0;
    case FsOp::STAT:
      return stat(f->path, &f->st) != 0 ? err() : 0;
    case FsOp::LSTAT:
      return lstat(f->path, &f->st) != 0 ? err() : 0;
    case FsOp::FSTAT:
      return fstat(f->fd, &f->st) != 0 ? err() : 0;
    case FsOp::RENAME:
      return rename(f->path, f->path2) != 0 ? err() : 0;
    case FsOp::UNLINK:
      return unlink(f->path) != 0 ? err() : 0;
    case FsOp::MKDIR:
      return mkdir(f->path, mode_t(f->mode)) != 0 ? err() : 0;
    case FsOp::RMDIR:
      return rmdir(f->path) != 0 ? err() : 0;
    case FsOp::READDIR:
      return do_readdir(f);
    case FsOp::SENDFILE:
      return do_sendfile(f);
    default:
      return UVA_EINVAL;
  }
}

static void run_fs(Work *w) {
  FsWork *f = as_fs(w);
  f->result = run_op(f);
}

/* ---- on the loop thread --------------------------------------------------- */

/* Chunk buffers (reads, copies of writes) up to this size are kept for
 * the next job of the same size: glibc maps and unmaps buffers of 256 KiB
 * for each job, and the kernel zeroes every fresh page; with them kept, a
 * 1 GiB copy in 256 KiB jobs took 2.8-7.3 s instead of 4.1-10 s
 * (tests/test_fs_big.c, alternating runs on a loaded 2-core machine). At
 * most Loop::FS_BUFS are kept; each came from chunk_alloc, so a kept
 * buffer is as aligned as a fresh one. */
constexpr size_t FS_BUF_KEEP = 1024 * 1024;

static char *buf_take(Loop *l, size_t len) {
  for (int i = 0; i < Loop::FS_BUFS; i++) {
    if (l->fs_buf[i] != nullptr && l->fs_buf_len[i] == len) {
      char *p = static_cast<char *>(l->fs_buf[i]);
      l->fs_buf[i] = nullptr;
      return p;
    }
  }
  return chunk_alloc(len);
}

static void buf_give(Loop *l, char *p, size_t len) {
  if (p == nullptr) return;
  if (len <= FS_BUF_KEEP) {
    int slot = -1;
    for (int i = 0; i < Loop::FS_BUFS; i++)
      if (l->fs_buf[i] == nullptr) slot = i;
    if (slot < 0) { /* full: the oldest size makes room */
      slot = 0;
      std::free(l->fs_buf[0]);
    }
    l->fs_buf[slot] = p;
    l->fs_buf_len[slot] = len;
    return;
  }
  std::free(p);
}

void fs_free_bufs(Loop *l) {
  for (int i = 0; i < Loop::FS_BUFS; i++) {
    std::free(l->fs_buf[i]);
    l->fs_buf[i] = nullptr;
  }
}

/* The job's own memory, when it goes. A descriptor opened for a caller
 * who closed the job before it ended is closed here: nobody has it. */
static void cleanup_fs(Work *w) {
  FsWork *f = as_fs(w);
  if (f->op == FsOp::OPEN && f->orphaned && f->result == 0 && f->count >= 0)
    close(int(f->count));
  std::free(f->path);
  std::free(f->path2);
  buf_give(f->loop, f->buf, f->len);
  for (size_t i = 0; i < f->nents; i++)
    std::free(f->ents[i].name);
  std::free(f->ents);
  if (f->stream != nullptr) sync_unref(f->stream);
}

static char *copy_str(const char *s) {
  size_t n = std::strlen(s) + 1;
  char *p = static_cast<char *>(fault_malloc(n));
  if (p != nullptr) std::memcpy(p, s, n);
  return p;
}

static bool takes_path(FsOp op) {
  switch (op) {
    case FsOp::OPEN:
    case FsOp::STAT:
    case FsOp::LSTAT:
    case FsOp::RENAME:
    case FsOp::UNLINK:
    case FsOp::MKDIR:
    case FsOp::RMDIR:
    case FsOp::READDIR:
      return true;
    default:
      return false;
  }
}

/* A file job with its arguments (not yet their copies). */
static FsWork *fs_new(Loop *l, const FsArgs &a) {
  FsWork *f = static_cast<FsWork *>(fault_malloc(sizeof(FsWork)));
  if (f == nullptr) return nullptr;
  work_init(f, l);
  f->run = run_fs;
  f->cleanup = cleanup_fs;
  f->is_fs = true;
  f->op = a.op;
  f->fd = a.fd;
  f->flags = a.flags;
  f->mode = a.mode;
  f->offset = a.offset;
  f->len = a.len;
  f->path = f->path2 = f->buf = nullptr;
  f->count = 0;
  std::memset(&f->st, 0, sizeof f->st);
  f->ents = nullptr;
  f->nents = 0;
  f->in_fd = -1;
  f->stream = nullptr;
  return f;
}

int fs_start(Work **out, Loop *l, const FsArgs &a) {
  if (takes_path(a.op) && a.path == nullptr) return UVA_EINVAL;
  if (a.op == FsOp::RENAME && a.path2 == nullptr) return UVA_EINVAL;
  if (a.op == FsOp::READ || a.op == FsOp::WRITE) {
    if (a.offset < -1 || a.len > size_t(SSIZE_MAX)) return UVA_EINVAL;
    if (a.op == FsOp::WRITE && a.data == nullptr && a.len > 0)
      return UVA_EINVAL;
  }
  if (a.op == FsOp::FTRUNCATE && a.offset < 0) return UVA_EINVAL;
  FsWork *f = fs_new(l, a);
  if (f == nullptr) return UVA_ENOMEM;
  int rc = 0;
  if (takes_path(a.op) && (f->path = copy_str(a.path)) == nullptr)
    rc = UVA_ENOMEM;
  if (rc == 0 && a.op == FsOp::RENAME &&
      (f->path2 = copy_str(a.path2)) == nullptr)
    rc = UVA_ENOMEM;
  if (rc == 0 && (a.op == FsOp::READ || a.op == FsOp::WRITE) && a.len > 0) {
    f->buf = buf_take(l, a.len);
    if (f->buf == nullptr)
      rc = UVA_ENOMEM;
    else if (a.op == FsOp::WRITE)
      std::memcpy(f->buf, a.data, a.len);
  }
  if (rc == 0) rc = work_queue(f);
  if (rc != 0) {
    work_free_failed(f);
    return rc;
  }
  *out = f;
  return 0;
}

static void sendfile_ended(Work *w) {
  stream_sendfile_end(as_fs(w)->stream, w->result, as_fs(w)->count);
}

int fs_sendfile(Work **out, Stream *s, int in_fd, int64_t offset, size_t len) {
  if (offset < -1 || len > size_t(SSIZE_MAX)) return UVA_EINVAL;
  int fd;
  bool now;
  int rc = stream_sendfile_prepare(s, &fd, &now);
  if (rc != 0) return rc;
  FsArgs a{FsOp::SENDFILE};
  a.fd = fd;
  a.offset = offset;
  a.len = len;
  FsWork *f = fs_new(s->loop, a);
  if (f == nullptr) return UVA_ENOMEM;
  f->in_fd = in_fd;
  if (now) {
    rc = work_queue(f);
    if (rc != 0) {
      work_free_failed(f);
      return rc;
    }
  } else {
    work_hold(f); /* on_write starts it once the queued bytes left */
  }
  f->stream = s;
  s->refs.fetch_add(1, std::memory_order_relaxed);
  f->on_end = sendfile_ended;
  s->sf = f;
  *out = f;
  return 0;
}

/* 0 when the getters may read what the job made, else the code to return. */
static int readable(Work *w) {
  if (!w->is_fs) return UVA_EINVAL;
  if (!w->ended) return UVA_EAGAIN;
  return w->result;
}

int fs_result(int64_t *out, Work *w) {
  int rc = readable(w);
  /* A sendfile that failed part-way still tells what it sent: the caller
   * advances the file by that much (as os.sendfile's users do). */
  bool partial = rc < 0 && rc != UVA_EAGAIN && rc != UVA_EINVAL &&
                 as_fs(w)->op == FsOp::SENDFILE;
  if (rc == 0 || partial) *out = as_fs(w)->count;
  return rc;
}

int fs_data(const void **data, size_t *len, Work *w) {
  if (w->is_fs && as_fs(w)->op != FsOp::READ) return UVA_EINVAL;
  int rc = readable(w);
  if (rc != 0) return rc;
  static const char empty = 0; /* a 0-byte read has no buffer: never NULL */
  *data = as_fs(w)->buf != nullptr ? as_fs(w)->buf : &empty;
  *len = size_t(as_fs(w)->count);
  return 0;
}

static int64_t ns_of(const struct timespec &ts) {
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

int fs_statbuf(uva_stat_t *out, Work *w) {
  if (out->size < sizeof out->size) return UVA_EINVAL;
  if (w->is_fs) {
    FsOp op = as_fs(w)->op;
    if (op != FsOp::STAT && op != FsOp::LSTAT && op != FsOp::FSTAT)
      return UVA_EINVAL;
  }
  int rc = readable(w);
  if (rc != 0) return rc;
  const struct stat &st = as_fs(w)->st;
  uva_stat_t s;
  std::memset(&s, 0, sizeof s);
  s.size = out->size;
  s.type = type_of_mode(st.st_mode);
  s.mode = uint64_t(st.st_mode);
  s.dev = uint64_t(st.st_dev);
  s.ino = uint64_t(st.st_ino);
  s.nlink = uint64_t(st.st_nlink);
  s.uid = uint64_t(st.st_uid);
  s.gid = uint64_t(st.st_gid);
  s.rdev = uint64_t(st.st_rdev);
  s.file_size = uint64_t(st.st_size);
  s.blksize = uint64_t(st.st_blksize);
  s.blocks = uint64_t(st.st_blocks);
#ifdef __APPLE__
  s.atime_ns = ns_of(st.st_atimespec);
  s.mtime_ns = ns_of(st.st_mtimespec);
  s.ctime_ns = ns_of(st.st_ctimespec);
#else
  s.atime_ns = ns_of(st.st_atim);
  s.mtime_ns = ns_of(st.st_mtim);
  s.ctime_ns = ns_of(st.st_ctim);
#endif
  /* A caller built against an older, smaller uva_stat_t gets its part. */
  std::memcpy(out, &s, out->size < sizeof s ? out->size : sizeof s);
  return 0;
}

int fs_dirent(const char **name, uva_file_type *type, Work *w, size_t i) {
  if (w->is_fs && as_fs(w)->op != FsOp::READDIR) return UVA_EINVAL;
  int rc = readable(w);
  if (rc != 0) return rc;
  FsWork *f = as_fs(w);
  if (i >= f->nents) return UVA_EINVAL;
  *name = f->ents[i].name;
  *type = f->ents[i].type;
  return 0;
}

}  // namespace detail
}  // namespace uva
