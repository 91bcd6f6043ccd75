#!/usr/bin/env python3
"""Interop check of a Tor control port with stem (control-spec §3, §4.1).

Usage:
  stem_check.py --port 9051 [--host 127.0.0.1] [--password foo]
                [--expect-cookie] [--wait-events SECONDS]
                [--expect-fake | --socks-port N --stream-port N]

Two targets: gotor's control server with the fake test backend
(--expect-fake: the fake's exact values are checked), or a running gotor
client (--socks-port: its SOCKS port; --stream-port: the port of the
target the test keeps streams open to). Every check compares with a
value the test set up; none passes by construction. Prints one line per
check and exits non-zero if any check failed.
"""

import argparse
import re
import sys
import tempfile
import threading

import stem
import stem.connection
import stem.control
import stem.descriptor.microdescriptor
from stem import Signal
from stem.control import EventType

failures = []
FP = re.compile(r"^[0-9A-F]{40}$")


def check(name, cond, detail=""):
    print("%s %s%s" % ("ok  " if cond else "FAIL", name, (": " + str(detail)) if detail else ""))
    if not cond:
        failures.append(name)


def connect(args):
    return stem.control.Controller.from_port(address=args.host, port=args.port)


def authentication(args):
    """PROTOCOLINFO, COOKIE, SAFECOOKIE, password, a wrong password."""
    with connect(args) as c:
        pi = stem.connection.get_protocolinfo(c)
        methods = set(pi.auth_methods)
        check("protocolinfo version 1", pi.protocol_version == 1, pi.protocol_version)
        check("protocolinfo tor version", str(pi.tor_version).startswith("0.4.9"), pi.tor_version)
        want = set()
        if args.expect_cookie:
            want |= {stem.connection.AuthMethod.COOKIE, stem.connection.AuthMethod.SAFECOOKIE}
        if args.password is not None:
            want.add(stem.connection.AuthMethod.PASSWORD)
        check("protocolinfo methods", methods == want, sorted(methods))
        cookie_path = pi.cookie_path
        if args.expect_cookie:
            check("protocolinfo cookie file", bool(cookie_path) and cookie_path.startswith("/"), cookie_path)

    if args.expect_cookie:
        for name, auth in (("COOKIE", stem.connection.authenticate_cookie),
                           ("SAFECOOKIE", stem.connection.authenticate_safecookie)):
            with connect(args) as c:
                try:
                    auth(c, cookie_path)
                    check("authenticate " + name, c.get_info("version") == args.version, c.get_info("version"))
                except stem.connection.AuthenticationFailure as e:
                    check("authenticate " + name, False, repr(e))
        # A cookie of the right length with the wrong bytes is refused.
        with open(cookie_path, "rb") as f:
            wrong = bytes(b ^ 0xFF for b in f.read())
        with tempfile.NamedTemporaryFile() as tf:
            tf.write(wrong)
            tf.flush()
            with connect(args) as c:
                try:
                    stem.connection.authenticate_cookie(c, tf.name)
                    check("wrong cookie refused", False, "accepted")
                except stem.connection.AuthenticationFailure as e:
                    check("wrong cookie refused", isinstance(e, stem.connection.IncorrectCookieValue), type(e).__name__)

    if args.password is not None:
        with connect(args) as c:
            try:
                stem.connection.authenticate_password(c, args.password)
                check("authenticate password", c.get_info("version") == args.version, c.get_info("version"))
            except stem.connection.AuthenticationFailure as e:
                check("authenticate password", False, repr(e))
        c = connect(args)
        try:
            stem.connection.authenticate_password(c, args.password + "-wrong")
            check("wrong password refused", False, "accepted")
        except stem.connection.AuthenticationFailure as e:
            check("wrong password refused", isinstance(e, stem.connection.IncorrectPassword), type(e).__name__)
        # Tor closes the connection after a failed AUTHENTICATE.
        try:
            c.get_info("version")
            check("connection closed after a wrong password", False, "still answers")
        except (stem.SocketClosed, stem.ProtocolError, stem.OperationFailed) as e:
            check("connection closed after a wrong password", True, type(e).__name__)
        finally:
            c.close()


