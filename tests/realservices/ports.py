"""Ports for the test servers, reserved so that no other process takes one first.

A port found free (bind to port 0, close) and handed to a server is free only until then:
in between, any process may get it, as its own server's port or as the source port of an
outgoing connection, and the server fails to start (or to restart, when a test stops it
and starts it again on the same port). :func:`reserve_port` closes that gap.
"""

from __future__ import annotations

import socket

HOST = "127.0.0.1"


def reserve_port() -> socket.socket:
    """A socket bound to a free port of 127.0.0.1 that never listens: the port's reservation.

    While it is open, the kernel gives the port to no other socket (a bind to port 0, an
    outgoing connection's source port), and no bind without SO_REUSEADDR gets it; a server
    that binds with SO_REUSEADDR still listens on it, at once or again after a restart. The
    servers of these tests all do: uvicorn (asyncio's servers), Ceph's messenger. Close the
    socket once the server is done for good.
    """
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((HOST, 0))
    except BaseException:
        s.close()
        raise
    return s
