#!/usr/bin/python3
"""Writes the broken-configuration corpus, tests/config-corpus/cases/, and
its manifest cases.tsv, deterministically; also copies the inputs into the
fuzz harnesses' seed corpora (tests/fuzz/corpus/*/issue13-*).

Each case is a configuration (YAML or legacy portsentry.conf), sometimes with
an ignore or defaults file beside it, and what `portsentry-nfq --check` must
say: exit status, FILE:LINE (line 0: no line) and a message fragment.
run-corpus.py replays them. Rerunning rewrites the same bytes.
"""
import os
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "cases")
FUZZ = os.path.join(HERE, "..", "fuzz", "corpus")

# Every YAML case starts with this line (a missing ignore file is fine), every
# legacy case with these three: line numbers below are relative to the body.
YBASE = b"ignore_file: none.ignore\n"
LBASE = b'IGNORE_FILE="none.ignore"\nTCP_PORTS="1,11"\nUDP_PORTS="1"\n'
DEFAULTS = b'TCP_MODE="tcp"\nUDP_MODE="udp"\n'

cases = []  # (file, content, exit, file-with-line, fragment, extra files {name: bytes or None})


def y(name, body, line, frag, exit=1, extra=None, raw=False):
    text = body if raw else YBASE + body
    off = 0 if raw else 1
    cases.append((name + ".yaml", text, exit, line + off if line else 0, frag, extra or {}))


def l(name, body, line, frag, exit=1, extra=None, raw=False):
    text = body if raw else LBASE + body
    off = 0 if raw else 3
    cases.append((name + ".conf", text, exit, line + off if line else 0, frag, extra or {}))


STOCK = open(os.path.join(HERE, "..", "data", "debian-stock", "portsentry.conf"), "rb").read()
STOCK_IGNORE = open(os.path.join(HERE, "..", "data", "debian-stock", "portsentry.ignore.static"), "rb").read()
STOCK_OK = STOCK.replace(b'IGNORE_FILE="/etc/portsentry/portsentry.ignore"', b'IGNORE_FILE="none.ignore"')
assert STOCK_OK != STOCK

# ---- inputs that could block or are not files ---------------------------------
y("fifo-as-config", b"", 0, "cannot read configuration: not a regular file", extra={"@fifo": "fifo-as-config.yaml"}, raw=True)
y("fifo-ignore", b"ignore_file: pipe\n", 0, "cannot read ignore file: not a regular file", extra={"@fifo": "pipe"}, raw=True)
l("fifo-defaults", b"", 0, "cannot read defaults file: not a regular file", extra={"@fifo": "default-portsentry"})
y("dir-ignore", b"ignore_file: adir\n", 0, "ignore file is a directory", extra={"@dir": "adir"}, raw=True)
y("devnull-ignore", b"ignore_file: /dev/null\n", 0, "cannot read ignore file: not a regular file", raw=True)

# ---- line endings and BOM ------------------------------------------------------
l("stock-cr-only", STOCK_OK.replace(b"\n", b"\r"), 0, "OK (tcp classic, udp classic)", exit=0, raw=True)
l("stock-crlf", STOCK_OK.replace(b"\n", b"\r\n"), 0, "OK (tcp classic, udp classic)", exit=0, raw=True)
l("stock-bom", b"\xef\xbb\xbf" + STOCK_OK, 0, "OK (tcp classic, udp classic)", exit=0, raw=True)
l("stock-bom-crlf", b"\xef\xbb\xbf" + STOCK_OK.replace(b"\n", b"\r\n"), 0, "OK (tcp classic, udp classic)", exit=0, raw=True)
y("ignore-bom", b"ignore_file: bom.ignore\n", 0, "OK", exit=0, extra={"bom.ignore": b"\xef\xbb\xbf" + STOCK_IGNORE}, raw=True)
y("ignore-cr-only", b"ignore_file: cr.ignore\n", 0, "OK", exit=0, extra={"cr.ignore": STOCK_IGNORE.replace(b"\n", b"\r")}, raw=True)
y("ignore-cr-bad-line3", b"ignore_file: cr.ignore\n", 0, "'300.1.1.1' is not an address", extra={"cr.ignore": b"192.0.2.1\r# c\r300.1.1.1\r"}, raw=True)
l("cr-only-error-line", b"BLOCK_TCP=\"3\"\r".replace(b"\r", b"\n") .replace(b"\n", b"\r"), 1, "BLOCK_TCP: 3 is out of range")
y("yaml-cr-only-error", b"scan_window: 1h\rscan_trigger: x\r", 2, "scan_trigger:")
y("yaml-bom", b"\xef\xbb\xbfscan_trigger: 2\n", 0, "OK", exit=0, raw=True)
y("yaml-bom-error", b"\xef\xbb\xbfscan_trigger: -2\n", 1, "scan_trigger:", raw=True)

