"""Loopback ports that fail the way unreachable APIs do, for tests of connection failures."""

import socket


def closed_port() -> int:
    """A loopback port nothing listens on: connections to it are refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class BlackholedPort:
    """A loopback port that never completes a connection, like a firewall dropping packets:
    it listens with a backlog of 0 and is kept full, so the kernel drops every new SYN and
    a client waits out its connect timeout."""

    BACKLOG_FILLERS = 4  # connections that fill a zero backlog (Linux admits one or two)

    def __init__(self):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(0)
        self.port = self.listener.getsockname()[1]
        self.fillers = [self.fill() for _ in range(self.BACKLOG_FILLERS)]

    def fill(self):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", self.port))
        return filler

    def close(self):
        for sock in (*self.fillers, self.listener):
            sock.close()
