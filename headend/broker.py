"""The head-end side's MQTT client setup and HOST:PORT arguments, one of each
for meterctl, the service and the simulator's command line."""

import argparse
import socket


def host_port(text, free_port=False):
    """'host:1883' -> ('host', 1883) for argparse; port 0 only with free_port
    (a server that picks one)."""
    host, sep, port = text.rpartition(":")
    try:
        port = int(port)
    except ValueError:
        port = -1
    if not sep or not host or not (0 if free_port else 1) <= port < 65536:
        raise argparse.ArgumentTypeError("HOST:PORT, got %r" % text)
    return host, port


def client(client_id, clean=True, login=None, tls=None, **kw):
    """A paho client with the head-end's broker login and TLS files, not yet
    connected (login: mqtt_user, mqtt_pass; tls: ca, cert, key)."""
    import paho.mqtt.client as mqtt
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                    clean_session=clean, **kw)
    if login:
        c.username_pw_set(login["mqtt_user"], login["mqtt_pass"])
    if tls and tls.get("ca"):
        # the broker's certificate must chain to this CA and name the host
        c.tls_set(ca_certs=tls["ca"], certfile=tls.get("cert"), keyfile=tls.get("key"))
    return c


def nodelay(c):
    """paho leaves Nagle on: a command sent while the last PUBACK is still
    unacknowledged at TCP level would wait for the broker's delayed ACK."""
    s = c.socket()
    if s is not None:        # None: the broker dropped it already (a TLS refusal)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
