# Energy-IC pulse counting on an ESP32.
#
# PcntPulses: the PCNT hardware through machine.Counter (MicroPython >= 1.26 on
# the ESP32 and S3), which extends the 16-bit hardware count in software on
# overflow; no pulse is missed however busy the loop is. machine.Counter
# exists only where the chip has PCNT, so it is imported when used: on an
# ESP32-C3 `from machine import Counter` raises AttributeError.
# IrqPulses: a Pin.irq counter for chips without PCNT (ESP32-C3). Each pulse
# costs an interrupt; pulses closer together than the interrupt latency (tens
# of microseconds, far more while flash is being written) are lost, so it is
# only for energy ICs that pulse below ~100 Hz: the CF output of a BL0937/HLW8012
# at 1600 imp/kWh pulses at 4.4 Hz at 10 kW.

from machine import Pin


class PcntPulses:
    def __init__(self, pin, unit=0, filter_ns=1000):
        from machine import Counter
        self.counter = Counter(unit, Pin(pin, Pin.IN), edge=Counter.RISING,
                               direction=Counter.UP, filter_ns=filter_ns)

    def count(self):
        return self.counter.value()


class IrqPulses:
    def __init__(self, pin):
        self.n = 0
        self.pin = Pin(pin, Pin.IN)
        self.pin.irq(trigger=Pin.IRQ_RISING, handler=self._pulse)

    def _pulse(self, pin):
        self.n += 1   # a small int: no allocation in the handler

    def count(self):
        return self.n
