"""The Python binding as an application uses it: run by tests/python.rs
(cargo test), or by hand after scripts/bindings.sh python:

    PYTHONPATH=target/bindings/python python3 -m unittest discover -s crates/xaeroflux-bindgen/tests/python -v
"""

import queue
import shutil
import tempfile
import threading
import time
import unittest

import xaeroflux as xf

WAIT = 60.0


def wait_until(what, cond, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Collector(xf.EventListener):
    """A listener that keeps every batch and the thread it came on."""

    def __init__(self):
        self.events = []
        self.batches = 0
        self.threads = set()
        self.lock = threading.Lock()

    def on_events(self, events):
        with self.lock:
            self.events.extend(events)
            self.batches += 1
            self.threads.add(threading.get_ident())

    def count(self):
        with self.lock:
            return len(self.events)


class Store(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="xf-py-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_append_read_prove_verify(self):
        core = xf.Core.open(self.dir)
        r = core.append("chat", b"hello")
        self.assertEqual((r.seq, r.size), (0, 1))
        self.assertEqual(len(r.leaf_hash), 32)
        self.assertEqual(r.root, r.leaf_hash)  # a one-leaf tree
        batch = core.append_batch("chat", [b"a", b"b", b"c"])
        self.assertEqual([b.seq for b in batch], [1, 2, 3])
        self.assertTrue(all(b.size == 4 for b in batch))
        events = core.read_topic("chat", 0, 100)
        self.assertEqual([e.payload for e in events], [b"hello", b"a", b"b", b"c"])
        self.assertEqual([e.seq for e in events], [0, 1, 2, 3])
        self.assertEqual(events[0].kind, xf.EventKind.APPLICATION)
        self.assertEqual(events[0].author, core.author())
        self.assertFalse(events[0].encrypted)
        self.assertGreater(events[0].timestamp_ms, 1_600_000_000_000)
        self.assertEqual([e.payload for e in core.read_topic("chat", 2, 1)], [b"b"])

        log = r.log
        self.assertEqual(log, core.own_log("chat"))
        proof = core.prove_inclusion(log, 1, 4)
        self.assertEqual((proof.index, proof.size), (1, 4))
        self.assertEqual(proof.leaf_hash, batch[0].leaf_hash)
        self.assertEqual(proof.root, batch[-1].root)
        self.assertTrue(
            xf.verify_inclusion(proof.leaf_hash, proof.index, proof.size, proof.path, proof.root)
        )
        bad = bytes(32)
        with self.assertRaises(xf.XaerofluxError.Verification):
            xf.verify_inclusion(bad, proof.index, proof.size, proof.path, proof.root)
        c = core.prove_consistency(log, 1, 4)
        self.assertEqual(c.old_root, r.root)
        self.assertTrue(xf.verify_consistency(1, 4, c.old_root, c.new_root, c.path))
        with self.assertRaises(xf.XaerofluxError.Verification):
            xf.verify_consistency(1, 4, bad, c.new_root, c.path)
        # The names the interface promises, as keywords.
        c2 = core.prove_consistency(log=log, old=1, new=4)
        self.assertEqual(c2.path, c.path)
        self.assertTrue(
            xf.verify_consistency(
                old_size=1, new_size=4, old_root=c2.old_root, new_root=c2.new_root, proof=c2.path
            )
        )
        p2 = core.prove_inclusion(log=log, seq=1, size=4)
        self.assertTrue(
            xf.verify_inclusion(
                leaf_hash=p2.leaf_hash, index=p2.index, size=p2.size, path=p2.path, root=p2.root
            )
        )
        self.assertEqual(len(core.read_topic(topic="chat", from_seq=0, limit=2)), 2)
        note = core.checkpoint(log)
        self.assertIn("\n\n", note)  # a C2SP signed note: body, blank line, signature
        logs = core.logs()
        mine = [l for l in logs if l.log == log]
        self.assertEqual(len(mine), 1)
        self.assertEqual((mine[0].size, mine[0].topic_name), (4, "chat"))
        core.close()
        core.close()  # a second close does nothing
        # Reopened: everything is still there.
        again = xf.Core.open(self.dir)
        self.assertEqual(len(again.read_topic("chat", 0, 100)), 4)
        again.close()

    def test_typed_errors(self):
        core = xf.Core.open(self.dir)
        with self.assertRaises(xf.XaerofluxError.InvalidInput):
            core.append("", b"no name")
        with self.assertRaises(xf.XaerofluxError.InvalidInput):
            core.append("tab\tin a name", b"x")
        with self.assertRaises(xf.XaerofluxError.PayloadTooLarge):
            core.append("chat", b"x" * (core.max_payload_len() + 1))
        core.append("chat", b"x" * core.max_payload_len())  # the largest fits
        with self.assertRaises(xf.XaerofluxError.InvalidInput):
            core.prove_inclusion("not a log id", 0, 1)
        with self.assertRaises(xf.XaerofluxError.NotFound):
            core.prove_inclusion(core.own_log("chat"), 5, 1)
        with self.assertRaises(xf.XaerofluxError.InvalidInput):
            xf.verify_inclusion(b"short", 0, 1, [], bytes(32))
        # Every variant is an XaerofluxError.
        with self.assertRaises(xf.XaerofluxError):
            core.append("", b"")
        with self.assertRaises(xf.XaerofluxError.InvalidInput):
            xf.Core.open_with(self.dir + "/other", xf.CoreOptions(sync_backends=["carrier-pigeon"]))
        # A store that is not there, opened to read.
        with self.assertRaises(xf.XaerofluxError.NotFound):
            xf.Core.open_with(self.dir + "/missing", xf.CoreOptions(read_only=True))
        # The same directory twice for writing.
        with self.assertRaises(xf.XaerofluxError.Locked):
            xf.Core.open(self.dir)
        # Needs the network, opened without it.
        with self.assertRaises(xf.XaerofluxError.InvalidInput):
            core.node_ticket()
        core.close()
        with self.assertRaises(xf.XaerofluxError.Closed):
            core.append("chat", b"after close")

    def test_listener_gets_history_then_live_events_in_order(self):
        core = xf.Core.open(self.dir)
        core.append_batch("chat", [b"h%d" % i for i in range(500)])
        got = Collector()
        sub = core.subscribe("chat", 0, got)
        wait_until("the history", lambda: got.count() == 500)
        for i in range(300):
            core.append("chat", b"l%d" % i)
        core.append_batch("chat", [b"b%d" % i for i in range(200)])
        core.append("other", b"not in chat")
        wait_until("the live events", lambda: got.count() == 1000)
        sub.close()
        self.assertTrue(sub.is_closed())
        self.assertEqual(sub.delivered(), 1000)
        self.assertEqual([e.seq for e in got.events], list(range(1000)))
        want = [b"h%d" % i for i in range(500)] + [b"l%d" % i for i in range(300)]
        want += [b"b%d" % i for i in range(200)]
        self.assertEqual([e.payload for e in got.events], want)
        # Batches, from one thread that is not the caller's.
        self.assertLess(got.batches, 1000)
        self.assertEqual(len(got.threads), 1)
        self.assertNotIn(threading.get_ident(), got.threads)
        # Nothing after close.
        core.append("chat", b"after close")
        time.sleep(0.2)
        self.assertEqual(got.count(), 1000)
        # From a later seq, only what follows.
        later = Collector()
        sub2 = core.subscribe("chat", 998, later)
        wait_until("the tail", lambda: later.count() == 3)
        self.assertEqual([e.seq for e in later.events], [998, 999, 1000])
        core.close()  # ends the open subscription too
        self.assertTrue(sub2.is_closed())

    def test_a_listener_that_raises_is_recorded_and_delivery_goes_on(self):
        class Failing(xf.EventListener):
            def __init__(self):
                self.calls = queue.Queue()

            def on_events(self, events):
                self.calls.put(len(events))
                raise ValueError("the app's own bug")

        core = xf.Core.open(self.dir)
        failing = Failing()
        sub = core.subscribe("chat", 0, failing)
        core.append("chat", b"one")
        self.assertEqual(failing.calls.get(timeout=WAIT), 1)
        wait_until("the error", lambda: sub.last_error() is not None)
        self.assertIsInstance(sub.last_error(), xf.XaerofluxError.Listener)
        core.append("chat", b"two")
        self.assertEqual(failing.calls.get(timeout=WAIT), 1)
        sub.close()
        core.close()


def node(path):
    return xf.Core.open_with(
        path,
        xf.CoreOptions(
            sync_backends=["iroh", "iroh-gossip"],
            local_only=True,
            listen_address="127.0.0.1:0",
            sync_interval_ms=300,
        ),
    )


class Sync(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="xf-py-sync-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_two_stores_in_one_process_sync_over_loopback_iroh(self):
        a = node(self.dir + "/a")
        b = node(self.dir + "/b")
        a.append("chat", b"from a")
        b.append("chat", b"from b")
        a.join("chat", [])
        b.join("chat", [a.node_ticket()])

        def payloads(core):
            return sorted(e.payload for e in core.read_topic("chat", 0, 100))

        wait_until("both hold both", lambda: payloads(a) == payloads(b) == [b"from a", b"from b"])
        # Live: b's listener sees a's next event as it is replicated.
        got = Collector()
        sub = b.subscribe("chat", 0, got)
        wait_until("history", lambda: got.count() == 2)
        a.append("chat", b"live from a")
        wait_until("the replicated event", lambda: got.count() == 3)
        self.assertEqual(got.events[-1].payload, b"live from a")
        self.assertEqual(got.events[-1].author, a.author())
        # Proof of a's event, checked on b against a's root.
        log = a.own_log("chat")
        p = b.prove_inclusion(log, 1, 2)
        self.assertTrue(xf.verify_inclusion(p.leaf_hash, 1, 2, p.path, p.root))
        self.assertEqual(p.root, a.prove_inclusion(log, 1, 2).root)

        # Sleep and wake: a paused node holds no network, catches up on resume.
        ticket = a.node_ticket()
        a.pause()
        self.assertTrue(a.is_paused())
        with self.assertRaises(xf.XaerofluxError.Paused):
            a.node_ticket()
        a.append("chat", b"a while paused")
        b.append("chat", b"b while a slept")
        a.resume()
        self.assertFalse(a.is_paused())
        self.assertEqual(a.node_ticket(), ticket)
        wait_until("catch-up after resume", lambda: payloads(a) == payloads(b) and len(payloads(a)) == 5)
        sub.close()
        a.close()
        b.close()

    def test_a_private_topic_is_plaintext_to_a_member_and_sealed_to_a_relay(self):
        a = node(self.dir + "/a")
        relay = node(self.dir + "/relay")
        b = node(self.dir + "/b")
        t = a.create_private_topic("photos")
        self.assertTrue(t.name.startswith("xfe1."))
        a.add_member(t.name, b.member_key())
        self.assertEqual(
            sorted(m.member_key for m in a.members(t.name)),
            sorted([a.member_key(), b.member_key()]),
        )
        a.append(t.name, b"a secret")
        a.join(t.name, [])
        relay.join(t.name, [a.node_ticket()])
        b.join(t.name, [relay.node_ticket()])

        def app(core):
            return [e for e in core.read_topic(t.name, 0, 100) if e.kind == xf.EventKind.APPLICATION]

        wait_until("b reads the secret", lambda: [e.payload for e in app(b)] == [b"a secret"])
        wait_until("the relay holds it", lambda: len(app(relay)) == 1)
        sealed = app(relay)[0]
        self.assertTrue(sealed.encrypted)
        self.assertNotIn(b"a secret", sealed.payload)
        self.assertFalse(app(b)[0].encrypted)
        for c in (a, relay, b):
            c.close()


if __name__ == "__main__":
    unittest.main()
