//! futures-io `AsyncRead`, `AsyncBufRead` and `AsyncWrite` for the stream
//! types (feature `futures-io`), so ecosystem code runs on them. `poll_fill_buf`
//! lends a copy of the core's buffered bytes (up to 64 KiB at a time): its
//! slice may be held across an await, while the core's buffer moves. The
//! zero-copy read is the streams' `read_with`.

/// AsyncRead and AsyncBufRead (a readable stream, as a child's stdout).
macro_rules! impl_futures_io_read {
    ($ty:ident) => {
        impl futures_io::AsyncRead for $ty {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut [u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.get_mut().inner.poll_read(cx, buf)
            }
        }

        impl futures_io::AsyncBufRead for $ty {
            fn poll_fill_buf(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<&[u8]>> {
                self.get_mut().inner.poll_fill_buf(cx)
            }

            fn consume(self: std::pin::Pin<&mut Self>, amt: usize) {
                self.get_mut().inner.consume(amt)
            }
        }
    };
}

/// AsyncWrite (a stream that writes).
macro_rules! impl_futures_io_write {
    ($ty:ident) => {
        impl futures_io::AsyncWrite for $ty {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.get_mut().inner.poll_write(cx, buf)
            }

            /// All the buffers in one call into the core: one vectored
            /// system call for what the kernel takes.
            fn poll_write_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.get_mut().inner.poll_write_vectored(cx, bufs)
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                self.get_mut().inner.poll_flush(cx)
            }

            fn poll_close(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                self.get_mut().inner.poll_shutdown(cx)
            }
        }
    };
}

/// All three, for a stream that reads and writes (a socket).
macro_rules! impl_futures_io {
    ($ty:ident) => {
        crate::io_traits::impl_futures_io_read!($ty);
        crate::io_traits::impl_futures_io_write!($ty);
    };
}

pub(crate) use {impl_futures_io, impl_futures_io_read, impl_futures_io_write};
