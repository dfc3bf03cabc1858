#!/usr/bin/python3
"""Replays the broken-configuration corpus through `portsentry-nfq --check`.

usage: run-corpus.py PORTSENTRY-NFQ [CASES.TSV]

Each case directory is copied to a scratch directory (FIFOs and directories
named in the manifest are made there), then checked with
`--check -c CONFIG --defaults default-portsentry`. A case passes when the exit
status matches, a line of output starts with FILE:LINE: (FILE: for line 0)
and contains the fragment, and no output byte could drive a terminal
(controls other than newline and tab, DEL, C1 controls, invalid UTF-8).
"""
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def terminal_safe(out):
    try:
        text = out.decode("utf-8")
    except UnicodeDecodeError as e:
        return f"invalid UTF-8 at byte {e.start}"
    for i, ch in enumerate(text):
        o = ord(ch)
        if (o < 0x20 and ch not in "\n\t") or 0x7F <= o <= 0x9F:
            return f"raw control U+{o:04X} at character {i}"
    return None


def run_case(exe, row, scratch):
    name, cfg, code, loc, frag = row[:5]
    src = os.path.join(HERE, "cases", name)
    d = os.path.join(scratch, name)
    # A case made only of a FIFO or a directory has no files: git keeps no
    # empty directory, so it may be missing in a fresh clone.
    if os.path.isdir(src):
        shutil.copytree(src, d)
    else:
        os.makedirs(d)
    for spec in row[5:]:
        kind, path = spec.split("=", 1)
        if kind == "fifo":
            os.mkfifo(os.path.join(d, path))
        elif kind == "dir":
            os.mkdir(os.path.join(d, path))
    cmd = [exe, "--check", "-c", os.path.join(d, cfg), "--defaults", os.path.join(d, "default-portsentry")]
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=30, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    except subprocess.TimeoutExpired:
        return "timed out (an input blocked?)"
    out = p.stdout + p.stderr
    if (why := terminal_safe(out)) is not None:
        return f"output not terminal-safe: {why}: {out[:300]!r}"
    text = out.decode("utf-8")
    if int(code) == 0 and p.returncode == 1 and os.geteuid() == 0 and "kernel" in p.stderr.decode() \
            and frag in p.stdout.decode():
        print(f"  note {name}: files OK; this kernel refuses the ruleset: {p.stderr.decode().strip()}")
        return None
    if p.returncode != int(code):
        return f"exit {p.returncode}, expected {code}: {text[:600]}"
    if loc == "-":
        return None if frag in text else f"no '{frag}' in: {text[:600]}"
    file, line = loc.rsplit(":", 1)
    path = file if file.startswith("/") else os.path.join(d, file)
    prefix = f"{path}: " if line == "0" else f"{path}:{line}: "
    for ln in text.splitlines():
        if ln.startswith(prefix) and frag in ln:
            return None
    return f"no line starting '{prefix}' with '{frag}' in:\n{text[:1200]}"


def main():
    exe = os.path.abspath(sys.argv[1])
    tsv = sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, "cases.tsv")
    rows = [l.rstrip("\n").split("\t") for l in open(tsv, encoding="utf-8") if l.strip() and not l.startswith("#")]
    failed = 0
    with tempfile.TemporaryDirectory(prefix="ps-corpus-") as scratch:
        for row in rows:
            why = run_case(exe, row, scratch)
            if why:
                failed += 1
                print(f"FAIL {row[0]}: {why}")
    print(f"{len(rows) - failed}/{len(rows)} cases pass")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
