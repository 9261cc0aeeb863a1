#!/usr/bin/python3
"""test/relay/load.py - many WebSocket clients on es-relay, checked and timed.

Run by "test/relay/run.sh load" (once per notify mode), or by hand against a
running relay:

    load.py --url ws://127.0.0.1:PORT --dsn "CONNINFO" [--mode worker|commit]
            [--clients 50] [--streams 10] [--actions 100] [--duration 20]
            [--rate 1000] [--procs 2]

CLIENTS clients over STREAMS playbooks (fresh streams each run) send
module_add / module_move actions with unique ids: each at most ACTIONS
actions and for at most DURATION seconds, all together RATE actions per
second (open loop: sends do not wait for answers), or with --rate 0 as fast
as they can (closed loop: each client sends its next action when it has
received its previous one).  The clients are spread over PROCS processes
(all clients of a playbook in the same one), so that Python is not the
bottleneck.

Then it checks that every client received every event of its playbook
exactly once, pushed by the relay in sequence order, as es_read lists them,
and that the state each client folds from its events equals es_replay and
the relay's time_travel at its last sequence; and, with --mode, that the
notifier worker sent the events (worker) or did not (commit).  It reports
the actions per second sustained and the latency from a client's send to
the receipt by the last client of the playbook (p50, p99).  Exits 1 if a
check failed (the figures themselves are reported, not judged).
"""

import argparse
import asyncio
import multiprocessing
import os
import random
import resource
import sys
import time
import uuid

sys.dont_write_bytecode = True    # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from esclient import Client, fold, module_add, psql, stream_events, stream_state  # noqa: E402


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


async def run_worker(opt, streams, cmd, results):
    """The clients of streams: connect, wait for the start, send, check."""
    clients = []
    for k, stream in streams:
        for j in range(opt.clients_per_stream[k]):
            clients.append(Client(opt.url, stream, f"u{k}-{j}", f"User {k}-{j}", name=f"{k}-{j}"))
    await asyncio.gather(*(c.connect() for c in clients))
    ok = await asyncio.gather(*(c.wait(lambda c=c: c.replies, 30) for c in clients))
    results.put(("ready", all(ok)))
    start_at = cmd.get()
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))

    sent = {}                 # event_id -> (time sent, stream)
    per_client = opt.actions
    rate = opt.rate / opt.total_clients if opt.rate else 0
    deadline = start_at + opt.duration

    async def sender(c, index):
        mods = []
        phase = random.random() / rate if rate else 0
        for i in range(per_client):
            if rate:
                t = start_at + phase + i / rate
                await asyncio.sleep(max(0.0, t - time.monotonic()))
            if time.monotonic() >= deadline:
                break
            if not mods or i % 4 == 0:
                mid = f"m{index}-{i}"
                mods.append(mid)
                etype, data = "module_add", module_add(mid, i, i)
            else:
                etype, data = "module_move", {"moduleId": random.choice(mods),
                                              "position": {"x": i, "y": -i}}
            eid = str(uuid.uuid4())
            sent[eid] = (time.monotonic(), c)
            await c.action(etype, data, eid)
            if not rate:
                # closed loop: the next action once this one is back (or refused)
                n = len(c.errors)
                await c.wait(lambda: eid in c.received or len(c.errors) > n, 30)

    await asyncio.gather(*(sender(c, i) for i, c in enumerate(clients)))
    t_sent = time.monotonic()

    # every action answered: its event came back to its sender, or an error
    def answered():
        confirmed = sum(1 for eid, (_, c) in sent.items() if eid in c.received)
        return confirmed + sum(len(c.errors) for c in clients) >= len(sent)

    while not answered() and time.monotonic() < t_sent + 60:
        await asyncio.sleep(0.05)
    # then every client reaches its stream's version
    versions = {}
    for k, stream in streams:
        versions[stream] = len(await asyncio.to_thread(stream_events, opt.dsn, stream))
    await asyncio.gather(*(c.wait(lambda c=c: c.last >= versions[c.stream], 30) for c in clients))

    # checks
    problems = []
    for k, stream in streams:
        stored = await asyncio.to_thread(stream_events, opt.dsn, stream)
        state = await asyncio.to_thread(stream_state, opt.dsn, stream)
        for c in (c for c in clients if c.stream == stream):
            pushed = [(s, e) for s, e, _ in c.pushed]
            if pushed != stored:
                dup = len(pushed) - len(set(pushed))
                problems.append(f"{stream} client {c.name}: {len(pushed)} events pushed ({dup} twice), "
                                f"{len(stored)} stored, in order: {[p[0] for p in pushed] == sorted(p[0] for p in pushed)}")
            if [(e["sequence_number"], e["event_id"]) for e in c.events] != stored:
                problems.append(f"{stream} client {c.name}: applied events differ from es_read")
            if fold(c.events) != state:
                problems.append(f"{stream} client {c.name}: folded state differs from es_replay")
            n = len(c.replies)
            await c.send({"type": "time_travel", "target_sequence": c.last})
            if not await c.wait(lambda c=c, n=n: len(c.replies) > n and c.replies[-1].get("type") == "snapshot", 20):
                problems.append(f"{stream} client {c.name}: no time_travel answer")
            elif c.replies[-1]["state"] != state or c.replies[-1]["sequence_number"] != c.last:
                problems.append(f"{stream} client {c.name}: time_travel at {c.last} differs from es_replay")
    errors = [e for c in clients for e in c.errors]

    # latencies: send -> receipt by the last client of the playbook
    latencies, own = [], []
    by_stream = {}
    for c in clients:
        by_stream.setdefault(c.stream, []).append(c)
    first_send = min((t for t, _ in sent.values()), default=start_at)
    last_receipt = first_send
    for eid, (t, sender_client) in sent.items():
        peers = by_stream[sender_client.stream]
        times = [p.received.get(eid) for p in peers]
        if None in times:
            continue
        latencies.append(max(times) - t)
        own.append(sender_client.received[eid] - t)
        last_receipt = max(last_receipt, max(times))
    await asyncio.gather(*(c.close() for c in clients))
    results.put(("done", {
        "sent": len(sent), "events": sum(versions.values()), "problems": problems,
        "errors": errors[:5], "n_errors": len(errors), "latencies": latencies, "own": own,
        "first_send": first_send, "last_receipt": last_receipt, "t_sent": t_sent,
        "duplicates": sum(c.duplicates for c in clients),
    }))


