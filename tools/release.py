"""Firmware releases for `meterctl release` and `meterctl update` (docs/ota.md):
the board's modules compiled for a version, as one bundle, with a head that
the release key signs (RSA-3072, PKCS#1 v1.5, SHA-256: firmware/rsa.py
checks it on the meter)."""

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mp  # noqa: E402
from build_mpy import AS_SOURCE, LEAN, board_modules, build  # noqa: E402

CHUNK = 2048            # bytes per retained chunk (a meter holds one MQTT packet of 4 KiB)
CHUNK_HASH = 8          # bytes of each chunk's SHA-256 in the head (firmware/ota.py)
KEY_BITS = 3072


def _crypto():
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    return hashes, serialization, padding, rsa


def new_key(path):
    """A new release key (private, PEM, mode 0600) at path."""
    _, serialization, _, rsa = _crypto()
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return key


def load_key(path):
    _, serialization, _, rsa = _crypto()
    data = Path(path).read_bytes()
    try:
        key = serialization.load_pem_private_key(data, None)
    except (ValueError, TypeError):
        key = serialization.load_pem_public_key(data)
    pub = key.public_key() if hasattr(key, "public_key") else key
    if not isinstance(pub, rsa.RSAPublicKey) or pub.public_numbers().e != 65537 \
            or pub.key_size < 2048:
        raise ValueError("not an RSA release key (e = 65537, at least 2048 bits)")
    return key


def modulus(path):
    """The public modulus a meter is provisioned with (big-endian bytes)."""
    key = load_key(path)
    pub = key.public_key() if hasattr(key, "public_key") else key
    n = pub.public_numbers().n
    return n.to_bytes((n.bit_length() + 7) // 8, "big")


def modules(version):
    """(path on the board, bytes) of every module a release carries: what a
    board runs but main.py, compiled, with firmware/version.py saying version."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        build(tmp)
        src = tmp / "version.py"
        src.write_text('VERSION = "%s"\n' % version)
        r = subprocess.run([mp.mpy_cross(), *LEAN, "-s", "firmware/version.py", "-o",
                            str(tmp / "firmware" / "version.mpy"), str(src)],
                           capture_output=True, text=True)
        if r.returncode:
            raise SystemExit("mpy-cross failed on version.py:\n" + r.stderr)
        out = []
        for f in board_modules():
            rel = f.relative_to(mp.ROOT)
            if rel.name == "main.py":
                continue
            name = str(rel) if str(rel) in AS_SOURCE else str(rel.with_suffix(".mpy"))
            out.append((name, (tmp / name).read_bytes()))
        return out


def bundle(version, files):
    """The bundle: an index line, then the modules' bytes in its order."""
    index = {"v": version, "files": [[p, len(b), hashlib.sha256(b).hexdigest()]
                                     for p, b in files]}
    return json.dumps(index, separators=(",", ":")).encode() + b"\n" + \
        b"".join(b for _, b in files)


def head(version, data, key):
    hashes, _, padding, _ = _crypto()
    body = json.dumps({"v": version, "size": len(data), "chunk": CHUNK,
                       "sha256": hashlib.sha256(data).hexdigest(),
                       "hashes": [hashlib.sha256(data[i:i + CHUNK]).hexdigest()[:2 * CHUNK_HASH]
                                  for i in range(0, len(data), CHUNK)]},
                      separators=(",", ":")).encode()
    sig = key.sign(body, padding.PKCS1v15(), hashes.SHA256())
    return body + b"\n" + sig.hex().encode()


def make(version, key_path, out, files=None):
    """Build and sign a release into folder out (head, bundle); returns out."""
    key = load_key(key_path)
    if not hasattr(key, "sign"):
        raise ValueError("%s is a public key: signing needs the private one" % key_path)
    data = bundle(version, files if files is not None else modules(version))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bundle").write_bytes(data)
    (out / "head").write_bytes(head(version, data, key))
    return out


def chunks(out):
    data = (Path(out) / "bundle").read_bytes()
    return [data[i:i + CHUNK] for i in range(0, len(data), CHUNK)]
