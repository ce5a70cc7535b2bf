"""python -m headend: the vending head-end service (docs/headend.md).

    python -m headend [--db URL] [--broker HOST:PORT] [--listen HOST:PORT]   the service
    python -m headend [--db URL] adduser NAME --role operator|viewer        (password on stdin)
    python -m headend [--db URL] migrate                                     schema only
    python -m headend [--db URL] import-registry build/headend.json        meterctl's meters

--db is an SQLite file (default build/headend.sqlite) or a postgresql:// URL."""

import argparse
import os
import secrets
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from headend import auth  # noqa: E402
from headend.broker import host_port  # noqa: E402
from headend.db import Db, DbError  # noqa: E402

DEFAULT_DB = ROOT / "build" / "headend.sqlite"


def serve(a, db):
    from werkzeug.serving import make_server
    from headend.service import Service
    from headend.web import create_app
    users = auth.Users(db)
    if users.count() == 0:
        # a first login to start with, printed once, like the sim's PIN
        password = secrets.token_urlsafe(9)
        users.add("admin", password, "operator")
        print("first_user=admin password=%s (role operator)" % password, flush=True)
    login = None
    if a.mqtt_user:
        login = {"mqtt_user": a.mqtt_user, "mqtt_pass": os.environ.get("HEADEND_MQTT_PASS", "")}
    tls = {"ca": a.ca, "cert": a.cert, "key": a.key} if a.ca else None
    svc = Service(db, a.broker, login, tls).start()
    server = make_server(a.listen[0], a.listen[1], create_app(svc, secure_cookies=a.https),
                         threaded=True)
    print("listening=http://%s:%d/ broker=%s:%d db=%s"
          % (a.listen[0], server.server_port, a.broker[0], a.broker[1], db.url), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        svc.stop()
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m headend", description=__doc__.splitlines()[0])
    p.add_argument("--db", default=os.environ.get("HEADEND_DB", str(DEFAULT_DB)),
                   help="SQLite file or postgresql://... (default $HEADEND_DB, else %s)"
                   % DEFAULT_DB.relative_to(ROOT))
    p.add_argument("--broker", type=host_port, default=("127.0.0.1", 1883),
                       metavar="HOST:PORT")
    p.add_argument("--listen", type=lambda t: host_port(t, free_port=True), default=("127.0.0.1", 8080),
                       metavar="HOST:PORT", help="the web app (default 127.0.0.1:8080; "
                       "port 0: any free one)")
    p.add_argument("--mqtt-user", help="the broker login (password: $HEADEND_MQTT_PASS)")
    p.add_argument("--ca", help="MQTT over TLS: the broker's CA (PEM)")
    p.add_argument("--cert", help="client certificate (PEM), with --key")
    p.add_argument("--key", help="its private key")
    p.add_argument("--https", action="store_true",
                       help="cookies only over HTTPS (behind a TLS reverse proxy)")
    sub = p.add_subparsers(dest="what")
    u = sub.add_parser("adduser", help="add (or reset) a web login; password on stdin")
    u.add_argument("name")
    u.add_argument("--role", choices=auth.ROLES, required=True)
    sub.add_parser("migrate", help="bring the database schema up to date")
    im = sub.add_parser("import-registry", help="take over the meters of a meterctl "
                        "registry (JSON) not in the database yet")
    im.add_argument("file")
    a = p.parse_args(argv)
    try:
        db = Db(a.db)
        version = db.migrate()
    except DbError as e:
        p.exit(1, "headend: %s\n" % e)
    if a.what == "migrate":
        print("schema=%d db=%s" % (version, db.url))
        return 0
    if a.what == "import-registry":
        from headend.store import Store
        try:
            added = Store(db).import_registry(a.file)
        except (OSError, ValueError, KeyError) as e:
            p.exit(1, "headend: %s: %s\n" % (a.file, e))
        print("imported=%s" % (",".join(added) or "none"))
        return 0
    if a.what == "adduser":
        password = sys.stdin.readline().rstrip("\n")
        try:
            auth.Users(db).add(a.name, password, a.role)
        except auth.AuthError as e:
            p.exit(2, "headend: %s\n" % e)
        print("user=%s role=%s" % (a.name, a.role))
        return 0
    return serve(a, db)


if __name__ == "__main__":
    sys.exit(main())
