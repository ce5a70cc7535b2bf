# What the MQTT sync does for a firmware update (firmware/ota.py): keep the
# subscription on the chunk wanted, step the unpacking, and on a trial boot
# confirm the release or give it up. Loaded only by a meter that has been
# updated or is being updated: the sync keeps one reference to it.

from firmware import mqttlink, ota
from firmware.mqttlink import describe
from firmware.pinned import load

PROVE_MS = 20000          # a release on trial runs this long, online, before it is kept


class OtaSync:
    def __init__(self, sync):
        self.sync = sync
        self.update = None        # an ota.Update on its way in
        self.sub = None           # its (topic, tries) subscribed to now
        self.reboot = False       # a release is staged, or a trial missed its deadline
        self.trial = ota.after_boot(self.event)
        if ota.exists(ota.STAGE + "/version"):
            try:
                self.updater()        # the fetch goes on where the flash says it was
            except OSError as e:
                self.event(describe(e))

    def event(self, detail):
        self.sync.app.emit({"event": "ota", "detail": detail}, self.sync.now_ms)

    def updater(self):
        if self.update is None:
            app = self.sync.app
            key = load(app.hal.release_key, app.settings.get("release_key"), "release key")
            self.update = ota.Update(app, key, self.event)
        return self.update

    def busy(self):
        u = self.update
        return u is not None and u.version != "" and u.state is None

    def progress(self):
        return self.update.progress() if self.update is not None else "none"

    def take(self, topic, msg):
        if self.update is not None:
            self.update.take(topic.decode(), msg)   # a chunk is on flash before its PUBACK

    def poll(self, now_ms):
        s = self.sync
        u = self.update
        if u is not None:
            if u.step():
                self.reboot = True
            elif s.online and s.link is not None:
                want = u.wanted()
                if want != self.sub:
                    if self.sub is not None and self.sub[0]:
                        s.link.write(mqttlink.unsubscribe(self.sub[0], s.next_pid()))
                    if want[0]:
                        s.link.write(mqttlink.subscribe(want[0], s.next_pid()))
                    self.sub = want
        if self.trial:
            # proved: it has run PROVE_MS, metering, and the broker took its messages
            up = now_ms - s.app.boot_ms
            if s.online and s.delivery.acked_any and up >= PROVE_MS:
                ota.confirm(self.event)
                self.trial = False
            elif up > s.app.settings.get("ota_deadline_s") * 1000:
                ota.give_up(self.event)
                self.trial = False
                self.reboot = True
