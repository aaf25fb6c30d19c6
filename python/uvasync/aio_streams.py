"""asyncio's stream transports on the core's streams (issue 25): TCP, Unix
and pipe transports, create_connection, create_server and its Server,
create_unix_connection/create_unix_server, connect_accepted_socket,
connect_read_pipe/connect_write_pipe, sendfile, start_tls. EventLoop
(aio_loop.py) takes these methods from StreamsMixin."""


class StreamsMixin:
    """The stream-transport methods of EventLoop."""

    __slots__ = ()
