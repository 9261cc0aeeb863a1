"""test/relay/esclient.py - a protocol client of es-relay for the tests.

A Client follows the subscriber contract of the editor protocol: it syncs
from the last sequence number it applied, applies events in sequence order
(holding back any that arrive ahead of a gap, and syncing to fill the gap),
drops those already applied, and syncs again on {"type":"resync"}.  It
also keeps the raw list of event messages the relay pushed to it, so that
the tests can check what the relay itself delivered.
"""

import asyncio
import base64
import json
import os
import socket
import struct
import subprocess
import time
import uuid

import websockets


class Client:
    def __init__(self, base, stream, user_id=None, username=None, name=None):
        self.stream = stream
        self.url = f"{base}/streams/{stream}"
        args = []
        if user_id is not None:
            args.append(f"user_id={user_id}")
        if username is not None:
            args.append(f"username={username}")
        if args:
            self.url += "?" + "&".join(args)
        self.name = name or stream
        self.ws = None
        self.reader = None
        self.last = 0              # last sequence number applied
        self.events = []           # applied events, in order
        self.ahead = {}            # events received ahead of a gap
        self.pushed = []           # (sequence_number, event_id, time) as pushed
        self.received = {}         # event_id -> time of first receipt
        self.replies = []          # sync_batch / snapshot / event replies
        self.errors = []
        self.resyncs = 0
        self.duplicates = 0        # events dropped as already applied
        self.syncing = False
        self.closed = None         # (code, reason) once the socket closed
        self.changed = asyncio.Event()

    async def connect(self, sync=True, **kw):
        self.ws = await websockets.connect(self.url, max_size=None, max_queue=None, **kw)
        self.closed = None
        self.reader = asyncio.create_task(self._read())
        if sync:
            await self.sync()

    async def _read(self):
        try:
            async for raw in self.ws:
                self._handle(json.loads(raw), time.monotonic())
        except websockets.ConnectionClosed:
            pass
        except Exception as e:  # a test failure, not a crash of the client
            self.errors.append({"type": "client-exception", "message": repr(e)})
        self.closed = (self.ws.close_code, self.ws.close_reason)
        self.changed.set()

    def _handle(self, m, t):
        kind = m.get("type")
        if kind == "event":
            self.pushed.append((m["sequence_number"], m["event_id"], t))
            self._offer(m, t)
        elif kind == "sync_batch":
            self.syncing = False
            self.replies.append(m)
            for e in m["events"]:
                self._offer(e, t)
        elif kind == "resync":
            self.resyncs += 1
            asyncio.ensure_future(self.sync())
        elif kind == "error":
            self.errors.append(m)
        else:
            self.replies.append(m)
        self.changed.set()

    def _offer(self, e, t):
        seq = e["sequence_number"]
        self.received.setdefault(e["event_id"], t)
        if seq <= self.last:
            self.duplicates += 1
            return
        if e.get("truncated"):
            # too large for NOTIFY: fetch it
            self._gap()
            return
        self.ahead[seq] = e
        while self.last + 1 in self.ahead:
            self.events.append(self.ahead.pop(self.last + 1))
            self.last += 1
        if self.ahead:
            self._gap()

    def _gap(self):
        if not self.syncing:
            asyncio.ensure_future(self.sync())

    async def sync(self):
        self.syncing = True
        await self.send({"type": "sync", "last_sequence": self.last})

    async def send(self, msg):
        await self.ws.send(json.dumps(msg) if isinstance(msg, dict) else msg)

    async def action(self, event_type, data, event_id=None):
        event_id = event_id or str(uuid.uuid4())
        await self.send({"type": "action", "event_type": event_type,
                         "data": data, "event_id": event_id})
        return event_id

    async def wait(self, pred, timeout):
        """Wait until pred() is true; False on time-out."""
        end = time.monotonic() + timeout
        while not pred():
            left = end - time.monotonic()
            if left <= 0:
                return False
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except asyncio.TimeoutError:
                return pred()
        return True

    def abort(self):
        """Drop the connection without a closing handshake (a killed client)."""
        self.ws.transport.abort()

    async def close(self):
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            await self.reader


# ---- raw WebSocket (for what the websockets library will not do) ----------

def raw_connect(host, port, path, rcvbuf=None, timeout=10):
    """A WebSocket handshake on a plain socket; returns (socket, leftover)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    s.connect((host, port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
               "Upgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("closed during the handshake: %r" % data)
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        s.close()
        raise ConnectionError(head.split(b"\r\n")[0].decode())
    return s, rest


def raw_frame(opcode, payload, fin=True):
    """A masked client frame."""
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack(">Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def raw_read_frames(s, buf=b""):
    """Read server frames until one complete text or close frame; returns
    ((opcode, payload), rest)."""
    while True:
        if len(buf) >= 2:
            n = buf[1] & 0x7F
            off = 2
            if n == 126 and len(buf) >= 4:
                n = struct.unpack(">H", buf[2:4])[0]
                off = 4
            elif n == 127 and len(buf) >= 10:
                n = struct.unpack(">Q", buf[2:10])[0]
                off = 10
            if n < 126 or off > 2:
                if len(buf) >= off + n:
                    return (buf[0] & 0x0F, buf[off:off + n]), buf[off + n:]
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk


# ---- the database, through psql -------------------------------------------

def psql(sql, dsn):
    """Run sql; its output (tuples only, unaligned)."""
    r = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-c", sql],
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError(f"psql failed: {r.stderr.strip()}")
    return r.stdout.strip()


def stream_events(dsn, stream):
    """[(sequence_number, event_id), ...] of the stream, by es_read."""
    out = psql("SELECT coalesce(json_agg(json_build_array(sequence_number, event_id)"
               f" ORDER BY sequence_number), '[]') FROM es_read('{stream}')", dsn)
    return [tuple(x) for x in json.loads(out)]


def stream_state(dsn, stream):
    return json.loads(psql(f"SELECT es_replay('{stream}')", dsn))


def module_add(mid, x=0, y=0, **extra):
    data = {"moduleId": mid, "module": {"name": "apt"}, "position": {"x": x, "y": y}}
    data.update(extra)
    return data


def fold(events):
    """The state of a playbook from its module_add / module_move events,
    as examples/playbook.sql defines them."""
    state = {}
    for e in events:
        d = e["data"]
        if e["event_type"] == "module_add":
            for k in ("modules", "links", "plays", "variables", "roles"):
                state.setdefault(k, {})
            m = json.loads(json.dumps(d))
            m.setdefault("config", {})
            state["modules"][d["moduleId"]] = m
        elif e["event_type"] == "module_move":
            state["modules"][d["moduleId"]]["position"] = d["position"]
        else:
            raise ValueError("fold: unexpected event type " + e["event_type"])
    return state
