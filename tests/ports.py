"""Loopback ports and servers that fail the way unreachable or too slow APIs do."""

import socket
import threading
import time


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


class DribblingServer:
    """A loopback HTTP server that answers every request with `preamble`, then `piece` every
    `interval` seconds (`count` times, or until the client goes), then `epilogue`: an answer
    that comes too slowly in a way a simulator built on http.server cannot send (headers a
    line at a time, chunk-size lines, compressed bytes that decode to nothing)."""

    def __init__(self, preamble: bytes, piece: bytes, interval: float, count=None, epilogue=b""):
        self.answer = (preamble, piece, interval, count, epilogue)
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # closed: the test is over
                return
            threading.Thread(target=self.answer_one, args=(client,), daemon=True).start()

    def answer_one(self, client: socket.socket):
        preamble, piece, interval, count, epilogue = self.answer
        with client:
            try:
                client.recv(65536)
                client.sendall(preamble)
                sent = 0
                while count is None or sent < count:
                    time.sleep(interval)
                    client.sendall(piece)
                    sent += 1
                client.sendall(epilogue)
            except OSError:  # the client cut the answer off
                pass

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.listener.close()