# ---- YAML: documents and quotes ------------------------------------------------
y("two-documents-bad-keys", b"scan_trigger: 1\n---\nbogus: 1\n", 2, "a second YAML document")
y("empty-first-document", b"---\n---\ntcp: {mode: stealth, ports: [1]}\n", 2, "a second YAML document", raw=True)
y("document-end-then-more", b"scan_trigger: 1\n...\n---\nscan_trigger: 2\n", 3, "a second YAML document")
y("one-document-with-marker", b"---\nignore_file: none.ignore\nscan_trigger: 1\n...\n", 0, "OK", exit=0, raw=True)
y("unterminated-double-quote", b'kill_route: "nft-set\nscan_trigger: banana\nudp: {mode: turbo}\n', 1, "double quote opened on this line is not closed")
y("unterminated-single-quote", b"scan_trigger: 1\nport_banner: 'hello\n", 2, "single quote opened on this line is not closed")
y("quote-closed-next-line", b'port_banner: "a\n  b"\n', 1, "double quote opened on this line is not closed")
y("quote-escaped-closing", b'port_banner: "a \\" b\nscan_trigger: 1\n', 1, "double quote opened")
y("quote-ok-escapes", b"port_banner: \"a \\\" b\"\nhistory_file: 'it''s.log'\n", 0, "OK", exit=0)
y("quoted-key-unterminated", b'"scan_trigger: 1\nscan_window: 1h\n', 1, "double quote opened")

# ---- YAML: positions -----------------------------------------------------------
y("no-colon-line", b"tcp:\n  mode: stealth\n  ports: [1]\nscan_trigger = 3\nudp:\n  mode: off\n", 4, "'scan_trigger = 3' is not a 'key: value' line")
y("unclosed-bracket", b"tcp:\n  mode: stealth\n  ports: [1, 2\nudp:\n  mode: off\n", 3, "the '[' opened on this line is never closed")
y("unclosed-brace", b"scan_trigger: 1\ntcp: {mode: off\nudp:\n  mode: off\n", 2, "never closed")
y("unclosed-nested-bracket", b"tcp:\n  mode: stealth\n  ports: [1, [2\n", 3, "never closed")
y("alias-used-later", b"scan_window: &w 1h\n\n\nscan_trigger: *w\n", 4, "scan_trigger:")
y("alias-port-list-bad", b"a: &p 70000\ntcp:\n  mode: stealth\n  ports: [*p]\n", 4, "port 70000 is out of range")
y("alias-to-map-as-value", b"tcp: &t {mode: off}\nscan_trigger: *t\n", 2, "alias *t does not name a single value")
y("undefined-alias", b"scan_trigger: *nope\n", 1, "YAML syntax error")
y("tab-indent", b"tcp:\n\tmode: off\n", 2, "indented with a tab")
y("tab-indent-deeper", b"tcp:\n  mode: stealth\n\tports: [1]\n", 3, "indented with a tab")
y("deep-nesting-flow", b"scan_trigger: " + b"[" * 3000 + b"\n", 1, "nested too deeply")
y("deep-nesting-flow-map", b"scan_trigger: " + b"{a: " * 3000 + b"\n", 1, "nested too deeply")
y("illegal-map-value", b"a: b: c\n", 1, "YAML syntax error")
y("scalar-root", b"just text\n", 1, "expected a mapping of settings", raw=True)
y("list-root", b"- a\n- b\n", 1, "expected a mapping of settings", raw=True)
y("huge-list", b"tcp:\n  mode: stealth\n  ports:\n" + b"    - 1\n" * 66000, 3, "a list of more than 65536 items")
y("huge-flow-list", b"udp:\n  mode: stealth\n  ports: [" + b"1," * 66000 + b"1]\n", 3, "a list of more than 65536 items")
y("huge-skipped-list", b"junk:\n" + b"- x\n" * 66000, 2, "a list of more than 65536 items")

