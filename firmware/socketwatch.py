# A shell's poll kept on the sync's broker socket as connections come and go,
# so that broker data ends the shell's sleep. Its own module: a meter without a
# broker never loads the MQTT stack.

import select


class SocketWatch:
    """A shell's poll kept on the sync's broker socket as connections come
    and go, so that broker data ends the shell's sleep (hal/esp32/shell.py,
    hal/sim/realtime.py)."""

    def __init__(self, poll):
        self.poll = poll
        self.sock = None

    def follow(self, sync):
        """Watch sync's current socket; returns its link (None: no link)."""
        link = sync.link if sync is not None else None
        sock = link.s if link is not None else None
        if sock is not self.sock:
            if self.sock is not None:
                try:
                    self.poll.unregister(self.sock)
                except (OSError, ValueError, KeyError):
                    pass      # closed with its connection
            if sock is not None:
                self.poll.register(sock, select.POLLIN)
            self.sock = sock
        return link
