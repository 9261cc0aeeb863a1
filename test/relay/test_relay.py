#!/usr/bin/python3
"""test/relay/test_relay.py - es-relay against a real server.

Run by test/relay/run.sh, which builds the relay, starts a private cluster
(the library preloaded: notify mode "worker"), a database with the extension
and examples/playbook.sql, and the relay.  Prints one PASS:/FAIL: line per
check; exits 1 if any failed.
"""

import argparse
import asyncio
import json
import os
import socket
import sys
import time
import urllib.parse
import urllib.request
import uuid

import websockets

sys.dont_write_bytecode = True    # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from esclient import (Client, module_add, psql, raw_connect, raw_frame,  # noqa: E402
                      raw_read_frames, stream_events)

FAILED = 0
PASSED = 0


def check(ok, what, detail=""):
    global FAILED, PASSED
    if ok:
        PASSED += 1
        print(f"PASS: {what}" + (f" ({detail})" if detail else ""), flush=True)
    else:
        FAILED += 1
        print(f"FAIL: {what}" + (f" ({detail})" if detail else ""), flush=True)
    return ok


def run_id():
    return uuid.uuid4().hex[:8]


def seqs(client):
    return [e["sequence_number"] for e in client.events]


def complete(client, n):
    return seqs(client) == list(range(1, n + 1))


async def wait_all(clients, pred, timeout):
    results = await asyncio.gather(*(c.wait(lambda c=c: pred(c), timeout) for c in clients))
    return all(results)


# ---- the checks -------------------------------------------------------------

