"""From a stock MicroPython image to a provisioned meter with one command:
`tools/deploy.py --install`. No ESP32 runs here: the board is a unix-port REPL
whose esp32.Partition reads a whole-chip image file as the port does (the table
at 0x8000), and esptool is tests/esptoolfake.py on that same file; the real
esptool's parser is held to the command lines install uses."""

import subprocess
import sys

import pytest
from esp_idf_defs.partitions import PartitionTable

from certs import make
from conftest import ROOT
from replbridge import ReplBridge, esp32_board
import install_table
import mp
import partitions

CHIP_SIZE = 4 * 1024 * 1024
# MicroPython's own table for 4 MB boards (ports/esp32/partitions-4MiBplus.csv);
# the port puts the filesystem after its last entry, at 0x200000
STOCK_CSV = """nvs, data, nvs, 0x9000, 0x6000,
phy_init, data, phy, 0xf000, 0x1000,
factory, app, factory, 0x10000, 0x1F0000,
"""
OLD_FS = bytes(range(256)) * 16       # a block of the stock filesystem's bytes
FAKE = "%s %s" % (sys.executable, ROOT / "tests" / "esptoolfake.py")


def stock_chip(path, table=None):
    img = bytearray(b"\xff" * CHIP_SIZE)
    img[0x8000:0x8000 + 0xC00] = table or PartitionTable.from_csv(STOCK_CSV).to_binary()
    for at in range(0x200000, CHIP_SIZE, 4096):
        img[at:at + 4096] = OLD_FS
    path.write_bytes(bytes(img))
    return path


@pytest.fixture
def fake_esptool(tmp_path, monkeypatch):
    chip = stock_chip(tmp_path / "chip.img")
    monkeypatch.setenv("FAKE_ESPTOOL_CHIP", str(chip))
    monkeypatch.setenv("FAKE_ESPTOOL_LOG", str(tmp_path / "esptool.log"))
    return chip


def esptool_log(tmp_path):
    return (tmp_path / "esptool.log").read_text().splitlines()


def test_install_on_a_stock_image_gives_a_provisioned_meter(tmp_path, fake_esptool):
    chip = fake_esptool
    reg, sec = tmp_path / "headend.json", tmp_path / "m1.json"
    ca = make(tmp_path)["ca"][0]          # the broker's CA: the meter is set for TLS
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "meterctl.py"), "--registry",
                        str(reg), "--ca", str(ca), "provision", "--id", "m1", "--out", str(sec),
                        "--pin", "2468"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    dev = tmp_path / "device"
    dev.mkdir()
    env = esp32_board(tmp_path, chip)
    bridge = ReplBridge(dev, env)
    try:
        r = subprocess.run([sys.executable, str(ROOT / "tools" / "deploy.py"), "--port",
                            "socket://127.0.0.1:%d" % bridge.port, "--board",
                            "esp32_devkit_bl0937", "--install", "--esptool", FAKE,
                            "--secrets", str(sec), "--wifi-ssid", "flat", "--resume",
                            "--no-reset"], capture_output=True, text=True, timeout=300)
    finally:
        bridge.close()
    assert r.returncode == 0, r.stdout + r.stderr
    # read the old table, erase the new meter partition and the head of vfs, then the table
    assert esptool_log(tmp_path) == [
        "esp32 read-flash 0x8000 0xc00 " + esptool_log(tmp_path)[0].split()[-1],
        "esp32 erase-region 0x200000 0x1c000",
        "esp32 write-flash 0x8000 " + esptool_log(tmp_path)[2].split()[-1]]
    assert "board sees: meter 104 KiB" in r.stdout and "secrets written" in r.stdout
    img = chip.read_bytes()
    table = partitions.to_binary(install_table.table_rows())
    assert img[0x8000:0x8C00] == table == PartitionTable.from_csv(
        (ROOT / "boards" / "partitions.csv").read_text()).to_binary()
    ledger = img[0x200000:0x210000]
    assert ledger == b"\xff" * len(ledger)                   # a new meter's ledger is blank
    assert img[0x210000:0x212000] != b"\xff" * 0x2000         # the settings hold the secrets
    assert img[0x21A000:0x21C000] == b"\xff" * 0x2000          # MicroPython formats vfs
    assert img[0x21C000:0x21D000] == OLD_FS                    # nothing else erased
    # the board's firmware reads the provisioned settings from the new partition
    p = subprocess.run([mp.micropython(),
                        "-c", "import boards.esp32_devkit_bl0937 as B\n"
                        "from firmware.settings import Settings\n"
                        "s = Settings(B.settings_flash(), {})\n"
                        "print(s.get('meter_id'), s.get('pin_hash') is not None)\n"
                        "from firmware import tls\n"      # the CA beside main.py, as pinned
                        "print(s.get('mqtt_tls'), tls.context('mqtt_ca.der', s.get('mqtt_ca')))"],
                       cwd=dev, env=env, capture_output=True, text=True, timeout=60)
    assert p.stdout.split()[:4] == ["m1", "True", "1", "<SSLContext"], p.stdout + p.stderr


