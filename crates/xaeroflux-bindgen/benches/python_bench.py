"""The Python side of `cargo bench -p xaeroflux-bindgen --bench python`:
the same work as the Rust side, through the binding. Prints one line of
JSON with events per second for each part."""

import json
import sys
import threading
import time

import xaeroflux as xf

path, n, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
core = xf.Core.open(path)
payloads = [i.to_bytes(8, "little") + bytes(92) for i in range(n)]

t = time.perf_counter()
for i in range(0, n, batch):
    core.append_batch("bench", payloads[i : i + batch])
append = n / (time.perf_counter() - t)

t = time.perf_counter()
events = core.read_topic("bench", 0, n)
total = sum(len(e.payload) for e in events)
read = n / (time.perf_counter() - t)
assert len(events) == n and total == 100 * n, (len(events), total)


class Counter(xf.EventListener):
    def __init__(self):
        self.n = 0
        self.done = threading.Event()

    def on_events(self, events):
        self.n += len(events)
        if self.n >= n:
            self.done.set()


counter = Counter()
t = time.perf_counter()
sub = core.subscribe("bench", 0, counter)
assert counter.done.wait(120), counter.n
deliver = n / (time.perf_counter() - t)
sub.close()
core.close()
print(json.dumps({"append_batch": append, "read_topic": read, "listener": deliver}))