def state(c, args):
    """Version, bootstrap, listeners, circuits, streams, configuration."""
    check("get_info('version')", c.get_info("version") == args.version, c.get_info("version"))
    v = c.get_version()
    check("get_version()", (v.major, v.minor, v.micro) == (0, 4, 9), str(v))
    phase = c.get_info("status/bootstrap-phase")
    check("bootstrap done", phase == 'NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY="Done"', phase)
    check("circuit established", c.get_info("status/circuit-established") == "1")

    socks = c.get_listeners(stem.control.Listener.SOCKS)
    if args.expect_fake:
        check("get_listeners(SOCKS)", socks == [("127.0.0.1", 9050)], socks)
    else:
        check("get_listeners(SOCKS)", socks == [("127.0.0.1", args.socks_port)], socks)
    ctrl = c.get_listeners(stem.control.Listener.CONTROL)
    check("get_listeners(CONTROL)", ("127.0.0.1", args.port) in ctrl, ctrl)

    circs = c.get_circuits()
    built = [x for x in circs if x.status == "BUILT"]
    if args.expect_fake:
        check("fake circuit 1", len(circs) == 2 and circs[0].id == "1" and circs[0].status == "BUILT"
              and len(circs[0].path) == 3 and circs[0].path[2][1] == "exit3"
              and circs[0].purpose == "GENERAL" and circs[0].socks_username == "alice"
              and circs[0].created is not None, circs and circs[0])
    else:
        check("a built 3-hop circuit", any(len(x.path) == 3 for x in built),
              ["%s %s %d hops" % (x.id, x.status, len(x.path)) for x in circs])
        # Every hop is a relay of the consensus stem can read.
        for x in built[:3]:
            for fp, nick in x.path:
                try:
                    ns = c.get_network_status(fp)
                    ok = ns.fingerprint == fp and ns.nickname == nick
                except stem.ControllerError as e:
                    ok, ns = False, e
                check("circuit %s hop %s in the consensus" % (x.id, nick), ok, ns)
    streams = c.get_streams()
    if args.expect_fake:
        check("fake stream 7", len(streams) == 1 and streams[0].id == "7" and streams[0].status == "SUCCEEDED"
              and streams[0].target_address == "example.com" and streams[0].target_port == 443, streams)
    else:
        mine = [s for s in streams if s.target_port == args.stream_port]
        check("the test's streams listed", len(mine) > 0 and all(s.status == "SUCCEEDED" for s in mine),
              ["%s %s %s %s" % (s.id, s.status, s.circ_id, s.target) for s in streams])
        ids = {x.id for x in circs}
        check("streams on listed circuits", all(s.circ_id in ids for s in mine), [(s.id, s.circ_id) for s in mine])

    if args.expect_fake:
        check("get_conf('SocksPort')", c.get_conf("SocksPort") == "127.0.0.1:9050", c.get_conf("SocksPort"))
    else:
        check("get_conf('SocksPort')", c.get_conf("SocksPort") == "127.0.0.1:%d" % args.socks_port, c.get_conf("SocksPort"))
        # SETCONF, GETCONF, RESETCONF round trip on a live option.
        c.set_conf("MaxCircuitDirtiness", "300")
        check("set_conf MaxCircuitDirtiness", c.get_conf("MaxCircuitDirtiness") == "300", c.get_conf("MaxCircuitDirtiness"))
        c.reset_conf("MaxCircuitDirtiness")
        check("reset_conf MaxCircuitDirtiness", c.get_conf("MaxCircuitDirtiness") == "600", c.get_conf("MaxCircuitDirtiness"))
        try:
            c.set_conf("DataDirectory", "/nowhere")
            check("set_conf DataDirectory refused", False, "accepted")
        except stem.InvalidArguments as e:
            # stem words the refusal of an option it knows is immutable.
            check("set_conf DataDirectory refused", e.arguments == ["DataDirectory"], e)
        check("DataDirectory unchanged", c.get_conf("DataDirectory") != "/nowhere", c.get_conf("DataDirectory"))
        check("config-text", "SocksPort 127.0.0.1:%d" % args.socks_port in c.get_info("config-text").splitlines(),
              c.get_info("config-text"))
        user = c.get_user()
        check("get_user()", bool(user), user)
        check("get_pid()", c.get_pid() > 0, c.get_pid())
        # A client has no exit policy of its own: stem falls back to the
        # torrc and GETINFO exit-policy/default, as it does with C tor.
        policy = c.get_exit_policy()
        check("get_exit_policy() of a client is C tor's default", policy.can_exit_to(port=80) and not policy.can_exit_to(port=25)
              and str(policy).endswith("accept *:*"), policy)
        guards = c.get_info("entry-guards").splitlines()
        check("entry-guards", len(guards) > 0 and all(re.match(r"^\$[0-9A-F]{40}(~\w+)? (up|down|never-connected|unusable)", g) for g in guards)
              and any(g.split()[1] == "up" for g in guards), guards)
        fp = built[0].path[0][0] if built else ""
        try:
            md = c.get_microdescriptor(fp)
            check("get_microdescriptor(guard)", isinstance(md, stem.descriptor.microdescriptor.Microdescriptor)
                  and md.ntor_onion_key is not None, md.ntor_onion_key)
        except stem.ControllerError as e:
            check("get_microdescriptor(guard)", False, e)

    check("get_conf unknown -> default", c.get_conf("NoSuchOptionXyz", "dflt") == "dflt")
    try:
        c.get_conf("NoSuchOptionXyz")
        check("get_conf unknown raises", False, "answered")
    except stem.InvalidArguments as e:
        check("get_conf unknown raises", "nosuchoptionxyz" in str(e).lower(), e)

    read, written = int(c.get_info("traffic/read")), int(c.get_info("traffic/written"))
    if args.expect_fake:
        check("traffic/read counts the fake's traffic", read >= 1000, read)
    else:
        check("traffic counted", read > 0 and written > 0, "%d read, %d written" % (read, written))