# ---- YAML: keys and values -----------------------------------------------------
y("unknown-key", b"scan_triger: 1\n", 1, "did you mean scan_trigger")
y("legacy-name-in-yaml", b"TCP_PORTS: [1]\n", 1, "the portsentry.conf key TCP_PORTS is tcp.ports in YAML")
y("unknown-section-key", b"tcp:\n  mdoe: stealth\n", 2, "did you mean tcp.mode")
y("section-not-map", b"tcp: stealth\n", 1, "tcp: expected a mapping of tcp settings")
y("bad-mode", b"udp: {mode: turbo}\n", 1, "udp.mode")
y("bad-steer", b"steer: warp\n", 1, "steer:")
y("duplicate-key", b"ban_time: 1h\nban_time: 2h\n", 2, "ban_time is set twice (first on line 2)")
y("bad-duration", b"ban_time: forever\n", 1, "'forever' is not a duration")
y("bad-port-item", b"tcp:\n  mode: stealth\n  ports:\n    - 1\n    - banana\n", 5, "tcp.ports: 'banana'")
y("port-zero", b"tcp:\n  mode: stealth\n  ports: [0]\n", 3, "tcp.ports:")
y("port-list-not-list", b"tcp:\n  mode: stealth\n  ports: {a: 1}\n", 3, "tcp.ports: expected")
y("map-in-port-list", b"tcp:\n  mode: stealth\n  ports: [1, {a: 1}]\n", 3, "expected a port")
y("empty-ports-stealth", b"tcp:\n  mode: stealth\n", 2, "tcp.ports is empty but TCP mode is stealth")
y("bad-ports-no-followup", b"tcp:\n  mode: stealth\n  ports: [x]\n", 3, "tcp.ports: 'x'")
y("flag-not-bool", b"resolve_host: maybe\n", 1, "resolve_host:")
y("integer-overflow", b"scan_trigger: 99999999999999999999\n", 1, "scan_trigger:")
y("negative-integer", b"queue_num: -1\n", 1, "queue_num:")
y("empty-required-path", b"history_file:\n", 1, "history_file is empty")
y("kill-run-cmd-empty-program", b"kill_run_cmd: '\"\" $TARGET$'\n", 1, "the program name is empty")
y("kill-run-cmd-unterminated", b"kill_run_cmd: '/bin/notify \"$TARGET$'\n", 1, "unterminated double quote")
y("kill-run-cmd-shell", b"kill_run_cmd: /bin/notify $TARGET$; rm -rf /\n", 1, "shell syntax")
y("kill-route-custom-no-target", b"kill_route: /usr/local/sbin/block\n", 1, "without $TARGET$")
y("kill-route-unterminated", b"kill_route: '/usr/local/sbin/block \"$TARGET$'\n", 1, "unterminated double quote")
y("hosts-deny-no-target", b"kill_hosts_deny: 'ALL: 1.2.3.4'\n", 1, "must contain $TARGET$")
y("block2-without-cmd", b"tcp:\n  mode: stealth\n  ports: [1]\n  block: 2\n", 4, "is not set")
y("banner-control-char", b'\nport_banner: "a\\x01b"\n', 2, "port_banner: control character 0x01")
y("banner-too-long", b'port_banner: "' + b"x" * 1100 + b'"\n', 1, "port_banner: 1100 bytes long")
y("banner-escape-seq", b'port_banner: "\\e[2J"\n', 1, "port_banner: control character 0x1b")
y("protect-not-flag", b"protect:\n  gateways: sometimes\n", 2, "protect.gateways:")
y("protect-unknown", b"protect:\n  dns: false\n", 2, "unknown key 'protect.dns'")
y("valid-full", b"tcp:\n  mode: stealth\n  ports: [1, 11, 6000-6010]\nudp:\n  mode: advanced\nprotect:\n  sessions: false\n", 0, "OK (tcp stealth, udp advanced)", exit=0)
y("valid-anchor-ports", b"tcp:\n  mode: stealth\n  ports: &p [1, 2]\nudp:\n  mode: stealth\n  ports: *p\n", 0, "OK (tcp stealth, udp stealth)", exit=0)

