# socket as the ESP32 port has it (ports/esp32/modsocket.c), for the device
# lane: the host's sockets, but getaddrinfo resolves names the way lwIP does on
# a board, with no timeout of its own: a name costs the world's "dns"
# delay_ms (lwIP retries each DNS server for seconds when upstream is down)
# and resolves from its "hosts" table; a literal address costs nothing.

from usocket import *  # noqa: F401,F403
import usocket
import utime

import _world

_dns = _world.get("dns", {})
lookups = {}


def getaddrinfo(host, port, af=0, type=0, proto=0, flags=0):
    parts = host.split(".")
    literal = len(parts) == 4 and all(p.isdigit() for p in parts)
    if not literal:
        lookups[host] = lookups.get(host, 0) + 1
        _world.report("dns_lookups", lookups)
        utime.sleep_ms(_dns.get("delay_ms", 0))
        if host not in _dns.get("hosts", {}):
            raise OSError(-2)     # the port's "no such host" (EAI_NONAME)
        host = _dns["hosts"][host]
    return usocket.getaddrinfo(host, port, af, type, proto, flags)
