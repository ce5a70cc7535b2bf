# Run by tests/test_console.py::test_a_command_that_runs_out_of_memory_is_an_error_reply
# A real MemoryError (the heap locked while a command runs) gives the reply,
# not an exception out of the command layer; the meter goes on.

import json

import micropython

from firmware.cmdbase import Session
from firmware.commands import Commands
from world import world

sim, out = world()
cmds = Commands(sim.app)
ses = Session()
words = ["status"]
r = caught = None            # globals made now: a new one needs room in the dict
micropython.heap_lock()
try:
    r = cmds.run(ses, words, 0)
    caught = True
except MemoryError:
    caught = False
micropython.heap_unlock()
res = {"caught": caught, "error": r.error if caught else None}
after = cmds.run(ses, ["credit"], 0)
res["after"] = [after.error, after.lines]
print(json.dumps(res))