# ---- hostile bytes in YAML -----------------------------------------------------
y("escape-in-unknown-key", b"\x1b]0;pwned\x07\x1b[2J: 1\n", 1, "unknown key '\\x1b]0;pwned\\x07\\x1b[2J'")
y("c1-csi-in-key", b"a\xc2\x9bb: 1\n", 1, "a\\xc2\\x9bb")
y("invalid-utf8-in-value", b"scan_trigger: \xff\xfe\n", 1, "scan_trigger:")
y("nul-in-value", b"scan_trigger: 'a\x00b'\n", 1, "'a\\x00b' is not a number")
y("utf8-key-kept", b"sc\xc3\xa4n: 1\n", 1, "unknown key 'sc\u00e4n'")

# ---- legacy --------------------------------------------------------------------
l("missing-equals-line2", b"# ports\nTCP_PORTS \"1,11\"\nUDP_PORTS=\"1\"\n", 2, "expected '=' after TCP_PORTS", raw=True)
l("missing-equals", b"BLOCK_TCP \"1\"\n", 1, "expected '=' after BLOCK_TCP")
l("missing-quote", b"BLOCK_UDP=\"1\n", 1, "BLOCK_UDP: missing closing quote")
l("text-after-quote", b"BLOCK_UDP=\"1\" x\n", 1, "unexpected text after the closing quote")
l("unknown-key", b"TCP_PORT=\"1\"\n", 1, "did you mean TCP_PORTS")
l("yaml-only-key", b"BAN_TIME=\"1h\"\n", 1, "exists only in the YAML configuration")
l("tcp-mode-in-conf", b"TCP_MODE=\"atcp\"\n", 1, "TCP_MODE does not belong in portsentry.conf")
l("udp-mode-in-conf", b"UDP_MODE=\"audp\"\n", 1, "UDP_MODE does not belong in portsentry.conf")
l("set-twice", b"KILL_ROUTE=\"/sbin/route add -host $TARGET$ reject\"\nKILL_ROUTE=\"/sbin/iptables -I INPUT -s $TARGET$ -j DROP\"\n", 2, "KILL_ROUTE is set twice (first on line 4)")
l("block-out-of-range", b"BLOCK_TCP=\"3\"\n", 1, "BLOCK_TCP: 3 is out of range")
l("block-and-banner", b"BLOCK_TCP=\"3\"\nPORT_BANNER=\"\x01\"\n", 2, "PORT_BANNER: control character 0x01")
l("banner-too-long", b"PORT_BANNER=\"" + b"y" * 1025 + b"\"\n", 1, "PORT_BANNER: 1025 bytes long")
l("banner-esc", b"PORT_BANNER=\"\x1b[31mred\"\n", 1, "PORT_BANNER: control character 0x1b")
l("kill-run-cmd-unterminated", b"KILL_RUN_CMD=/usr/local/bin/notify \"$TARGET$\n", 1, "KILL_RUN_CMD: unterminated double quote")
l("kill-run-cmd-empty-program", b"KILL_RUN_CMD=\"\"\n", 0, "OK", exit=0)
l("kill-run-cmd-pipe", b"KILL_RUN_CMD=\"/bin/mail root | x\"\n", 1, "shell syntax")
l("kill-route-custom-unterminated", b"KILL_ROUTE=/usr/local/sbin/block \"$TARGET$\n", 1, "KILL_ROUTE: unterminated double quote")
l("kill-route-no-target", b"KILL_ROUTE=\"/usr/local/sbin/block\"\n", 1, "without $TARGET$")
l("hosts-deny-no-target", b"KILL_HOSTS_DENY=\"ALL: 1.2.3.4\"\n", 1, "must contain $TARGET$")
l("bad-port", b"ADVANCED_EXCLUDE_TCP=\"1,x\"\n", 1, "ADVANCED_EXCLUDE_TCP:")
l("bad-range", b"ADVANCED_EXCLUDE_UDP=\"10-5\"\n", 1, "ADVANCED_EXCLUDE_UDP:")
l("bad-advanced-ports", b"ADVANCED_PORTS_TCP=\"70000\"\n", 1, "ADVANCED_PORTS_TCP:")
l("bad-flag", b"RESOLVE_HOST=\"yes\"\n", 1, "RESOLVE_HOST:")
l("bad-trigger", b"SCAN_TRIGGER=\"-1\"\n", 1, "SCAN_TRIGGER:")
l("empty-ports-classic", b"IGNORE_FILE=\"none.ignore\"\nTCP_PORTS=\"\"\nUDP_PORTS=\"1\"\n", 2, "TCP_PORTS is empty but TCP mode is classic", raw=True)
l("bad-ports-no-followup", b"IGNORE_FILE=\"none.ignore\"\nTCP_PORTS=\"1,abc\"\nUDP_PORTS=\"1\"\n", 2, "TCP_PORTS: 'abc'", raw=True)
l("missing-quote-no-followup", b"IGNORE_FILE=\"none.ignore\"\nTCP_PORTS=\"1\nUDP_PORTS=\"1\"\n", 2, "TCP_PORTS: missing closing quote", raw=True)
l("junk-line", b"!!!\n", 1, "'!!!': expected KEY=\"value\"")
l("escape-in-key-line", b"\x1b]0;pwned\x07\x1b[2J=\"1\"\n", 1, "'\\x1b]0;pwned\\x07\\x1b[2J=\"1\"'")
l("nul-in-line", b"X\x00Y=\"1\"\n", 1, "expected '=' after X")
l("c1-in-value", b"BLOCK_UDP=\"\xc2\x9b\"\n", 1, "\\xc2\\x9b")
l("invalid-utf8-value", b"SCAN_TRIGGER=\"\xff\"\n", 1, "\\xff")
l("many-errors", b"x\n" * 300, 0, "\u2026 200 more".encode().decode())
l("defaults-bad-mode", b"", 1, "TCP_MODE: 'xtcp' is not a TCP mode", extra={"default-portsentry": b'TCP_MODE="xtcp"\nUDP_MODE="udp"\n'})
l("defaults-unknown", b"", 2, "unknown setting 'TCP_MDOE'", extra={"default-portsentry": b'UDP_MODE="udp"\nTCP_MDOE="tcp"\n'})
l("defaults-crlf-bom", b"", 0, "OK (tcp stealth, udp advanced)", exit=0, extra={"default-portsentry": b'\xef\xbb\xbfTCP_MODE="stcp"\r\nUDP_MODE="audp"\r\n'})
l("defaults-escape", b"", 1, "TCP_MODE: '\\x1b[2J' is not a TCP mode", extra={"default-portsentry": b'TCP_MODE="\x1b[2J"\n'})
l("ignore-bad-line", b"IGNORE_FILE=\"bad.ignore\"\nTCP_PORTS=\"1\"\nUDP_PORTS=\"1\"\n", 0, "'192.0.2.300' is not an address", extra={"bad.ignore": b"192.0.2.1\n192.0.2.300\n"}, raw=True)
l("ignore-two-per-line", b"IGNORE_FILE=\"bad.ignore\"\nTCP_PORTS=\"1\"\nUDP_PORTS=\"1\"\n", 0, "expected one address or CIDR per line", extra={"bad.ignore": b"192.0.2.1 192.0.2.2\n"}, raw=True)
l("ignore-escape", b"IGNORE_FILE=\"bad.ignore\"\nTCP_PORTS=\"1\"\nUDP_PORTS=\"1\"\n", 0, "'\\x1b]0;x\\x07' is not an address", extra={"bad.ignore": b"\x1b]0;x\x07\n"}, raw=True)
l("ignore-static-bad", b"IGNORE_FILE=\"ok.ignore\"\nTCP_PORTS=\"1\"\nUDP_PORTS=\"1\"\n", 0, "is not an address", extra={"ok.ignore": b"192.0.2.1\n", "ok.ignore.static": b"nonsense\n"}, raw=True)
l("stock-ok", STOCK_OK, 0, "OK (tcp classic, udp classic)", exit=0, raw=True)

