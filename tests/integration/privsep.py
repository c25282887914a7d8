#!/usr/bin/env python3
"""Helpers of privsep.sh (least privilege checks on live hub processes).

  privsep.py seed KEYFILE PID...   print the pids whose readable memory
                                   holds the ledger key's 32-byte seed
  privsep.py listeners PID         print the listening sockets PID holds,
                                   one a line: tcp:PORT or unix:BASENAME
"""
import base64, os, sys

BIG = 1 << 30   # sanitizer shadow maps: terabytes of zero pages, no data


def holds(pid, needle):
    try:
        maps = open(f"/proc/{pid}/maps").read().splitlines()
        mem = open(f"/proc/{pid}/mem", "rb", buffering=0)
    except OSError:
        return False
    with mem:
        for line in maps:
            parts = line.split()
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            if "r" not in parts[1] or hi - lo > BIG:
                continue
            if len(parts) > 5 and parts[5] in ("[vvar]", "[vsyscall]"):
                continue
            pos, carry = lo, b""
            while pos < hi:
                n = min(1 << 22, hi - pos)
                try:
                    mem.seek(pos)
                    chunk = mem.read(n)
                except OSError:
                    chunk = b""
                if not chunk:
                    carry = b""
                    pos += n
                    continue
                if needle in carry + chunk:
                    return True
                carry = chunk[-(len(needle) - 1):]
                pos += len(chunk)
    return False


def seed(keyfile, pids):
    sk = base64.b64decode(open(keyfile).read().strip())
    assert len(sk) == 64, "not a 64-byte secret key"
    needle = sk[:32]
    for pid in pids:
        if holds(int(pid), needle):
            print(pid)


def listeners(pid):
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            t = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if t.startswith("socket:["):
            inodes.add(t[8:-1])
    out = set()
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = open(f).read().splitlines()[1:]
        except OSError:
            continue
        for r in rows:
            c = r.split()
            if c[3] == "0A" and c[9] in inodes:
                out.add("tcp:%d" % int(c[1].split(":")[1], 16))
    for r in open("/proc/net/unix").read().splitlines()[1:]:
        c = r.split()
        # Flags 00010000: __SO_ACCEPTCON, a listening socket.
        if len(c) >= 8 and c[3] == "00010000" and c[6] in inodes:
            out.add("unix:" + os.path.basename(c[7]))
    for x in sorted(out):
        print(x)


if __name__ == "__main__":
    if sys.argv[1] == "seed":
        seed(sys.argv[2], sys.argv[3:])
    elif sys.argv[1] == "listeners":
        listeners(sys.argv[2])
    else:
        sys.exit("usage: privsep.py seed KEYFILE PID... | listeners PID")
