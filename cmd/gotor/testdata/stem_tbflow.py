#!/usr/bin/python3
"""Start gotor the way Tor Browser starts tor, through stem.

Usage: stem_tbflow.py GOTOR CONFIG_JSON CONTROL_PORT HTTP_HOST HTTP_PORT NEW_SOCKS_PORT

stem's launch_tor_with_config starts gotor with DisableNetwork 1 and
__OwningControllerProcess (take_ownership), the torrc on standard input;
stem's authenticate() then sends TAKEOWNERSHIP and RESETCONF
__OwningControllerProcess, as Tor Browser does. The script sets
DisableNetwork 0, waits for the bootstrap over STATUS_CLIENT events,
fetches through the SocksPort with per-site SOCKS credentials, adds a
SocksPort with SETCONF and fetches through it, sends NEWNYM and checks that
the same credentials then get another circuit. It prints one JSON line
and exits without closing anything: its exit is the owner going away.
"""

import json
import os
import queue
import socket
import struct
import sys
import time

import stem
import stem.control
import stem.process
from stem.control import EventType


def socks_get(port, host, hport, user, password):
    """HTTP GET /random through SOCKS5 with username/password authentication
    (RFC 1929), the name resolved by the exit. Returns the body."""
    s = socket.create_connection(("127.0.0.1", port), timeout=120)
    try:
        s.sendall(b"\x05\x01\x02")
        if s.recv(2) != b"\x05\x02":
            raise RuntimeError("SOCKS5: no username/password method")
        u, p = user.encode(), password.encode()
        s.sendall(b"\x01" + bytes([len(u)]) + u + bytes([len(p)]) + p)
        if s.recv(2) != b"\x01\x00":
            raise RuntimeError("SOCKS5: authentication refused")
        h = host.encode()
        s.sendall(b"\x05\x01\x00\x03" + bytes([len(h)]) + h + struct.pack(">H", hport))
        rep = s.recv(4)
        if len(rep) < 2 or rep[1] != 0:
            raise RuntimeError("SOCKS5 CONNECT failed: %r" % rep)
        atyp = rep[3]
        s.recv({1: 4, 4: 16}.get(atyp, 0) + 2)
        s.sendall(("GET /random HTTP/1.0\r\nHost: %s\r\n\r\n" % host).encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.") or b" 200 " not in head.split(b"\r\n")[0]:
            raise RuntimeError("HTTP: %r" % head[:80])
        return body
    finally:
        s.close()


def main():
    gotor, config, ctrl = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
    host, hport, new_socks = sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
    out = {"owner_pid": os.getpid()}
    lines = []
    proc = stem.process.launch_tor_with_config(
        config=config, tor_cmd=gotor, completion_percent=0, timeout=120,
        init_msg_handler=lines.append, take_ownership=True)
    out["gotor_pid"] = proc.pid
    out["init_lines"] = lines
    print(json.dumps({"gotor_pid": proc.pid}), flush=True)

    c = stem.control.Controller.from_port(port=ctrl)
    c.authenticate()  # stem: TAKEOWNERSHIP, RESETCONF __OwningControllerProcess
    out["owning_after_auth"] = c.get_conf("__OwningControllerProcess", "<unset>")
    out["disable_network"] = c.get_conf("DisableNetwork")
    out["phase_before"] = c.get_info("status/bootstrap-phase")
    out["socks_before"] = c.get_listeners(stem.control.Listener.SOCKS)

    events = queue.Queue()
    c.add_event_listener(lambda e: events.put(e), EventType.STATUS_CLIENT)
    streams = queue.Queue()
    c.add_event_listener(lambda e: streams.put(e), EventType.STREAM)

    start = time.time()
    c.set_conf("DisableNetwork", "0")
    progress = []
    while True:
        e = events.get(timeout=120)
        if e.action == "BOOTSTRAP":
            progress.append(int(e.keyword_args["PROGRESS"]))
            if progress[-1] == 100:
                break
    out["bootstrap_seconds"] = round(time.time() - start, 2)
    out["bootstrap_progress"] = progress
    out["phase_after"] = c.get_info("status/bootstrap-phase")
    out["circuit_established"] = c.get_info("status/circuit-established")

    socks = [p for (_, p) in c.get_listeners(stem.control.Listener.SOCKS)]
    out["socks_after"] = socks

    def fetch(port, user):
        body = socks_get(port, host, hport, user, "tb-nonce")
        circ = None
        deadline = time.time() + 30
        while circ is None and time.time() < deadline:
            e = streams.get(timeout=30)
            if e.status == "SUCCEEDED" and e.target_port == hport:
                circ = int(e.circ_id)
        return len(body), circ

    out["fetch_a"] = fetch(socks[0], "site-a.example")
    out["fetch_b"] = fetch(socks[0], "site-b.example")
    out["fetch_a_again"] = fetch(socks[0], "site-a.example")

    # A new SocksPort next to the first, as Tor Browser's settings do.
    c.set_conf("SocksPort", ["127.0.0.1:%d" % socks[0], "127.0.0.1:%d" % new_socks])
    out["socks_after_setconf"] = [p for (_, p) in c.get_listeners(stem.control.Listener.SOCKS)]
    out["fetch_new_port"] = fetch(new_socks, "site-a.example")

    c.signal(stem.Signal.NEWNYM)
    time.sleep(0.5)
    out["fetch_after_newnym"] = fetch(socks[0], "site-a.example")
    out["version"] = str(c.get_version())
    print(json.dumps(out), flush=True)
    # Exit without closing: the owner process goes away.
    os._exit(0)


if __name__ == "__main__":
    main()
