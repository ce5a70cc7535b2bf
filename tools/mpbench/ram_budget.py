# MicroPython: heap taken by the firmware modules (loaded from .mpy) and by a
# running meter after boot and an hour of metering. Run from a build folder
# (tools/build_mpy.py OUT; cd OUT; MICROPYPATH=.frozen: micropython ram_budget.py).
# The sim flash here is RAM-backed (a 104 KiB bytearray), which is subtracted.
import gc
gc.collect()
base = gc.mem_alloc()
import firmware.app, firmware.commands, firmware.console, firmware.sync, firmware.outbox, firmware.token  # noqa: F401,E501  (measured)
gc.collect()
code = gc.mem_alloc() - base
from hal.sim.run import Output, Sim
class Q(Output):
    def event(self, *a, **k): pass
    def status(self, *a, **k): pass
gc.collect()
before_sim = gc.mem_alloc()
sim = Sim({"report_ms": 0, "load": 1000}, Q(False, False))
sim.boot()
from firmware.commands import Commands
from firmware.console import Console
con = Console(Commands(sim.app), lambda s: None, 0)
sim.advance(3600000)
gc.collect()
print("firmware modules (bytecode+objects):", code, "bytes")
flash = len(sim.hal.chip.data)
print("meter objects after boot and an hour, without the RAM flash:",
      gc.mem_alloc() - before_sim - flash, "bytes")
print("total allocated:", gc.mem_alloc())
