"""The head-end service as a user runs it (python -m headend, its own
process), a plain HTTP client with cookies, and Debian's headless Chromium
driven by Selenium."""

import html
import http.cookiejar
import json
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT

HEADEND = [sys.executable, "-m", "headend"]


def headend(db, *args, stdin=None):
    return subprocess.run(HEADEND + ["--db", str(db)] + [str(a) for a in args], cwd=ROOT,
                          input=stdin, capture_output=True, text=True, timeout=60)


class Service:
    def __init__(self, db, broker, users=(("op", "operator"), ("viewer", "viewer")),
                 log=None):
        self.db = db
        self.passwords = {}
        for name, role in users:
            pw = "pw-%s-123" % name
            r = headend(db, "adduser", name, "--role", role, stdin=pw + "\n")
            assert r.returncode == 0, r.stderr
            self.passwords[name] = pw
        self.log = open(log or Path(db).with_suffix(".log"), "w")     # the service's stderr
        self.proc = subprocess.Popen(HEADEND + ["--db", str(db), "--broker", broker,
                                                "--listen", "127.0.0.1:0"], cwd=ROOT,
                                     stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"listening=(\S+)", line)
        assert m, "the service did not start: %r" % line
        self.url = m.group(1).rstrip("/")

    def stop(self, kill=False):
        self.proc.kill() if kill else self.proc.terminate()
        self.proc.wait(10)
        self.log.close()


class Web:
    """An HTTP client with its own cookie jar (no redirects followed on POST)."""

    def __init__(self, base):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, path):
        return self._open(urllib.request.Request(self.base + path))

    def post(self, path, **form):
        data = urllib.parse.urlencode(form).encode()
        return self._open(urllib.request.Request(self.base + path, data=data))

    def _open(self, req):
        try:
            with self.opener.open(req, timeout=20) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def login(self, name, password):
        _, page = self.get("/login")
        return self.post("/login", name=name, password=password, csrf=csrf_of(page))

    def csrf(self, path="/"):
        return csrf_of(self.get(path)[1])

    def provision(self, mid, **form):
        """A meter provisioned in the web app: (status, page, its secrets or None)."""
        code, page = self.post("/provision", id=mid, csrf=self.csrf(), **form)
        m = re.search(r'<pre id="secrets">(.*?)</pre>', page, re.S)
        return code, page, json.loads(html.unescape(m.group(1))) if m else None


def csrf_of(page):
    m = re.search(r'name="csrf" value="([^"]+)"', page)
    assert m, "no CSRF field on the page"
    return m.group(1)


def browser():
    """Headless Chromium (Debian's chromium and chromium-driver, `make setup`)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as Driver
    exe = shutil.which("chromium") or "/usr/bin/chromium"
    drv = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not (Path(exe).exists() and Path(drv).exists()):
        pytest.fail("chromium and chromium-driver are not installed: `make setup` installs "
                    "them with apt")
    o = webdriver.ChromeOptions()
    o.binary_location = exe
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
              "--window-size=1280,1100", "--disable-gpu", "--hide-scrollbars"):
        o.add_argument(a)
    return webdriver.Chrome(service=Driver(drv), options=o)


def until(check, timeout=30, every=0.5):
    end = time.time() + timeout
    while True:
        got = check()
        if got or time.time() > end:
            return got
        time.sleep(every)
