# A file the meter trusts because its SHA-256 is pinned in the settings: the
# broker's CA (firmware/tls.py), the release key (firmware/ota.py). The file
# is public; the pin is what provisioning vouches for. A file that does not
# match its pin is not used.
#
# Also run by CPython (tools/deploy.py): nothing MicroPython-only at import.

import binascii
import hashlib


class PinnedFile:
    """The bytes in a file, replaced atomically (a cut leaves the old bytes
    or the new; the pin says which are meant)."""

    def __init__(self, path):
        self.path = path

    def read(self):
        try:
            with open(self.path, "rb") as f:
                return f.read()
        except OSError:
            return None

    def write(self, data):
        import os
        tmp = self.path + ".new"
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, self.path)


class InRam:
    """Kept only in RAM (a simulated meter without a flash image)."""

    def __init__(self):
        self.data = None

    def read(self):
        return self.data

    def write(self, data):
        self.data = bytes(data)


def pin(data):
    return binascii.hexlify(hashlib.sha256(data).digest()).decode()


def load(store, pinned, what):
    """The bytes, or OSError "<what> missing" / "<what> mismatch".
    store: a PinnedFile, an InRam, or a path."""
    if isinstance(store, str):
        store = PinnedFile(store)
    data = store.read() if store is not None else None
    if not data:
        raise OSError(what + " missing")
    if pin(data) != pinned:
        raise OSError(what + " mismatch")
    return data
