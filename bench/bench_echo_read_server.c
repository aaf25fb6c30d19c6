/* bench_echo_read_server — bench_echo_server with a copying read.
 *
 *   bench_echo_read_server [host] [port]     (default 127.0.0.1 0)
 *
 * The same server, port and CPU lines as bench_echo_server, but the
 * handler echoes with a plain uva_stream_read into its own 64 KiB buffer,
 * then uva_stream_write: the copying echo that the zero-copy one (peek ->
 * write -> consume) must never be slower than. run_echo.py --read-server
 * runs both in the same rounds.
 */
#define ECHO_COPY 1
#include "bench_echo_server.c"
