/* uvasync — what the stream files share: the buffer's helpers, the
 * interface between the stream API (stream.cpp) and the two read engines
 * that bring bytes from the kernel into the buffer, and the read-ahead
 * heuristics. Nothing here is API; only stream*.cpp include it.
 *
 *   stream.cpp         the buffer, the read/peek/line/until/write API,
 *                      connecting, close, servers
 *   stream_libuv.cpp   libuv's level-triggered reading (uv_read_start):
 *                      TTYs, Windows and macOS, and UVA_POLLER=libuv
 *   stream_edge.cpp    the loop's own edge-triggered epoll set (Linux),
 *                      and our reads from the descriptor (read_now,
 *                      read_direct), which a waiting reader makes under
 *                      either engine
 */
#ifndef UVASYNC_STREAM_ENGINE_H
#define UVASYNC_STREAM_ENGINE_H

#include "internal.h"

namespace uva {
namespace detail {

/* libuv suggests 64 KiB per read: one huge read costs the kernel more than
 * two of this size (measured on the echo benchmark). */
constexpr size_t READ_CHUNK = 64 * 1024;

inline Stream *stream_of(uv_handle_t *h) {
  return static_cast<Stream *>(h->data);
}

#ifndef _WIN32
/* The stream's descriptor (uv_fileno, looked up once: it does not change
 * while the stream is open); -1 if it has none. */
inline int fd_of(Stream *s) {
  if (s->fd < 0) {
    uv_os_fd_t fd;
    if (uv_fileno(&s->uv.h, &fd) == 0) s->fd = fd;
  }
  return s->fd;
}
#endif

/* How much the buffer may hold before reading pauses: high_water, or what
 * a waiting read needs if that is more, or no limit for a read to EOF. */
inline size_t read_limit(const Stream *s) {
  if (s->to_eof) return SIZE_MAX;
  return s->want > s->high_water ? s->want : s->high_water;
}

/* stream.cpp: room for the next read of up to `chunk` bytes, {NULL, 0}
 * when memory runs out. */
uv_buf_t room(Stream *s, size_t chunk = READ_CHUNK);

/* ---- the read engines ----------------------------------------------------
 *
 * One engine reads a stream: the edge engine where the loop has its own
 * epoll set and it takes the descriptor, else libuv's. stream.cpp starts
 * reading when there is room and a reason (maybe_read), and tells the
 * engine when reading ends for good and when the stream closes; the rest
 * (pausing at the flow-control limit, resuming) each engine does itself.
 */

/* stream_libuv.cpp: uv_read_start, `reading` set: 0 or its error. */
int libuv_read_start(Stream *s);
/* Stop for good (EOF, an error, the program's EOF): no-op if not reading. */
void libuv_read_stop(Stream *s);
/* Stop if the buffer holds the flow-control limit (a wait went away or a
 * limit changed); maybe_read starts again when a read brings it below. */
void libuv_read_pause_if_full(Stream *s);
/* The handle is closing: uv_close stops the reads. */
inline void libuv_read_on_close(Stream *s) { s->reading = false; }

/* stream_edge.cpp: put the stream in the loop's epoll set (`edge` set);
 * false where it cannot be (then libuv reads it). */
bool edge_read_start(Stream *s);
/* Read what the kernel reported into the buffer, up to the limit. */
void edge_fill(Stream *s);
/* Leave the epoll set while the descriptor is still open. */
void edge_read_on_close(Stream *s);

/* stream_edge.cpp, for either engine: a waiting reader's own reads from
 * the descriptor while `more` says the kernel has bytes (Unix; no-ops on
 * Windows). read_now reads into the buffer; read_direct into the reader's
 * buffer (and past it into spill), returning the count. */
void read_now(Stream *s);
size_t read_direct(Stream *s, void *buf, size_t len, void *spill,
                   size_t spill_len);

/* ---- read-ahead: how much one read from the kernel takes -----------------
 *
 * A read into a caller's buffer of READ_DIRECT_MIN bytes or more, while
 * ours is empty, reads into it directly (read_direct): the kernel copies
 * the bytes where the caller wants them, with no copy out of ours after.
 * Smaller ones are better served from ours, where one read may serve
 * several calls.
 *
 * A stream whose reads fill a whole chunk, or the caller's buffer, has
 * outgrown them (`outgrown`), and reads more at once from then on:
 *
 * - Young reads (stream_read): the first YOUNG_READS_AHEAD direct reads
 *   after that also take what the kernel holds past the caller's buffer,
 *   into ours, in the same call. Linux grows a connection's receive buffer
 *   only when the application reads more than its last measured amount
 *   within one round trip, not counting what it leaves queued; reads of a
 *   64 KiB buffer from 100 KiB messages never show that, and a connection
 *   that did not grow early kept the initial 128 KiB buffer for good. Its
 *   window then split every message in three with a window update
 *   between: 3-8% of a 10 x 100 KiB echo's throughput, against tokio
 *   (bench/README.md). A few such reads let it grow; after them reads go
 *   straight to the caller's buffer again, with no copy out of ours.
 *
 * - Wide reads (read_now): two chunks at once, for good, not only a young
 *   stream's few reads: a 100 KiB message then comes in one read, and a
 *   zero-copy echo writes it back in one send, where one chunk split both
 *   in two (64 + 36 KiB). One read made 1.2x the round trips for 0.85x
 *   the kernel time each (10 x 100 KiB echo, bench/README.md, "Zero copy
 *   against a copying read"). The larger reads also let Linux grow the
 *   receive window, as the young reads do. Still at most a chunk past the
 *   flow-control limit (uvasync.h).
 */
constexpr size_t READ_DIRECT_MIN = 4096;
constexpr uint8_t YOUNG_READS_AHEAD = 8;
constexpr size_t WIDE_READ_CHUNK = 2 * READ_CHUNK;

/* A direct read of n bytes into a caller's buffer of len (no spill). */
inline void readahead_after_direct(Stream *s, size_t n, size_t len) {
  if (n == len) s->outgrown = true;
}

/* A read of n bytes into the buffer, which had room for len. */
inline void readahead_after_chunk(Stream *s, size_t n, size_t len) {
  if (n == len && n >= READ_CHUNK) s->outgrown = true;
}

/* Whether this direct read is one of a young stream's few that read ahead
 * past the caller's buffer, counting it if so. */
inline bool readahead_young(Stream *s) {
  if (!s->outgrown || s->reads_ahead >= YOUNG_READS_AHEAD) return false;
  s->reads_ahead++;
  return true;
}

/* How much read_now's one read takes: a chunk, or a wide one once the
 * stream has outgrown it (the limit may be SIZE_MAX, for a reader waiting
 * for EOF: compare, not add). */
inline size_t readahead_chunk(const Stream *s) {
  if (!s->outgrown) return READ_CHUNK;
  size_t limit = read_limit(s);
  return limit >= WIDE_READ_CHUNK - READ_CHUNK ? WIDE_READ_CHUNK
                                               : limit + READ_CHUNK;
}

}  // namespace detail
}  // namespace uva

#endif /* UVASYNC_STREAM_ENGINE_H */
