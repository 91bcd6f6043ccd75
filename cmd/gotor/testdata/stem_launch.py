#!/usr/bin/python3
"""Launch gotor with stem's launch_tor_with_config, as a controller
application would start tor, then talk to it.

Usage: stem_launch.py GOTOR CONFIG_JSON CONTROL_PORT

CONFIG_JSON maps torrc options to lists of values. Prints one JSON line
once gotor is up and checked, waits for a line on stdin (the Go test uses
gotor's SocksPort meanwhile), stops gotor and prints a second JSON line.
"""

import json
import sys
import time

import stem
import stem.control
import stem.process
import stem.version


def main():
    gotor, config, ctrl = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
    out = {}
    # launch_tor_with_config feeds the torrc on stdin ("-f -") only for a
    # tor whose --version it parses as 0.2.6.3 or later.
    version = stem.version.get_system_tor_version(gotor)
    out["system_version"] = str(version)
    out["torrc_via_stdin"] = version >= stem.version.Requirement.TORRC_VIA_STDIN
    lines = []
    start = time.time()
    proc = stem.process.launch_tor_with_config(
        config=config, tor_cmd=gotor, timeout=150, init_msg_handler=lines.append)
    out["launch_seconds"] = round(time.time() - start, 2)
    out["init_lines"] = lines
    try:
        with stem.control.Controller.from_port(port=ctrl) as c:
            c.authenticate()
            out["version"] = str(c.get_version())
            out["bootstrap_phase"] = c.get_info("status/bootstrap-phase")
            out["socks_listeners"] = c.get_listeners(stem.control.Listener.SOCKS)
            # stem closed gotor's stdout once launched: a reload logs there
            # and must not stop gotor (SIGPIPE).
            c.signal(stem.Signal.RELOAD)
            time.sleep(1)
            out["alive_after_reload"] = proc.poll() is None
            out["version_after_reload"] = c.get_info("version")
        print(json.dumps(out), flush=True)
        sys.stdin.readline()
    finally:
        proc.terminate()
        code = proc.wait(timeout=30)
    print(json.dumps({"returncode": code}), flush=True)


if __name__ == "__main__":
    main()
