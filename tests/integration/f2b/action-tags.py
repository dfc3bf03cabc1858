#!/usr/bin/python3
"""Renders etc/fail2ban/action.d/portsentry-nfq.conf with fail2ban's own
config reader and CommandAction (the code fail2ban-server runs), bans and
unbans through it with a stand-in binary that records its argv, and checks
the exact command lines: the bantime mapping (-1 -> 0 = permanent, whole
seconds, fractions rounded up, never to 0), IPv4/IPv6 addresses, the
socket (given, or empty: none passed), origin and extra options parameters.

Usage: action-tags.py ACTION_FILE    (no root, no network; exit 0 = pass)
"""
import os
import shutil
import stat
import sys
import tempfile

from fail2ban.client.actionreader import ActionReader
from fail2ban.server.action import CommandAction


def main(action_file):
    tmp = tempfile.mkdtemp(prefix="f2b-action-")
    try:
        os.mkdir(os.path.join(tmp, "action.d"))
        shutil.copy(action_file, os.path.join(tmp, "action.d", "portsentry-nfq.conf"))
        calls = os.path.join(tmp, "calls")
        fake = os.path.join(tmp, "portsentry-nfq")
        # One line per call, arguments separated by '|' (none contain one).
        with open(fake, "w") as f:
            f.write('#!/bin/sh\nprintf "%%s|" "$@" >>"%s"; echo >>"%s"\n' % (calls, calls))
        os.chmod(fake, stat.S_IRWXU)

        def make_action(params):
            reader = ActionReader("portsentry-nfq", "sshd", params, basedir=tmp)
            if not reader.read():
                raise SystemExit("FAIL: fail2ban could not read the action file")
            reader.getOptions({})
            act = CommandAction(None, "portsentry-nfq")
            for cmd in reader.convert():
                if cmd[0] == "multi-set":
                    for key, value in cmd[4]:
                        setattr(act, key, value)
            return act

        action = make_action({"portsentry_nfq": fake, "control_socket": "/run/ps test.sock",
                              "options": "-c /etc/portsentry/portsentry.conf"})

        sock = ["--control-socket", "/run/ps test.sock", "-c", "/etc/portsentry/portsentry.conf"]
        cases = [  # (bantime fail2ban passes, --time we expect)
            (3600, "3600"), (-1, "0"), (-5, "0"), (0.4, "1"), (2.5, "3"), (60.0, "60"), (90.05, "91"), (7, "7")]
        want = []
        for bantime, t in cases:
            action.ban({"ip": "198.51.100.5", "family": "inet4", "bantime": bantime})
            want.append(["ban", "198.51.100.5", "--time", t, "--origin", "fail2ban"] + sock)
        action.ban({"ip": "2001:db8::5", "family": "inet6", "bantime": 600})
        want.append(["ban", "2001:db8::5", "--time", "600", "--origin", "fail2ban"] + sock)
        action.unban({"ip": "2001:db8::5", "family": "inet6", "bantime": 600})
        want.append(["unban", "2001:db8::5"] + sock)
        # Defaults: no --control-socket, no options: the binary finds the
        # config (and its socket) by the same rule as the daemon.
        plain = make_action({"portsentry_nfq": fake})
        plain.ban({"ip": "198.51.100.6", "family": "inet4", "bantime": 60})
        want.append(["ban", "198.51.100.6", "--time", "60", "--origin", "fail2ban"])
        plain.unban({"ip": "198.51.100.6", "family": "inet4", "bantime": 60})
        want.append(["unban", "198.51.100.6"])

        with open(calls) as f:
            got = [line.rstrip("\n").rstrip("|").split("|") for line in f]
        fails = 0
        for i in range(max(len(got), len(want))):
            g = got[i] if i < len(got) else None
            w = want[i] if i < len(want) else None
            if g != w:
                print("FAIL call %d: got %s, want %s" % (i + 1, g, w))
                fails += 1
        if fails == 0:
            print("ok: %d commands as expected (bantime -1 -> 0, fractions round up)" % len(want))
        return 1 if fails else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