async def two_clients(opt):
    """Two clients of a stream both receive every event, the sender's own
    included, in sequence order; a late third catches up with sync."""
    stream = f"playbook-two{run_id()}"
    a = Client(opt.url, stream, "alice", "Alice")
    b = Client(opt.url, stream, "bob", "Bob%20B")
    await a.connect()
    await b.connect()
    n = 40
    sent = {a: [], b: []}

    async def send(c, tag):
        for i in range(n // 2):
            sent[c].append(await c.action("module_add", module_add(f"{tag}{i}", i, i)))

    await asyncio.gather(send(a, "a"), send(b, "b"))
    ok = await wait_all([a, b], lambda c: c.last >= n, 15)
    pushed = {c: [p[0] for p in c.pushed] for c in (a, b)}
    check(ok and all(pushed[c] == list(range(1, n + 1)) for c in (a, b)),
          "two clients: both receive all %d events pushed in sequence order, once each" % n,
          f"a got {pushed[a][:5]}..{len(pushed[a])}, b got {pushed[b][:5]}..{len(pushed[b])}")
    ids = {c: {p[1] for p in c.pushed} for c in (a, b)}
    check(set(sent[a]) <= ids[a] and set(sent[b]) <= ids[b] and ids[a] == ids[b],
          "two clients: each sender receives its own events too")
    stored = stream_events(opt.dsn, stream)
    check([(e["sequence_number"], e["event_id"]) for e in a.events] == stored,
          "two clients: what they received is what es_read returns")
    names = {(e["user_id"], e["username"]) for e in a.events}
    check(names == {("alice", "Alice"), ("bob", "Bob B")},
          "two clients: user_id and username come from the URL (decoded)", str(names))
    check(not a.errors and not b.errors, "two clients: no errors",
          str((a.errors + b.errors)[:2]))

    # a client's messages are handled in order: each move needs its add
    for i in range(10):
        await a.action("module_add", module_add(f"o{i}"))
        await a.action("module_move", {"moduleId": f"o{i}", "position": {"x": 1, "y": i}})
    n += 20
    ok = await wait_all([a, b], lambda c: c.last >= n, 10)
    check(ok and not a.errors, "two clients: one client's messages are handled in the order sent",
          str(a.errors[:1]))

    # a late client catches up
    c = Client(opt.url, stream, "carol")
    await c.connect()
    ok = await c.wait(lambda: c.last >= n, 10)
    check(ok and [e["event_id"] for e in c.events] == [e["event_id"] for e in a.events]
          and not c.pushed,
          "late client: catches up with sync (all %d events, none pushed)" % n)
    await a.action("module_move", {"moduleId": "a0", "position": {"x": 9, "y": 9}})
    ok = await wait_all([a, b, c], lambda x: x.last >= n + 1, 10)
    check(ok and c.pushed and c.pushed[0][0] == n + 1,
          "late client: then receives the live events")
    n += 1
    return a, b, c, stream


async def invalid_action(opt, a, b, c, stream):
    """An invalid action is answered with an error to its sender only."""
    before = a.last
    await a.action("module_move", {"moduleId": "nope", "position": {"x": 1, "y": 1}})
    await b.action("module_add", {"moduleId": 42})
    ok = await a.wait(lambda: a.errors, 10) and await b.wait(lambda: b.errors, 10)
    ea = a.errors[0] if a.errors else {}
    eb = b.errors[0] if b.errors else {}
    check(ok and ea.get("code") == "23S02" and ea.get("original_action", {}).get("data", {}).get("moduleId") == "nope",
          "invalid action: precondition failure answered to its sender (23S02, original_action)",
          json.dumps(ea)[:200])
    check(eb.get("code") == "22S01", "invalid action: schema mismatch answered to its sender (22S01)",
          json.dumps(eb)[:200])
    # a marker: once everyone has it, any error for them would have come first
    await a.action("module_move", {"moduleId": "a1", "position": {"x": 2, "y": 2}})
    ok = await wait_all([a, b, c], lambda x: x.last >= before + 1, 10)
    check(ok and len(a.errors) == 1 and len(b.errors) == 1 and not c.errors,
          "invalid action: the other clients get no error and no event",
          f"errors a={len(a.errors)} b={len(b.errors)} c={len(c.errors)}")
    check(stream_events(opt.dsn, stream)[-1][0] == before + 1,
          "invalid action: nothing stored")


async def kill_and_reconnect(opt, a, b, stream):
    """A client killed (no closing handshake) reconnects, syncs from its last
    sequence and misses nothing."""
    b.abort()
    await b.wait(lambda: b.closed is not None, 5)
    last = b.last
    for i in range(15):
        await a.action("module_move", {"moduleId": "a2", "position": {"x": i, "y": i}})
    await a.wait(lambda: a.last >= last + 15, 10)
    nb = Client(opt.url, stream, "bob", "Bob")
    nb.last, nb.events = b.last, list(b.events)
    await nb.connect()               # syncs from its last sequence
    for i in range(5):
        await a.action("module_move", {"moduleId": "a2", "position": {"x": -i, "y": i}})
    total = last + 20
    ok = await nb.wait(lambda: nb.last >= total, 10)
    check(ok and complete(nb, total) and [e["event_id"] for e in nb.events] == [e["event_id"] for e in a.events[:total]],
          "killed client: reconnected with sync from %d, it has all %d events, in order" % (last, total),
          f"has {nb.last}")
    return nb


async def slow_reader(opt):
    """A client that stops reading does not delay the others, and the relay
    closes it when its queue is full; the others are unharmed."""
    # a category without definitions: appends are not validated, so the
    # big events are quick to append whatever the state's size
    stream = f"slowtest-{run_id()}"
    fast = Client(opt.url, stream, "fast")
    await fast.connect()
    host, port = opt.host, opt.port
    s, _ = await asyncio.to_thread(raw_connect, host, port, f"/streams/{stream}", 4096)
    n, per_tx, blob = 1200, 300, "x" * 6000
    t0 = time.monotonic()
    # 1200 events of 6 kB: more than the relay queues for a client (1000
    # messages or 4 MB) plus what the sockets hold
    for k in range(n // per_tx):
        await asyncio.to_thread(psql, f"""
            SELECT count(es_append('{stream}', 'blob', jsonb_build_object('i', i, 'blob', '{blob}')))
              FROM generate_series({k * per_tx}, {(k + 1) * per_tx - 1}) i""", opt.dsn)
    t1 = time.monotonic()
    ok = await fast.wait(lambda: fast.last >= n, 30)
    t2 = time.monotonic()
    check(ok and [p[0] for p in fast.pushed] == list(range(1, n + 1)),
          "slow reader: the other client receives all %d events while it stalls" % n,
          "appended in %.1f s, all received %.2f s after the last commit" % (t1 - t0, t2 - t1))
    check(ok and t2 - t1 < 10, "slow reader: the other client is not held back (< 10 s after the last commit)")

    def drain():
        """Read what the stalled socket got, until the relay's close."""
        got = 0
        s.settimeout(20)
        try:
            while True:
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                got += len(chunk)
        except socket.timeout:
            return got, "still open after 20 s"
        except ConnectionError as e:
            return got, repr(e)
        finally:
            s.close()
        return got, "closed"

    got, how = await asyncio.to_thread(drain)
    check(how != "still open after 20 s" and got < n * 6000,
          "slow reader: closed by the relay before receiving everything",
          f"{how} after {got} bytes of about {n * 6100}")
    log = open(opt.relay_log, errors="replace").read() if opt.relay_log else ""
    check("messages (" in log and "not read" in log, "slow reader: the relay says it closed a client with a full queue")
    await fast.action("blob", {"i": -1})
    check(await fast.wait(lambda: fast.last >= n + 1, 10) and fast.closed is None,
          "slow reader: the other client is still served")
    late = Client(opt.url, stream, "late")
    await late.connect()
    ok = await late.wait(lambda: late.last >= n + 1, 20)
    check(ok and late.closed is None and len(late.replies) == 1,
          "slow reader: a late client gets the whole stream in one sync_batch, larger than the 4 MB queue limit",
          f"{late.last} events")
    await late.close()
    await fast.close()


async def cluster(opt, action):
    proc = await asyncio.create_subprocess_exec(*opt.cluster, action, stdout=asyncio.subprocess.DEVNULL)
    return await proc.wait() == 0


async def restart(opt, a, b, stream):
    """The relay survives a restart of the cluster: clients get resync, sync
    and miss nothing, including events appended while the relay reconnects
    and an action sent while the server was down."""
    clients = [a, b]
    r0 = [c.resyncs for c in clients]
    base = a.last
    ok = await cluster(opt, "restart")
    # appended by SQL as soon as the server is back, maybe before the relay listens
    await asyncio.to_thread(psql, f"""
        SELECT count(es_append('{stream}', 'module_move',
               jsonb_build_object('moduleId', 'a3', 'position', jsonb_build_object('x', i, 'y', 0))))
          FROM generate_series(1, 5) i""", opt.dsn)
    ok = ok and await wait_all(clients, lambda c: c.resyncs > r0[clients.index(c)], 15)
    check(ok, "restart: after test/cluster.sh restart every client gets {\"type\":\"resync\"}",
          f"resyncs a={a.resyncs - r0[0]} b={b.resyncs - r0[1]}")
    for i in range(5):
        await b.action("module_move", {"moduleId": "a3", "position": {"x": 0, "y": i}})
    total = base + 10
    ok = await wait_all(clients, lambda c: c.last >= total, 15)
    stored = stream_events(opt.dsn, stream)
    check(ok and complete(a, total) and complete(b, total)
          and [(e["sequence_number"], e["event_id"]) for e in a.events] == stored
          and [e["event_id"] for e in b.events] == [e["event_id"] for e in a.events],
          "restart: both clients then have all %d events (5 appended during the reconnection), in order, as stored" % total,
          f"a={a.last} b={b.last} stored={len(stored)} errors={(a.errors + b.errors)[-2:]}")

    # an action sent while the server is down waits in the relay (or fails
    # with 08006 if it raced the relay's discovery); the editor resends
    # what is unconfirmed after a resync, with the same event_id
    r0 = [c.resyncs for c in clients]
    ok = await cluster(opt, "stop")
    data = {"moduleId": "a3", "position": {"x": 7, "y": 7}}
    down_id = await a.action("module_move", data)
    await asyncio.sleep(0.5)
    ok = ok and await cluster(opt, "start")
    ok = ok and await wait_all(clients, lambda c: c.resyncs > r0[clients.index(c)], 15)
    if down_id not in a.received:
        await a.action("module_move", data, event_id=down_id)
    ok = ok and await wait_all(clients, lambda c: down_id in c.received, 15)
    stored = stream_events(opt.dsn, stream)
    check(ok and [e for e in stored if e[1] == down_id] == [(total + 1, down_id)]
          and complete(a, total + 1) and complete(b, total + 1),
          "restart: an action sent while the server was down is applied once, and everyone has it",
          f"stored as {[e for e in stored if e[1] == down_id]}, a={a.last} b={b.last}")

    # the LISTEN connection alone is terminated: resync too
    r0 = [c.resyncs for c in clients]
    killed = await asyncio.to_thread(psql, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                                     " WHERE application_name = 'es-relay' AND query LIKE 'LISTEN%'", opt.dsn)
    await asyncio.to_thread(psql, f"""
        SELECT es_append('{stream}', 'module_move', '{{"moduleId": "a3", "position": {{"x": 8, "y": 8}}}}')""",
                            opt.dsn)
    ok = await wait_all(clients, lambda c: c.resyncs > r0[clients.index(c)] and c.last >= total + 2, 15)
    check(killed == "1" and ok and complete(a, total + 2) and complete(b, total + 2),
          "restart: when the LISTEN connection alone is terminated, clients get resync and miss nothing",
          f"terminated {killed}, a={a.last} b={b.last}")


async def garbage(opt, a, b, stream):
    """Garbage does not crash the relay: errors or a close, and the others
    are still served."""
    g = Client(opt.url, stream, "garbage")
    await g.connect(sync=False)
    cases = [
        ("not JSON", "this is not json", "22P02"),
        ("an empty frame", "", "22P02"),
        ("a JSON array", "[1, 2]", "22023"),
        ("unknown type", '{"type":"frobnicate"}', "22023"),
        ("a NUL byte", '{"type":"sync"}\u0000', "22P02"),
        ("\\u0000 in JSON", '{"type":"sync","x":"\\u0000"}', "22P05"),
        ("deep nesting", "[" * 100000 + "]" * 100000, None),
        ("binary", b"\x00\x01\x02", "22P02"),
    ]
    for what, frame, code in cases:
        n = len(g.errors)
        await g.send(frame)
        ok = await g.wait(lambda: len(g.errors) > n, 10)
        got = g.errors[n] if ok else {}
        check(ok and (code is None or got.get("code") == code) and g.closed is None,
              f"garbage: {what} is answered with an error" + (f" {code}" if code else ""),
              json.dumps(got)[:160])

    # what the websockets library will not send: invalid UTF-8, fragments
    s, rest = await asyncio.to_thread(raw_connect, opt.host, opt.port, f"/streams/{stream}")
    try:
        s.sendall(raw_frame(1, b'{"type":"sync","x":"\xff\xfe"}'))
        (op, payload), rest = await asyncio.to_thread(raw_read_frames, s, rest)
        m = json.loads(payload)
        check(op == 1 and m.get("code") == "22021", "garbage: invalid UTF-8 is answered with an error 22021",
              payload[:160].decode(errors="replace"))
        s.sendall(raw_frame(1, b'{"type":"sy', fin=False) + raw_frame(0, b'nc","last_sequence":1}'))
        (op, payload), rest = await asyncio.to_thread(raw_read_frames, s, rest)
        m = json.loads(payload)
        check(m.get("type") == "sync_batch" and m["events"] and m["events"][0]["sequence_number"] == 2,
              "garbage: a fragmented message is reassembled", payload[:100].decode(errors="replace"))
    finally:
        s.close()

    # too large: closed with 1009
    n = len(g.errors)
    try:
        await g.send('{"type":"sync","pad":"' + "x" * (2 << 20) + '"}')
    except websockets.ConnectionClosed:
        pass
    await g.wait(lambda: g.closed is not None, 10)
    check(g.closed is not None and g.closed[0] == 1009, "garbage: a 2 MB frame closes the socket with 1009",
          f"closed={g.closed}")

    # clients that leave with a message in the database
    n0 = a.last
    for i in range(20):
        q = Client(opt.url, stream, f"q{i}")
        await q.connect(sync=False)
        await q.action("module_move", {"moduleId": "a1", "position": {"x": i, "y": 0}})
        await q.sync()
        q.abort() if i % 2 else await q.ws.close()
    ok = await a.wait(lambda: a.last >= n0 + 20, 10)
    check(ok and os.path.exists(f"/proc/{opt.relay_pid}"),
          "garbage: 20 clients leave with messages in flight or waiting: their actions are still stored",
          f"{a.last - n0} of 20")

    # a bad stream name or path is refused at the handshake
    for path in ("/streams/Playbook-1", "/streams/playbook-", "/streams/nocategory", "/other/playbook-1",
                 "/streams/playbook-a%22b", "/streams/playbook-a%5Cb", "/streams/playbook-a%0Ab"):
        try:
            async with websockets.connect(f"{opt.url}{path}"):
                refused = False
        except (websockets.InvalidStatusCode, websockets.InvalidHandshake, ConnectionError):
            refused = True
        check(refused, f"garbage: the handshake to {path} is refused")

    # a stream id with spaces, non-ASCII letters and reserved characters
    name = "playbook-Zoé's plan/№ 1?#%"
    u1 = Client(opt.url, urllib.parse.quote(name, safe=""), "u1")
    u2 = Client(opt.url, urllib.parse.quote(name, safe=""), "u2")
    await u1.connect()
    await u2.connect()
    await u1.action("module_add", module_add("x"))
    ok = await wait_all([u1, u2], lambda c: c.last >= 1, 10)
    check(ok and u2.events[0]["stream"] == name, "garbage: a stream named with any characters but quotes,"
          " backslashes and controls works", name)
    await u1.close()
    await u2.close()

    # the others are still served
    n0 = a.last
    await b.action("module_move", {"moduleId": "a1", "position": {"x": 3, "y": 3}})
    ok = await wait_all([a, b], lambda c: c.last >= n0 + 1, 10)
    check(ok and opt.relay_pid and os.path.exists(f"/proc/{opt.relay_pid}"),
          "garbage: the relay still runs and serves the other clients")


def web(opt):
    """Static files of --web, with content types; index.html at /."""
    base = f"http://{opt.host}:{opt.port}"
    for path, ctype in (("/", "text/html"), ("/app.js", "text/javascript"),
                        ("/style.css", "text/css"), ("/data.json", "application/json"),
                        ("/icon.svg", "image/svg+xml")):
        try:
            with urllib.request.urlopen(base + path, timeout=5) as r:
                got = r.headers.get("content-type", "")
                body = r.read()
            ok = got.startswith(ctype) and body == open(os.path.join(opt.web, path.lstrip("/") or "index.html"), "rb").read()
        except Exception as e:  # noqa: BLE001
            ok, got = False, repr(e)
        check(ok, f"web: {path} is served as {ctype}", got)
    try:
        urllib.request.urlopen(base + "/missing.html", timeout=5)
        status = 200
    except urllib.error.HTTPError as e:
        status = e.code
    check(status == 404, "web: a missing file is 404", str(status))


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True, help="ws://HOST:PORT of the relay")
    p.add_argument("--dsn", required=True, help="libpq conninfo of the database (psql)")
    p.add_argument("--cluster", required=True, help='"test/cluster.sh DIR PORT"')
    p.add_argument("--relay-pid", type=int, default=0)
    p.add_argument("--relay-log", default="")
    p.add_argument("--web", default="")
    opt = p.parse_args()
    opt.cluster = opt.cluster.split()
    hostport = opt.url.split("//", 1)[1]
    opt.host, opt.port = hostport.rsplit(":", 1)[0], int(hostport.rsplit(":", 1)[1])

    t0 = time.monotonic()
    if opt.web:
        web(opt)
    a, b, c, stream = await two_clients(opt)
    await invalid_action(opt, a, b, c, stream)
    b = await kill_and_reconnect(opt, a, b, stream)
    await c.close()
    await slow_reader(opt)
    await restart(opt, a, b, stream)
    await garbage(opt, a, b, stream)
    await a.close()
    await b.close()
    print(f"{PASSED} passed, {FAILED} failed ({time.monotonic() - t0:.1f} s)")
    return 1 if FAILED or not PASSED else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
