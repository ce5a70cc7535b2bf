"""The head-end service end to end: a real Mosquitto, the service as its own
process, simulated meters, and a real headless Chromium logging in and
vending. Screenshots of the pages go to build/screenshots/ (or
$HEADEND_SCREENSHOTS: `make screenshots` puts them in docs/screenshots/)."""

import json
import os
import sqlite3
from pathlib import Path

import pytest

from conftest import ROOT
from headendkit import Service, Web, browser, until
from test_mqtt import start_sim

SHOTS = Path(os.environ.get("HEADEND_SCREENSHOTS") or ROOT / "build" / "screenshots")


@pytest.fixture
def service(broker, tmp_path):
    s = Service(tmp_path / "he.sqlite", broker.addr)
    yield s
    s.stop()


def text(d, css):
    from selenium.webdriver.common.by import By
    return d.find_element(By.CSS_SELECTOR, css).text


def fill(d, **fields):
    from selenium.webdriver.common.by import By
    for k, v in fields.items():
        e = d.find_element(By.ID, k)
        e.clear()
        e.send_keys(v)


def click(d, eid):
    """Submit with that button and wait for the next page to replace this one."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait
    page = d.find_element(By.TAG_NAME, "html")
    d.find_element(By.ID, eid).click()
    WebDriverWait(d, 10).until(ec.staleness_of(page))


def shot(d, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    d.save_screenshot(str(SHOTS / name))


def test_browser_vends_to_an_offline_meter_and_sees_it_applied_once(service, broker, tmp_path):
    d = browser()
    sim = None
    try:
        d.get(service.url + "/meters")
        assert "/login" in d.current_url              # nothing without a login
        shot(d, "login.png")
        fill(d, name="op", password="wrong-password")
        click(d, "login")
        assert "wrong user name or password" in text(d, "#error")
        fill(d, name="op", password=service.passwords["op"])
        click(d, "login")
        assert text(d, "h1").startswith("Meters")

        # a new meter, provisioned from the web app: its secrets file
        d.get(service.url + "/provision")
        fill(d, mid="flat-1", label="Flat 1, 12 Oak Street")
        click(d, "provision")
        secrets = tmp_path / "flat-1.secrets.json"
        secrets.write_text(text(d, "#secrets"))
        assert json.loads(secrets.read_text())["meter_id"] == "flat-1"

        # a vend while the meter has never been online: journalled, pending
        d.get(service.url + "/meters/flat-1")
        fill(d, amount="5.00")
        click(d, "vend")
        assert "is pending" in text(d, "#flash")
        assert text(d, "#vends tbody tr td:nth-child(3)") == "pending"

        # the meter comes online (1 kW): the service sends the pending vend, once
        sim = start_sim("--broker", broker.addr, "--secrets", secrets, "--flash",
                        tmp_path / "f1.img", "--credit", 1000, "--load", 1000, "--hours",
                        0.02, "--speed", 1, "--json", "--set", "telemetry_s=10")

        def credit():           # 1 kW at 20.00/kWh: 0.01 every 1.8 s
            return int(text(d, "#credit").replace(".", ""))

        def applied():
            d.get(service.url + "/meters/flat-1")
            return text(d, "#vends tbody tr td:nth-child(3)") == "applied" and \
                credit() > 1400
        assert until(applied, 40), d.find_element("id", "vends").text + text(d, "#credit")
        assert 1480 <= credit() <= 1500
        rows = d.find_elements("css selector", "#vends tbody tr")
        assert len(rows) == 1
        topups = [r.text for r in d.find_elements("css selector", "#events tbody tr")
                  if " topup " in r.text]
        assert len(topups) == 1 and "500" in topups[0], topups
        shot(d, "meter.png")
        d.get(service.url + "/")
        assert 14.80 <= float(text(d, "#meters tbody tr td:nth-child(3)")) <= 15.00
        shot(d, "meters.png")

        # the tenant page: no login, an unguessable link
        d.get(service.url + "/meters/flat-1")
        link = d.find_element("id", "tenant").get_attribute("href")
        assert len(link.rsplit("/", 1)[1]) >= 32
        d.delete_all_cookies()
        d.get(link)
        assert 14.80 <= float(text(d, "#balance")) <= 15.00
        assert "5.00" in text(d, "#topups")
        shot(d, "tenant.png")
        d.get(link[:-4] + "abcd")
        assert "No such meter page" in d.page_source

        # a viewer sees the meter and cannot vend
        d.get(service.url + "/login")
        fill(d, name="viewer", password=service.passwords["viewer"])
        click(d, "login")
        d.get(service.url + "/meters/flat-1")
        assert not d.find_elements("id", "vend-form")
    finally:
        d.quit()
        if sim is not None:
            sim.terminate()
            sim.wait(10)

    # the same refusals without a browser: nothing changes
    viewer = Web(service.url)
    assert viewer.login("viewer", service.passwords["viewer"])[0] == 200
    code, body = viewer.post("/meters/flat-1/vend", amount="7", csrf=viewer.csrf())
    assert code == 403 and "role (viewer)" in body
    assert viewer.get("/provision")[0] == 403
    op = Web(service.url)
    assert op.login("op", service.passwords["op"])[0] == 200
    code, body = op.post("/meters/flat-1/vend", amount="7")
    assert code == 403 and "CSRF token missing or wrong" in body
    code, body = op.post("/meters/flat-1/vend", amount="7", csrf="forged")
    assert code == 403
    stranger = Web(service.url)
    code, _ = stranger.post("/meters/flat-1/vend", amount="7", csrf="x")
    assert code == 401
    db = sqlite3.connect(service.db)
    assert db.execute("SELECT amount, status FROM vends").fetchall() == [(500, "applied")]