def worker_main(opt, streams, cmd, results):
    try:
        asyncio.run(run_worker(opt, streams, cmd, results))
    except Exception as e:  # report, do not hang the parent
        results.put(("done", {"crash": repr(e)}))


def cpu_seconds(pid):
    """User + system CPU time of a process, in seconds (0 if unknown)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def notify_sent(dsn):
    out = psql("SELECT coalesce(events_sent, 0) FROM es.notify_status", dsn)
    return int(out or 0)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--dsn", required=True)
    p.add_argument("--mode", choices=("worker", "commit", "any"), default="any",
                   help="the notify mode the relay's connections use (checked)")
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--streams", type=int, default=10)
    p.add_argument("--actions", type=int, default=100, help="at most, per client")
    p.add_argument("--duration", type=float, default=20, help="at most, seconds")
    p.add_argument("--rate", type=float, default=1000, help="actions/s in all; 0: closed loop")
    p.add_argument("--procs", type=int, default=min(4, os.cpu_count() or 1))
    p.add_argument("--relay-pid", type=int, default=0, help="to report the relay's CPU time")
    opt = p.parse_args()
    if opt.clients < opt.streams or opt.streams < 1:
        p.error("need at least one client per stream")
    opt.total_clients = opt.clients
    opt.clients_per_stream = [opt.clients // opt.streams + (1 if k < opt.clients % opt.streams else 0)
                              for k in range(opt.streams)]
    procs = max(1, min(opt.procs, opt.streams))
    run = uuid.uuid4().hex[:8]
    streams = [(k, f"playbook-load{run}-{k}") for k in range(opt.streams)]
    mode = psql("SHOW eventsourcing.notify", opt.dsn)
    sent_before = notify_sent(opt.dsn)

    what = f"{opt.clients} clients, {opt.streams} playbooks, " + \
        (f"{opt.rate:g} actions/s offered" if opt.rate else "closed loop") + \
        f", at most {opt.actions} actions per client and {opt.duration:g} s; relay's notify mode: {opt.mode}"
    print(f"load: {what} ({procs} client processes)", flush=True)

    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    workers, cmds = [], []
    for i in range(procs):
        cmd = ctx.Queue()
        w = ctx.Process(target=worker_main, args=(opt, [s for s in streams if s[0] % procs == i], cmd, results))
        w.start()
        workers.append(w)
        cmds.append(cmd)
    ready = [results.get(timeout=120) for _ in workers]
    cpu0 = cpu_seconds(opt.relay_pid)
    start_at = time.monotonic() + 0.5
    for cmd in cmds:
        cmd.put(start_at)
    done = [results.get(timeout=opt.duration + 300)[1] for _ in workers]
    relay_cpu = cpu_seconds(opt.relay_pid) - cpu0
    for w in workers:
        w.join(10)
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    clients_cpu = ru.ru_utime + ru.ru_stime

    failed = 0

    def check(ok, what, detail=""):
        nonlocal failed
        failed += 0 if ok else 1
        print(("PASS: " if ok else "FAIL: ") + what + (f" ({detail})" if detail else ""), flush=True)

    crashes = [d["crash"] for d in done if "crash" in d]
    check(all(r[1] for r in ready) and not crashes, f"load [{opt.mode}]: all clients connected and synced",
          "; ".join(crashes))
    if crashes:
        return 1
    sent = sum(d["sent"] for d in done)
    events = sum(d["events"] for d in done)
    problems = [x for d in done for x in d["problems"]]
    n_errors = sum(d["n_errors"] for d in done)
    check(n_errors == 0 and events == sent, f"load [{opt.mode}]: every action stored ({events} events of {sent} actions)",
          f"{n_errors} errors, e.g. {[e for d in done for e in d['errors']][:2]}" if n_errors else "")
    check(not problems, f"load [{opt.mode}]: every client received every event of its playbook exactly once, "
          "in order, and its state equals es_replay and time_travel", "; ".join(problems[:5]))
    sent_after = notify_sent(opt.dsn)
    if opt.mode == "worker":
        check(sent_after - sent_before >= events, f"load [{opt.mode}]: the notifier worker sent the events",
              f"events_sent +{sent_after - sent_before}")
    elif opt.mode == "commit":
        check(sent_after == sent_before, f"load [{opt.mode}]: the notifier worker sent none (the appending transactions did)",
              f"events_sent +{sent_after - sent_before}")

    lat = [x for d in done for x in d["latencies"]]
    own = [x for d in done for x in d["own"]]
    first = min(d["first_send"] for d in done)
    last = max(d["last_receipt"] for d in done)
    sending = max(d["t_sent"] for d in done) - first
    span = max(last - first, 1e-9)
    ms = 1000
    print(f"RESULT [{opt.mode}]: {events} actions in {span:.2f} s: {events / span:.0f} actions/s sustained "
          f"(offered {'closed loop' if not opt.rate else f'{opt.rate:g}/s'}, sending took {sending:.2f} s; "
          f"the database's default notify mode: {mode})", flush=True)
    print(f"RESULT [{opt.mode}]: latency send -> last client of the playbook: p50 {pct(lat, 50) * ms:.1f} ms, "
          f"p99 {pct(lat, 99) * ms:.1f} ms, max {max(lat, default=float('nan')) * ms:.1f} ms "
          f"(send -> sender: p50 {pct(own, 50) * ms:.1f} ms, p99 {pct(own, 99) * ms:.1f} ms; "
          f"{sum(d['duplicates'] for d in done)} duplicates dropped)", flush=True)
    if opt.relay_pid:
        print(f"RESULT [{opt.mode}]: CPU: relay {relay_cpu:.2f} s for the run "
              f"({relay_cpu / span * 100:.0f} % of one core while it lasted); the Python clients "
              f"{clients_cpu:.1f} s (with connection and checks)", flush=True)
    if opt.rate:
        met = pct(lat, 99) < 0.050 and events / span >= 0.95 * min(opt.rate, sent / max(sending, 1e-9))
        print(f"TARGET [{opt.mode}]: p99 < 50 ms at {opt.rate:g} actions/s: {'met' if met else 'not met'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