def events(c, args):
    """CIRC, STREAM, BW events while streams run; SIGNAL NEWNYM."""
    got = {"CIRC": [], "STREAM": [], "BW": [], "SIGNAL": []}
    lock = threading.Lock()
    have = threading.Event()

    def wanted_stream(e):
        if args.expect_fake:
            return True
        return e.status == "SUCCEEDED" and e.target_port == args.stream_port

    def listener(event):
        with lock:
            got.setdefault(event.type, []).append(event)
            if got["CIRC"] and any(wanted_stream(e) for e in got["STREAM"]) and got["BW"] and got["SIGNAL"]:
                have.set()

    c.add_event_listener(listener, EventType.CIRC, EventType.STREAM, EventType.BW, EventType.SIGNAL)
    try:
        c.signal(Signal.NEWNYM)
        check("signal(NEWNYM) accepted", True)
    except stem.ControllerError as e:
        check("signal(NEWNYM) accepted", False, repr(e))
    have.wait(args.wait_events)
    c.remove_event_listener(listener)
    with lock:
        n = {k: len(v) for k, v in got.items()}
        circs, streams, bws, sigs = list(got["CIRC"]), list(got["STREAM"]), list(got["BW"]), list(got["SIGNAL"])
    check("received CIRC, STREAM, BW and SIGNAL events", all(n[k] > 0 for k in ("CIRC", "STREAM", "BW", "SIGNAL")), n)
    check("SIGNAL NEWNYM event", any(s.signal == Signal.NEWNYM for s in sigs), [s.signal for s in sigs])
    states = {"LAUNCHED", "BUILT", "EXTENDED", "FAILED", "CLOSED", "GUARD_WAIT"}
    check("CIRC events parsed", bool(circs) and all(e.status in states and e.purpose in ("GENERAL", "CONTROLLER")
                                                     and all(FP.match(fp) for fp, _ in e.path) for e in circs),
          ["%s %s %s" % (e.id, e.status, e.purpose) for e in circs[:5]])
    sstates = {"NEW", "NEWRESOLVE", "REMAP", "SENTCONNECT", "SENTRESOLVE", "SUCCEEDED", "FAILED", "CLOSED", "DETACHED"}
    if args.expect_fake:
        ok = bool(streams) and all(e.status == "SUCCEEDED" and e.target_port == 443 for e in streams)
        kw = streams[0].keyword_args if streams else {}
        check("STREAM isolation fields", kw.get("SOCKS_USERNAME") == "alice" and kw.get("CLIENT_PROTOCOL") == "SOCKS5", kw)
    else:
        ok = any(e.status == "SUCCEEDED" and e.target_port == args.stream_port and e.circ_id for e in streams)
        ok = ok and all(e.status in sstates for e in streams)
    check("STREAM events parsed", ok, ["%s %s %s %s" % (e.id, e.status, e.circ_id, e.target) for e in streams[:5]])
    if not args.expect_fake:
        check("BW events count the streams' bytes", any(e.read > 0 for e in bws), [(e.read, e.written) for e in bws[:5]])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--password")
    p.add_argument("--expect-cookie", action="store_true")
    p.add_argument("--wait-events", type=float, default=10.0)
    p.add_argument("--expect-fake", action="store_true")
    p.add_argument("--socks-port", type=int)
    p.add_argument("--stream-port", type=int)
    p.add_argument("--version", default="0.4.9.0-gotor")
    args = p.parse_args()
    if not args.expect_fake and (args.socks_port is None or args.stream_port is None):
        p.error("a real client needs --socks-port and --stream-port")

    authentication(args)
    c = connect(args)
    try:
        c.authenticate(password=args.password)
        check("authenticate()", c.is_authenticated())
        state(c, args)
        events(c, args)
    finally:
        c.close()
    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
