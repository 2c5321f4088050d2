"""`xf mcp` driven by the official MCP Python SDK, as an agent would.

Usage: python mcp_client.py XF_BINARY STORE_DIR

The store holds topic `chat` with some events (the Rust test that runs this
script writes them). The script spawns `xf mcp --allow-append`, calls the
tools, and checks every proof it gets with its own RFC 9162 code and the
checkpoint's ed25519 signature with `cryptography`, trusting nothing the
server says about validity. It exits non-zero on the first failure.
"""

import asyncio
import base64
import hashlib
import sys

import anyio
import mcp
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

XF, DB = sys.argv[1], sys.argv[2]
PARAMS = StdioServerParameters(command=XF, args=["--db", DB, "mcp", "--allow-append"])


def check(cond, what):
    if not cond:
        raise AssertionError(what)


# RFC 9162 section 2.1, written from the text.
def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_inclusion(index: int, size: int, leaf: bytes, path: list) -> bytes:
    """RFC 9162 2.1.3.2: the root a proof leads to (None when malformed)."""
    if index >= size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn != 0 and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def verify_consistency(m: int, n: int, old: bytes, new: bytes, path: list) -> bool:
    """RFC 9162 2.1.4.2."""
    if m == n:
        return old == new and not path
    if m == 0 or m > n or not path:
        return False
    if m & (m - 1) == 0:
        path = [old] + path
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn != 0 and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old and sr == new and sn == 0


def check_note(note: str, author_hex: str, origin: str, size: int, root: bytes):
    """A C2SP signed note: the checkpoint body, then an ed25519 signature
    by the log's author whose key hash the signed-note spec defines."""
    body, sep, sigs = note.partition("\n\n")
    check(sep, f"no signature block in {note!r}")
    lines = body.split("\n")
    check(lines[0] == origin, f"origin {lines[0]!r} != {origin!r}")
    check(int(lines[1]) == size, f"note size {lines[1]} != {size}")
    check(base64.b64decode(lines[2]) == root, "note root differs from the proof's")
    key = bytes.fromhex(author_hex)
    key_hash = hashlib.sha256(origin.encode() + b"\n\x01" + key).digest()[:4]
    verified = False
    for line in sigs.strip("\n").split("\n"):
        check(line.startswith("\u2014 "), f"not a signature line: {line!r}")
        name, _, b64 = line[2:].rpartition(" ")
        raw = base64.b64decode(b64)
        if name == origin and raw[:4] == key_hash:
            # Raises InvalidSignature on a bad signature.
            Ed25519PublicKey.from_public_bytes(key).verify(raw[4:], (body + "\n").encode())
            verified = True
    check(verified, "no signature by the log's author")


def h(x: str) -> bytes:
    return bytes.fromhex(x)


async def prove_and_check(call, log: str, seq: int, size=None):
    args = {"log": log, "seq": seq}
    if size is not None:
        args["size"] = size
    proof = (await call("prove_inclusion", args)).structured_content
    # The leaf is what the event's canonical bytes hash to, here.
    ev = (await call("get_event", {"log": log, "seq": seq})).structured_content
    leaf = leaf_hash(h(ev["bytes_hex"]))
    check(leaf == h(proof["leaf_hash"]) == h(ev["leaf_hash"]), "leaf hash")
    root = root_from_inclusion(proof["index"], proof["size"], leaf, [h(p) for p in proof["path"]])
    check(root == h(proof["root"]), f"inclusion proof of {seq} at {proof['size']} fails")
    cp = proof["checkpoint"]
    author = log.split("/")[0]
    check_note(cp["note"], author, cp["origin"], cp["size"], h(cp["root"]))
    if proof["size"] == cp["size"]:
        check(proof["root"] == cp["root"], "proof root is not the checkpoint's")
        check(proof.get("consistency") is None, "consistency proof where none is due")
    else:
        c = proof["consistency"]
        check(c["from"] == proof["size"] and c["to"] == cp["size"], "consistency sizes")
        check(h(c["old_root"]) == root and h(c["new_root"]) == h(cp["root"]), "consistency roots")
        ok = verify_consistency(c["from"], c["to"], root, h(cp["root"]), [h(p) for p in c["path"]])
        check(ok, f"consistency proof {c['from']} -> {c['to']} fails")
    return proof