# Where the ignore files' errors are: their own FILE:LINE, not the config's.
IGNORE_LINES = {"ignore-cr-bad-line3-yaml": ("cr.ignore", 3), "ignore-bad-line-conf": ("bad.ignore", 2),
                "ignore-two-per-line-conf": ("bad.ignore", 1), "ignore-escape-conf": ("bad.ignore", 1),
                "ignore-static-bad-conf": ("ok.ignore.static", 1), "fifo-ignore-yaml": ("pipe", 0),
                "dir-ignore-yaml": ("adir", 0), "devnull-ignore-yaml": ("/dev/null", 0)}
DEFAULTS_LINES = {"fifo-defaults-conf": 0, "defaults-bad-mode-conf": 1, "defaults-unknown-conf": 2,
                  "defaults-escape-conf": 1}


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    rows = ["# case\tconfig file\texit\tFILE:LINE (file in the case dir; line 0 = no line; - = stdout)\tfragment"]
    for fname, text, code, line, frag, extra in cases:
        name = fname.replace(".", "-")
        d = os.path.join(OUT, name)
        os.makedirs(d)
        special = []
        for k, v in extra.items():
            if k.startswith("@"):
                special.append(f"{k[1:]}={v}")
                continue
            open(os.path.join(d, k), "wb").write(v)
        if fname.endswith(".conf") and "default-portsentry" not in extra and "@fifo" not in extra:
            open(os.path.join(d, "default-portsentry"), "wb").write(DEFAULTS)
        if not (extra.get("@fifo") == fname):
            open(os.path.join(d, fname), "wb").write(text)
        where = fname
        if name in IGNORE_LINES:
            where, line = IGNORE_LINES[name]
        if name in DEFAULTS_LINES:
            where, line = "default-portsentry", DEFAULTS_LINES[name]
        if code == 0:
            where = "-"
        elif name == "many-errors-conf":
            where = "-"
        loc = where if where == "-" else f"{where}:{line}"
        rows.append("\t".join([name, fname, str(code), loc, frag] + special))
        # Seeds for the fuzz harnesses (files only; FIFOs stay runtime-made).
        if extra.get("@fifo") != fname and len(text) < 65536:  # the 66000-item lists stay out
            sub = "yaml-config" if fname.endswith(".yaml") else "legacy-config"
            open(os.path.join(FUZZ, sub, "issue13-" + fname), "wb").write(text)
        for k, v in extra.items():
            if not k.startswith("@") and k != "default-portsentry":
                open(os.path.join(FUZZ, "ignore", "issue13-" + name + "-" + k), "wb").write(v)
    open(os.path.join(HERE, "cases.tsv"), "w", encoding="utf-8").write("\n".join(rows) + "\n")
    print(f"{len(cases)} cases")


if __name__ == "__main__":
    main()
