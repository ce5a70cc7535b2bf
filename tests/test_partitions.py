"""The partition table binary tools/partitions.py makes from
boards/partitions.csv, held to ESP-IDF's own generator and reader
(gen_esp32part as PyPI's esp-idf-defs ships it), which we did not write."""

import subprocess
import sys

from esp_idf_defs.partitions import PartitionTable

from conftest import ROOT

sys.path.insert(0, str(ROOT / "tools"))
import partitions  # noqa: E402

CSV = (ROOT / "boards" / "partitions.csv").read_text()


def test_the_table_is_what_esp_idf_makes_and_reads(tmp_path):
    out = tmp_path / "pt.bin"
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "partitions.py"), "-o", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    ours = out.read_bytes()
    assert ours == PartitionTable.from_csv(CSV).to_binary()      # byte for byte
    table = PartitionTable.from_binary(ours)                     # MD5 checked
    table.verify()
    parts = {p.name: p for p in table}
    meter = parts["meter"]
    # the raw partition the ledger, settings, event log and outbox share (104 KiB)
    assert (meter.type, meter.subtype, meter.offset, meter.size) == (1, 0x40, 0x200000, 0x1A000)
    assert parts["vfs"].offset == meter.offset + meter.size       # the filesystem follows
    assert max(p.offset + p.size for p in table) <= 4 * 1024 * 1024   # fits a 4 MB board
    assert parts["factory"].size >= 0x1F0000                     # MicroPython's own app size


def test_a_bad_table_is_refused_with_the_line():
    for bad, why in (("a_name_longer_than_16,data,nvs,0x9000,0x6000,", "line 1: name"),
                     ("nvs,data,nvs,nine,0x6000,", "offset 'nine'")):
        try:
            partitions.parse_csv(bad)
        except ValueError as e:
            assert why in str(e)
        else:
            raise AssertionError("accepted: " + bad)