async def modern():
    """The SDK's default client: the newest protocol version both speak."""
    async with mcp.Client(PARAMS) as c:
        print("negotiated", c.protocol_version)
        tools = {t.name: t for t in (await c.list_tools()).tools}
        expected = {"list_topics", "read_topic", "get_event", "checkpoint",
                    "prove_inclusion", "verify_inclusion", "stats", "append"}
        check(set(tools) == expected, f"tools: {sorted(tools)}")
        for name, t in tools.items():
            check(t.input_schema.get("type") == "object", f"{name} has no input schema")
            check(t.description, f"{name} has no description")
            check(t.annotations.read_only_hint == (name != "append"), f"{name} read_only_hint")

        topics = (await c.call_tool("list_topics", {})).structured_content["topics"]
        chat = next(t for t in topics if t["name"] == "chat")
        total = chat["events"]
        check(total >= 5, f"chat has {total} events")

        # Page through the topic three events at a time.
        seen, cursor = [], None
        for _ in range(total + 2):
            args = {"topic": "chat", "limit": 3}
            if cursor:
                args["since_seq"] = cursor
            page = (await c.call_tool("read_topic", args)).structured_content
            seen += page["events"]
            cursor = page["next"]
            if cursor is None:
                break
        check(len(seen) == total, f"paged {len(seen)} of {total}")
        check([e["seq"] for e in seen] == list(range(total)), "seqs in order, none missed")
        log = seen[0]["log"]

        # Append, then prove the new event and older ones, here.
        r = await c.call_tool("append", {"topic": "chat", "payload": "from python"})
        receipt = r.structured_content
        check(receipt["seq"] == total and receipt["size"] == total + 1, f"receipt {receipt}")
        check(receipt["log"] == log, "appended to the store's own log")
        p = await prove_and_check(c.call_tool, log, receipt["seq"])
        check(p["root"] == receipt["root"], "proof root is the receipt's")
        await prove_and_check(c.call_tool, log, 0)
        await prove_and_check(c.call_tool, log, 1, size=3)

        # The server's verifier agrees, and refuses a tampered proof.
        good = {k: p[k] for k in ("log", "index", "size", "leaf_hash", "path")}
        good["checkpoint"] = p["checkpoint"]["note"]
        v = (await c.call_tool("verify_inclusion", good)).structured_content
        check(v["valid"] is True, f"verify: {v}")
        bad = dict(good, leaf_hash=leaf_hash(b"forged").hex())
        v = (await c.call_tool("verify_inclusion", bad)).structured_content
        check(v["valid"] is False and v["reason"], f"a forged leaf verified: {v}")

        # Bad input: a tool error or a JSON-RPC error, and the server lives.
        r = await c.call_tool("get_event", {"log": log, "seq": 10_000})
        check(r.is_error, "a missing event is an error")
        try:
            await c.call_tool("no_such_tool", {})
            check(False, "an unknown tool was accepted")
        except MCPError as e:
            check("no_such_tool" in str(e), f"unclear error: {e}")
        check((await c.call_tool("stats", {})).structured_content["append_allowed"], "stats")

        # Follow the topic: an append there is announced.
        async with c.listen(resource_subscriptions=["xf://topic/chat"]) as sub:
            await c.call_tool("append", {"topic": "chat", "payload": "followed"})
            with anyio.fail_after(30):
                async for update in sub:
                    check("xf://topic/chat" in str(update), f"update: {update}")
                    break
        body = (await c.read_resource("xf://topic/chat")).contents[0].text
        check("followed" in body, "the resource shows the new event")
        return total + 2


async def legacy(expected_total: int):
    """A client that speaks the 2025-11-25 protocol, with the legacy
    resources/subscribe."""
    updated = asyncio.Event()

    async def on_message(message):
        if getattr(message, "method", None) == "notifications/resources/updated":
            updated.set()

    async with stdio_client(PARAMS) as (r, w):
        async with ClientSession(r, w, message_handler=on_message) as s:
            init = await s.initialize()
            print("negotiated", init.protocol_version)
            check(init.protocol_version == "2025-11-25", init.protocol_version)
            await s.subscribe_resource("xf://topic/chat")
            res = await s.call_tool("append", {"topic": "chat", "payload": "legacy"})
            check(res.structured_content["size"] == expected_total + 1, "legacy append")
            with anyio.fail_after(30):
                await updated.wait()
            topics = (await s.call_tool("list_topics", {})).structured_content["topics"]
            chat = next(t for t in topics if t["name"] == "chat")
            check(chat["events"] == expected_total + 1, "legacy list_topics")


async def main():
    total = await modern()
    await legacy(total)
    print("python MCP client: all checks passed")


asyncio.run(main())
