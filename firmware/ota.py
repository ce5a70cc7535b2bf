# Firmware updates over the meter's MQTT session (docs/ota.md).
#
# A release is a bundle (an index line, then the modules) published retained
# by the head-end as chunks on releases/<version>/<n>, and a head on
# releases/<version>/head: version, bundle size and SHA-256, chunk size, a
# short hash per chunk, and an RSA-3072 signature by the release key
# (firmware/rsa.py), whose public half is pinned in the settings
# (`release_key`). The meter takes one chunk at a time (subscribe, the
# retained message, next), appends it to ota/bundle and flushes before the
# PUBACK: a power cut or a broker restart costs at most the chunk in flight.
# Complete and whole, the bundle is unpacked a module per loop turn into
# v/<version>.new, each module checked against its hash, renamed to
# v/<version>, and ota.json names it the trial: main.py boots it on the next
# boot and counts its boots; the new firmware confirms itself once it has
# run, metered and reached the head-end, or main.py and the deadline here go
# back to the confirmed version. The ledger and settings are not touched.

import binascii
import hashlib
import json
import os
import time

from firmware import rsa
from firmware.pinned import pin as sha256_hex      # the SHA-256 in hex
from firmware.version import VERSION

STATE = "ota.json"       # read by main.py too: keep the names
STAGE = "ota"
VERSIONS = "v"
CHUNK_HASH = 8           # bytes of SHA-256 per chunk in the head (the bundle's is whole)
DONE, FAILED = "done", "failed"
UNPACK_MS = 40           # of a loop turn, at most, spent unpacking modules


def version_tuple(v):
    """(1, 2, 0) for "1.2.0"; ValueError for anything else."""
    parts = v.split(".")
    if not 1 <= len(parts) <= 4 or not all(p.isdigit() and len(p) < 6 for p in parts):
        raise ValueError("version must be like 1.2.0")
    return tuple(int(p) for p in parts)


def read_state():
    try:
        with open(STATE) as f:
            st = json.load(f)
        return st if isinstance(st, dict) else {}
    except (OSError, ValueError):
        return {}


def write_state(st):
    with open(STATE + ".new", "w") as f:
        json.dump(st, f)
    os.rename(STATE + ".new", STATE)


def exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def remove(path):
    """A file or a folder and everything in it; nothing if absent."""
    try:
        mode = os.stat(path)[0]
    except OSError:
        return
    if mode & 0x4000:
        for name in os.listdir(path):
            remove(path + "/" + name)
        os.rmdir(path)
    else:
        os.remove(path)


def makedirs(path):
    p = ""
    for part in path.split("/"):
        p = part if not p else p + "/" + part
        if not exists(p):
            os.mkdir(p)


