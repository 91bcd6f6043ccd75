#!/usr/bin/env python3
"""Interop check of a Tor control port with stem (control-spec §3, §4.1).

Usage:
  stem_check.py --port 9051 [--host 127.0.0.1] [--password foo]
                [--cookie-file PATH] [--wait-events SECONDS]
                [--require-events] [--expect-fake]

Runs against C tor, gotor with the fake test backend (--expect-fake also
checks the fake's exact values) or the real gotor client. Prints one line
per check and exits non-zero if any check failed.
"""

import argparse
import sys
import threading
import time

import stem
import stem.connection
import stem.control
from stem import Signal
from stem.control import EventType

failures = []


def check(name, cond, detail=""):
    print("%s %s%s" % ("ok  " if cond else "FAIL", name, (": " + str(detail)) if detail else ""))
    if not cond:
        failures.append(name)


def connect(args):
    return stem.control.Controller.from_port(address=args.host, port=args.port)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--password")
    p.add_argument("--cookie-file")
    p.add_argument("--wait-events", type=float, default=10.0)
    p.add_argument("--require-events", action="store_true")
    p.add_argument("--expect-fake", action="store_true")
    args = p.parse_args()

    # PROTOCOLINFO as stem sees it.
    with connect(args) as c:
        pi = stem.connection.get_protocolinfo(c)
        methods = set(pi.auth_methods)
        check("protocolinfo", pi.protocol_version == 1, "methods=%s cookie=%s tor=%s" % (
            sorted(m for m in methods), pi.cookie_path, pi.tor_version))
        cookie_path = args.cookie_file or pi.cookie_path

    # Cookie authentication (plain COOKIE, then SAFECOOKIE).
    if stem.connection.AuthMethod.COOKIE in methods and cookie_path:
        with connect(args) as c:
            try:
                stem.connection.authenticate_cookie(c, cookie_path)
                check("authenticate COOKIE", c.get_info("version") != "")
            except stem.connection.AuthenticationFailure as e:
                check("authenticate COOKIE", False, repr(e))
        with connect(args) as c:
            try:
                stem.connection.authenticate_safecookie(c, cookie_path)
                check("authenticate SAFECOOKIE", c.get_info("version") != "")
            except stem.connection.AuthenticationFailure as e:
                check("authenticate SAFECOOKIE", False, repr(e))
    else:
        print("skip cookie authentication (not offered)")

    # Password authentication, right and wrong.
    if args.password is not None:
        with connect(args) as c:
            try:
                stem.connection.authenticate_password(c, args.password)
                check("authenticate password", c.get_info("version") != "")
            except stem.connection.AuthenticationFailure as e:
                check("authenticate password", False, repr(e))
        with connect(args) as c:
            try:
                stem.connection.authenticate_password(c, args.password + "-wrong")
                check("wrong password refused", False, "accepted")
            except stem.connection.PasswordAuthRejected as e:
                check("wrong password refused", True, type(e).__name__)
            except stem.connection.AuthenticationFailure as e:
                check("wrong password refused", True, type(e).__name__)

    # The full Controller API through stem's generic authenticate().
    c = connect(args)
    try:
        c.authenticate(password=args.password)
        check("authenticate()", c.is_authenticated())

        version = c.get_info("version")
        check("get_info('version')", bool(version), version)
        v = c.get_version()
        check("get_version()", v.major == 0, str(v))

        phase = c.get_info("status/bootstrap-phase")
        check("get_info('status/bootstrap-phase')",
              phase.startswith("NOTICE BOOTSTRAP PROGRESS=") or phase.startswith("WARN BOOTSTRAP PROGRESS="), phase)
        if args.expect_fake:
            check("bootstrap done", phase == 'NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY="Done"', phase)

        try:
            socks = c.get_listeners(stem.control.Listener.SOCKS)
            check("get_listeners(SOCKS)", isinstance(socks, list), socks)
        except stem.ControllerError as e:
            check("get_listeners(SOCKS)", False, repr(e))

        circs = c.get_circuits()
        check("get_circuits()", isinstance(circs, list), ["%s %s %d hops" % (x.id, x.status, len(x.path)) for x in circs])
        if args.expect_fake:
            check("fake circuit 1", len(circs) >= 1 and circs[0].id == "1" and circs[0].status == "BUILT"
                  and len(circs[0].path) == 3 and circs[0].path[2][1] == "exit3"
                  and circs[0].purpose == "GENERAL" and circs[0].socks_username == "alice"
                  and circs[0].created is not None, circs and circs[0])

        streams = c.get_streams()
        check("get_streams()", isinstance(streams, list), ["%s %s %s %s" % (s.id, s.status, s.circ_id, s.target) for s in streams])
        if args.expect_fake:
            check("fake stream 7", len(streams) == 1 and streams[0].id == "7" and streams[0].status == "SUCCEEDED"
                  and streams[0].target_address == "example.com" and streams[0].target_port == 443, streams)

        socksport = c.get_conf("SocksPort", None)
        check("get_conf('SocksPort')", True, socksport)
        check("get_conf unknown -> default", c.get_conf("NoSuchOptionXyz", "dflt") == "dflt")

        read = int(c.get_info("traffic/read"))
        check("get_info('traffic/read')", read >= 0, read)

        # Events: subscribe, NEWNYM, wait for CIRC and STREAM.
        got = {"CIRC": [], "STREAM": [], "BW": []}
        lock = threading.Lock()
        have = threading.Event()

        def listener(event):
            with lock:
                got.setdefault(event.type, []).append(event)
                if got["CIRC"] and got["STREAM"]:
                    have.set()

        c.add_event_listener(listener, EventType.CIRC, EventType.STREAM, EventType.BW)
        try:
            c.signal(Signal.NEWNYM)
            check("signal(NEWNYM)", True)
        except stem.ControllerError as e:
            check("signal(NEWNYM)", False, repr(e))

        have.wait(args.wait_events)
        with lock:
            ncirc, nstream, nbw = len(got["CIRC"]), len(got["STREAM"]), len(got["BW"])
            sample_c = got["CIRC"][0] if got["CIRC"] else None
            sample_s = got["STREAM"][0] if got["STREAM"] else None
        detail = "CIRC=%d STREAM=%d BW=%d" % (ncirc, nstream, nbw)
        if args.require_events or args.expect_fake:
            check("received CIRC and STREAM events", ncirc > 0 and nstream > 0, detail)
        else:
            print("info events " + detail)
        if sample_c is not None:
            check("CIRC event parsed", sample_c.id is not None and sample_c.status is not None,
                  "%s %s path=%s purpose=%s" % (sample_c.id, sample_c.status, sample_c.path, sample_c.purpose))
        if sample_s is not None:
            check("STREAM event parsed", sample_s.id is not None and sample_s.target is not None,
                  "%s %s circ=%s target=%s source_addr=%s" % (sample_s.id, sample_s.status, sample_s.circ_id,
                                                             sample_s.target, sample_s.source_address))
        if args.expect_fake and sample_s is not None:
            kw = sample_s.keyword_args
            check("STREAM isolation fields", kw.get("SOCKS_USERNAME") == "alice"
                  and kw.get("CLIENT_PROTOCOL") == "SOCKS5", kw)
        c.remove_event_listener(listener)
    finally:
        c.close()

    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