def test_install_again_keeps_the_ledger(tmp_path, fake_esptool):
    chip = fake_esptool
    img = bytearray(chip.read_bytes())
    img[0x8000:0x8C00] = partitions.to_binary(install_table.table_rows())
    img[0x200000:0x200010] = b"a ledger record."
    chip.write_bytes(bytes(img))
    out = []
    assert install_table.install("socket://x", "esp32", FAKE, log=out.append) is False
    assert "already the meter's" in out[-1]
    assert chip.read_bytes() == bytes(img)                     # nothing erased or written
    assert [x.split()[1] for x in esptool_log(tmp_path)] == ["read-flash"]


def test_a_different_meter_partition_is_refused_unless_wiped(tmp_path, fake_esptool):
    chip = fake_esptool
    other = STOCK_CSV + "meter, data, 0x40, 0x200000, 0x10000,\nvfs, data, fat, 0x210000, 0x1F0000,\n"
    stock_chip(chip, PartitionTable.from_csv(other).to_binary())
    before = chip.read_bytes()
    with pytest.raises(SystemExit, match="different `meter` partition.*--wipe-ledger"):
        install_table.install("socket://x", "esp32", FAKE, log=lambda s: None)
    assert chip.read_bytes() == before
    assert install_table.install("socket://x", "esp32", FAKE, wipe=True, log=lambda s: None)
    assert chip.read_bytes()[0x8000:0x8C00] == partitions.to_binary(install_table.table_rows())


def test_the_real_esptool_takes_the_command_lines_install_runs(tmp_path):
    """Each step through esptool 5's own parser: it gets as far as opening the
    (absent) port, so the command and its arguments were accepted."""
    steps = [install_table.read_step(tmp_path / "old.bin")] + install_table.write_steps(
        install_table.table_rows(), tmp_path / "pt.bin")
    assert [s[0] for s in steps] == ["read-flash", "erase-region", "write-flash"]
    (tmp_path / "pt.bin").write_bytes(b"\xff" * 0xC00)
    for step in steps:
        r = subprocess.run(install_table.esptool_cmd("") + ["--chip", "esp32", "--port",
                           str(tmp_path / "no-such-port")] + step, capture_output=True,
                           text=True, timeout=60)
        assert "Could not open" in r.stdout + r.stderr, (step, r.stdout + r.stderr)


def test_install_is_refused_for_the_simulator():
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "deploy.py"), "--port", "x",
                        "--board", "sim", "--install"], capture_output=True, text=True)
    assert r.returncode == 2 and "--install is for ESP32 boards" in r.stderr


def test_a_deploy_to_a_board_without_the_table_says_to_install(tmp_path, fake_esptool):
    env = esp32_board(tmp_path, fake_esptool)

    def on_board(code):
        r = subprocess.run([mp.micropython(), "-c", code], env=env, capture_output=True,
                           text=True, timeout=60)
        return r.stdout + r.stderr

    with pytest.raises(SystemExit, match="no `meter` partition.*--install"):
        install_table.check(on_board, log=lambda s: None)
    install_table.install("socket://x", "esp32", FAKE, log=lambda s: None)
    seen = []
    install_table.check(on_board, log=seen.append)
    assert seen and seen[0].startswith("board sees: meter 104 KiB, vfs 1944 KiB")