class Update:
    """One release on its way in; survives reboots through ota/."""

    def __init__(self, app, key, emit):
        """key: the release key's modulus (bytes); emit(detail): an `ota` event."""
        self.app = app
        self.key = key
        self.emit = emit
        self.version = ""        # the release on its way ("": none)
        self.head = {}           # its verified head ({}: not yet)
        self.have = 0            # bundle bytes on flash
        self.files = None        # the index, once the bundle is whole
        self.unpacked = 0        # modules unpacked so far
        self.pos = 0             # where the next one starts in the bundle
        self.tries = 0           # copies of the chunk wanted that were refused
        self.state = None        # None: fetching; DONE: trial set, reboot; FAILED
        self._resume()

    # -- what the sync asks --------------------------------------------------

    def topic(self):
        """The topic to be subscribed to now, or None."""
        if not self.version or self.state is not None or self.files is not None:
            return None
        if not self.head:
            return "releases/%s/head" % self.version
        return "releases/%s/%d" % (self.version, self.have // self.head["chunk"])

    def wanted(self):
        """(topic, tries): a new value asks the sync to subscribe again (a
        retained message comes again only to a new subscription)."""
        return (self.topic(), self.tries)

    def progress(self):
        if not self.version:
            return "none"
        if self.state is not None:
            return "%s %s" % (self.state, self.version)
        if not self.head:
            return "head %s" % self.version
        n = (self.head["size"] + self.head["chunk"] - 1) // self.head["chunk"]
        return "%s %d/%d" % (self.version, self.have // self.head["chunk"], n)

    # -- starting ------------------------------------------------------------

    def start(self, version):
        """The head-end offers a version: refused (ValueError) unless newer
        than the one running; the same version again resumes."""
        if version_tuple(version) <= version_tuple(VERSION):
            self.emit("older " + version)
            raise ValueError("version %s is not newer than %s" % (version, VERSION))
        if version == self.version and self.state != FAILED:
            return
        remove(STAGE)
        os.mkdir(STAGE)
        with open(STAGE + "/version", "w") as f:
            f.write(version)
        self.version, self.head, self.have, self.files, self.state = version, {}, 0, None, None
        self.emit("start " + version)

    def _resume(self):
        """After a reboot: the download where the flash says it was."""
        try:
            with open(STAGE + "/version") as f:
                v = f.read()
            st = read_state()
            if v in (VERSION, st.get("trial"), st.get("current")):
                remove(STAGE)     # installed already: a cut came before the tidy-up
                return
        except OSError:
            return
        self.version = v
        try:
            with open(STAGE + "/head", "rb") as f:
                self._check_head(v, f.read())
        except (OSError, ValueError):
            return                # the head is asked for again
        chunk, total = self.head["chunk"], self.head["size"]
        try:
            size = os.stat(STAGE + "/bundle")[6]
        except OSError:
            size = 0
        # a cut may leave part of a chunk, or a torn one: keep whole, checked chunks
        keep = min(size, total)
        if keep < total:
            keep -= keep % chunk
        if keep:
            n = (keep - 1) // chunk
            with open(STAGE + "/bundle", "rb") as f:
                f.seek(n * chunk)
                if not self._chunk_ok(n, f.read(keep - n * chunk)):
                    keep = n * chunk
        if keep != size:
            self._truncate(keep)
        self.have = keep
        if keep == total:
            self._whole()

    def _truncate(self, n):
        """The bundle's first n bytes, copied a KiB at a time (never the
        whole bundle in RAM) and renamed over it."""
        src, dst = STAGE + "/bundle", STAGE + "/bundle.new"
        with open(src, "rb") as f, open(dst, "wb") as g:
            while n > 0:
                b = f.read(min(n, 1024))
                if not b:
                    break
                g.write(b)
                n -= len(b)
        os.rename(dst, src)

    # -- messages ------------------------------------------------------------

    def take(self, topic, payload):
        """A message on releases/...: the head or the chunk asked for."""
        want = self.topic()
        if want is None or topic != want:
            return                      # a late copy of an earlier one
        if not self.head:
            try:
                self._check_head(self.version, payload)
            except ValueError as e:
                self.state = FAILED
                self.emit(str(e))
                return
            with open(STAGE + "/head", "wb") as f:
                f.write(payload)
            return
        n = self.have // self.head["chunk"]
        if not self._chunk_ok(n, payload):
            self.emit("bad chunk %d" % n)
            self.tries += 1                    # asked for again, twice at most
            if self.tries > 2:
                self.state = FAILED
            return
        with open(STAGE + "/bundle", "ab") as f:
            f.write(payload)
        self.have += len(payload)
        self.tries = 0
        if self.have == self.head["size"]:
            self._whole()

    def _check_head(self, version, payload):
        """The head, verified: signed by the release key, for this version."""
        i = payload.rfind(b"\n")
        if i < 0:
            raise ValueError("unsigned")
        body, sig = payload[:i], payload[i + 1:]
        try:
            sig = bytes.fromhex(sig.decode())
        except (ValueError, UnicodeError):
            raise ValueError("unsigned")
        if not rsa.verify(self.key, body, sig):
            raise ValueError("bad signature")
        h = json.loads(body)
        if h.get("v") != version:
            raise ValueError("wrong version")
        if not (isinstance(h.get("size"), int) and isinstance(h.get("chunk"), int)
                and 256 <= h["chunk"] <= 2048 and 0 < h["size"]
                and len(h.get("hashes", ())) == (h["size"] + h["chunk"] - 1) // h["chunk"]):
            raise ValueError("bad head")
        self.head = h

    def _chunk_ok(self, n, data):
        h = self.head
        want = min(h["chunk"], h["size"] - n * h["chunk"])
        return len(data) == want and \
            sha256_hex(data)[:2 * CHUNK_HASH] == h["hashes"][n]

    def _whole(self):
        """The bundle is all here: its hash, then its index."""
        d = hashlib.sha256()
        with open(STAGE + "/bundle", "rb") as f:
            while True:
                b = f.read(1024)
                if not b:
                    break
                d.update(b)
            f.seek(0)
            index = f.readline()
        if binascii.hexlify(d.digest()).decode() != self.head["sha256"]:
            self.state = FAILED
            remove(STAGE + "/bundle")
            self.have = 0
            self.emit("bad bundle")
            return
        self.files = json.loads(index)["files"]
        self.pos = len(index)
        self.unpacked = 0
        remove(self._dir() + ".new")

    def _dir(self):
        return VERSIONS + "/" + self.version

    # -- installing, a module per call -----------------------------------------

    def step(self):
        """Unpack modules into v/<version>.new for UNPACK_MS at most, each
        checked; after the last, v/<version> is the trial. True once there
        is a reboot to do."""
        t = time.ticks_ms()
        while not self._unpack():
            if self.state is not None or time.ticks_diff(time.ticks_ms(), t) > UNPACK_MS:
                break
        return self.state == DONE

    def _unpack(self):
        """One module; True when nothing is left to do."""
        if self.files is None or self.state is not None:
            return True
        new = self._dir() + ".new"
        if self.unpacked == 0:
            remove(self._dir())
            makedirs(new)
        if self.unpacked < len(self.files):
            path, size, digest = self.files[self.unpacked]
            with open(STAGE + "/bundle", "rb") as f:
                f.seek(self.pos)
                data = f.read(size)
            self.pos += size
            if len(data) != size or sha256_hex(data) != digest or ".." in path:
                self.state = FAILED
                self.emit("bad module")
                return False
            if "/" in path:
                makedirs(new + "/" + path.rsplit("/", 1)[0])
            with open(new + "/" + path, "wb") as f:
                f.write(data)
            self.unpacked += 1
            return False
        with open(new + "/index.json", "w") as f:
            json.dump({"v": self.version, "files": self.files}, f)
        os.rename(new, self._dir())
        st = read_state()
        st.update(trial=self.version, boots=0)
        write_state(st)
        remove(STAGE)
        self.state = DONE
        self.emit("staged " + self.version)
        return True


def after_boot(emit):
    """At boot: say what main.py did (a rollback), and whether this boot is
    a trial that has to prove itself."""
    st = read_state()
    if st.get("failed"):
        emit("rollback " + st["failed"])
        st["failed"] = None
        write_state(st)
    return st.get("trial") == VERSION


def confirm(emit):
    """This version proved itself: it is the current one now."""
    st = read_state()
    if st.get("trial") != VERSION:
        return
    old = st.get("current")
    st.update(previous=old, current=VERSION, trial=None, boots=0)
    write_state(st)
    for name in (os.listdir(VERSIONS) if exists(VERSIONS) else ()):
        if name not in (VERSION, old):
            remove(VERSIONS + "/" + name)        # older than both: no way back there
    emit("confirmed " + VERSION)


def give_up(emit):
    """The trial missed its deadline: back to the confirmed version at reboot."""
    st = read_state()
    if st.get("trial") == VERSION:
        st.update(trial=None, failed=None, boots=0)
        write_state(st)
        emit("deadline " + VERSION)
