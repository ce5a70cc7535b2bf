# Simulated WiFi link: up, except in scripted outages (virtual time).


class SimWifi:
    def __init__(self, clock, outages=()):
        self.clock = clock
        self.outages = list(outages)   # [(from_ms, to_ms)]
        self.ssid = ""                 # any network joins at once here

    def configure(self, ssid, password):
        self.ssid = ssid

    def isconnected(self):
        t = self.clock.now_ms()
        for a, b in self.outages:
            if a <= t < b:
                return False
        return True

    def resolve(self, host, port):
        """The broker's address (the host's resolver answers at once)."""
        import socket
        return socket.getaddrinfo(host, port)[0][-1]
