// The Kotlin binding on the JVM as an application uses it: run by
// scripts/kotlin-test.sh (which .ci/run calls). Exits non-zero on the
// first failed check.

import java.nio.file.Files
import java.util.concurrent.CopyOnWriteArrayList
import uniffi.xaeroflux.*

const val WAIT_MS = 60_000L

fun check(cond: Boolean, what: () -> String) {
    if (!cond) throw AssertionError(what())
}

fun waitUntil(what: String, cond: () -> Boolean) {
    val deadline = System.currentTimeMillis() + WAIT_MS
    while (!cond()) {
        check(System.currentTimeMillis() < deadline) { "timed out waiting for $what" }
        Thread.sleep(20)
    }
}

inline fun <reified E : Throwable> raises(what: String, f: () -> Unit) {
    try {
        f()
    } catch (e: Throwable) {
        check(e is E) { "$what: expected ${E::class.simpleName}, got $e" }
        return
    }
    throw AssertionError("$what: nothing was raised")
}

class Collector : EventListener {
    val events = CopyOnWriteArrayList<Event>()
    val threads = java.util.concurrent.ConcurrentHashMap.newKeySet<Long>()
    @Volatile var batches = 0

    override fun onEvents(events: List<Event>) {
        // Stay attached to the JVM between batches: the listener thread is
        // long-lived, so JNA need not attach and detach it on every call.
        com.sun.jna.Native.detach(false)
        this.events.addAll(events)
        batches += 1
        threads.add(Thread.currentThread().id)
    }
}

fun store(root: java.nio.file.Path) {
    val dir = root.resolve("store").toString()
    val core = Core.open(dir)
    val r = core.append("chat", "hello".toByteArray())
    check(r.seq == 0UL && r.size == 1UL) { "first receipt $r" }
    check(r.leafHash.size == 32 && r.root.contentEquals(r.leafHash)) { "one-leaf root" }
    val batch = core.appendBatch("chat", listOf("a", "b", "c").map { it.toByteArray() })
    check(batch.map { it.seq } == listOf(1UL, 2UL, 3UL)) { "batch seqs" }
    val events = core.readTopic("chat", 0UL, 100UL)
    check(events.map { String(it.payload) } == listOf("hello", "a", "b", "c")) { "read back" }
    check(events[0].kind == EventKind.APPLICATION && events[0].author.contentEquals(core.author())) { "event fields" }

    val proof = core.proveInclusion(r.log, 1UL, 4UL)
    check(proof.leafHash.contentEquals(batch[0].leafHash)) { "proof leaf" }
    check(verifyInclusion(proof.leafHash, proof.index, proof.size, proof.path, proof.root)) { "verifies" }
    raises<XaerofluxException.Verification>("a wrong leaf") {
        verifyInclusion(ByteArray(32), proof.index, proof.size, proof.path, proof.root)
    }
    val c = core.proveConsistency(r.log, 1UL, 4UL)
    check(verifyConsistency(1UL, 4UL, c.oldRoot, c.newRoot, c.path)) { "consistency" }
    check(core.checkpoint(r.log).contains("\n\n")) { "a signed note" }

    // Typed exceptions.
    raises<XaerofluxException.InvalidInput>("an empty topic name") { core.append("", ByteArray(1)) }
    raises<XaerofluxException.PayloadTooLarge>("a too-large payload") {
        core.append("chat", ByteArray(core.maxPayloadLen().toInt() + 1))
    }
    raises<XaerofluxException.NotFound>("a missing store") {
        Core.openWith(root.resolve("missing").toString(), CoreOptions(readOnly = true))
    }
    raises<XaerofluxException.Locked>("the same store twice") { Core.open(dir) }

    // A listener: history, then live events, in order, in batches, from
    // one thread that is not this one.
    val got = Collector()
    val sub = core.subscribe("chat", 0UL, got)
    waitUntil("history") { got.events.size == 4 }
    for (i in 0 until 300) core.append("chat", "live $i".toByteArray())
    core.appendBatch("chat", (0 until 200).map { "batch $it".toByteArray() })
    waitUntil("live events") { got.events.size == 504 }
    sub.cancel()
    check(got.events.map { it.seq } == (0UL until 504UL).toList()) { "in order, no gap" }
    check(String(got.events[4].payload) == "live 0" && String(got.events[503].payload) == "batch 199") { "payloads" }
    check(got.batches < 504) { "batched: ${got.batches} calls" }
    check(got.threads.size == 1 && Thread.currentThread().id !in got.threads) { "one listener thread" }
    check(sub.delivered() == 504UL) { "delivered" }
    core.closeStore()
    raises<XaerofluxException.Closed>("after closeStore") { core.append("chat", ByteArray(1)) }
    core.close() // AutoCloseable: frees the object
    // AutoCloseable's close() alone closes the store too: it opens again.
    Core.open(dir).use { again ->
        check(again.readTopic("chat", 0UL, 1000UL).size == 504) { "reopened" }
    }
    Core.open(dir).close()
    println("store: ok")
}

fun node(path: String) = Core.openWith(
    path,
    CoreOptions(
        syncBackends = listOf("iroh", "iroh-gossip"),
        localOnly = true,
        listenAddress = "127.0.0.1:0",
        syncIntervalMs = 300UL,
    ),
)

fun sync(root: java.nio.file.Path) {
    val a = node(root.resolve("a").toString())
    val b = node(root.resolve("b").toString())
    a.append("chat", "from a".toByteArray())
    b.append("chat", "from b".toByteArray())
    a.join("chat", listOf())
    b.join("chat", listOf(a.nodeTicket()))
    fun payloads(c: Core) = c.readTopic("chat", 0UL, 100UL).map { String(it.payload) }.sorted()
    waitUntil("both hold both") { payloads(a) == listOf("from a", "from b") && payloads(b) == payloads(a) }
    val got = Collector()
    val sub = b.subscribe("chat", 0UL, got)
    waitUntil("history on b") { got.events.size == 2 }
    a.append("chat", "live from a".toByteArray())
    waitUntil("the replicated event") { got.events.size == 3 }
    check(got.events[2].author.contentEquals(a.author())) { "its author" }
    val p = b.proveInclusion(a.ownLog("chat"), 1UL, 2UL)
    check(verifyInclusion(p.leafHash, 1UL, 2UL, p.path, p.root)) { "a's event proved on b" }

    a.pause()
    raises<XaerofluxException.Paused>("a ticket while paused") { a.nodeTicket() }
    a.append("chat", "while paused".toByteArray())
    a.resume()
    waitUntil("catch-up after resume") { payloads(b).size == 4 }
    sub.cancel()
    a.closeStore()
    b.close()
    println("sync: ok")
}

fun main() {
    val root = Files.createTempDirectory("xf-kotlin-")
    try {
        store(root)
        sync(root)
        println("kotlin binding: all checks passed")
    } finally {
        root.toFile().deleteRecursively()
    }
}
