# A tiny seeded generator (xorshift32). MicroPython has no random.Random, and the
# simulator needs several independent, reproducible streams (flash tearing, load
# noise) that do not disturb each other.


class Rng:
    def __init__(self, seed):
        self.s = (seed * 2654435761 + 1) & 0xFFFFFFFF or 1

    def next32(self):
        s = self.s
        s ^= (s << 13) & 0xFFFFFFFF
        s ^= s >> 17
        s ^= (s << 5) & 0xFFFFFFFF
        self.s = s
        return s

    def below(self, n):
        return self.next32() % n
