#!/usr/bin/env python3
"""Packets of every size through the tunnel, checked byte for byte (integration tests).

  sweep.py udp-echo ADDR PORT [--ready FILE] [--timeout S]
      echo every UDP datagram received on ADDR:PORT back to its sender until
      nothing arrives for the timeout.
  sweep.py udp ADDR PORT --sizes A-B[,C-D...] [--marker TEXT] [--timeout S]
      send one datagram of each payload size to the echo server and check that
      the echo is identical (a lost datagram is resent up to 5 times, counted).
  sweep.py icmp ADDR --sizes A-B[,...] [--marker TEXT] [--timeout S]
      the same with ICMP echo requests (raw socket, root): the destination's
      kernel answers, and the reply's payload must equal the request's.

The payload of size n is a deterministic pattern that depends on n (and starts
with the marker when given, for the no-plaintext capture). Prints one summary
line "<kind>: <sizes> sizes ok, <resent> resent"; exits 1 naming the first size
that failed.
"""
import argparse
import hashlib
import os
import select
import socket
import struct
import sys
import time


def sizes(spec):
    out = []
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def payload(n, marker):
    seed = marker.encode()
    block = b""
    counter = 0
    while len(block) < n:
        block += hashlib.sha256(b"%d:%d" % (n, counter)).digest()
        counter += 1
    return (seed + block)[:n] if n >= len(seed) else block[:n]


def udp_echo(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((a.addr, a.port))
    if a.ready:
        open(a.ready, "w").close()
    s.settimeout(a.timeout)
    try:
        while True:
            data, peer = s.recvfrom(65535)
            s.sendto(data, peer)
    except socket.timeout:
        pass


def exchange(send, receive, wanted, n, deadline):
    """Sends until an identical answer arrives; returns resends, or None at the deadline."""
    for attempt in range(6):
        send()
        wait_until = min(deadline, time.monotonic() + 0.5 * (attempt + 1))
        while time.monotonic() < wait_until:
            got = receive(max(0.0, wait_until - time.monotonic()))
            if got is None:
                continue
            if got == wanted:
                return attempt
            if got[0] == n:
                raise SystemExit(f"size {n}: answer differs from what was sent "
                                 f"({len(got[1])} bytes back, first difference at "
                                 f"{next((i for i, (x, y) in enumerate(zip(got[1], wanted[1])) if x != y), min(len(got[1]), len(wanted[1])))})")
        if time.monotonic() >= deadline:
            return None
    return None


def udp_sweep(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.connect((a.addr, a.port))
    deadline = time.monotonic() + a.timeout
    resent = 0
    todo = sizes(a.sizes)
    for n in todo:
        data = payload(n, a.marker)

        def receive(wait):
            r, _, _ = select.select([s], [], [], wait)
            if not r:
                return None
            got = s.recv(65535)
            return (len(got), got)

        r = exchange(lambda: s.send(data), receive, (n, data), n, deadline)
        if r is None:
            raise SystemExit(f"udp: no echo for size {n} before the deadline")
        resent += r
    print(f"udp: {len(todo)} sizes ok, {resent} resent")


def checksum(b):
    if len(b) % 2:
        b += b"\0"
    total = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def icmp_sweep(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    ident = os.getpid() & 0xFFFF
    deadline = time.monotonic() + a.timeout
    resent = 0
    todo = sizes(a.sizes)
    for n in todo:
        data = payload(n, a.marker)
        seq = n & 0xFFFF
        head = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
        message = head[:2] + struct.pack("!H", checksum(head + data)) + head[4:] + data

        def receive(wait):
            r, _, _ = select.select([s], [], [], wait)
            if not r:
                return None
            packet = s.recv(65535)
            ihl = (packet[0] & 0x0F) * 4
            icmp = packet[ihl:]
            if len(icmp) < 8:
                return None
            kind, _, _, rid, rseq = struct.unpack("!BBHHH", icmp[:8])
            if kind != 0 or rid != ident or rseq != seq:
                return None
            return (n, icmp[8:])

        r = exchange(lambda: s.sendto(message, (a.addr, 0)), receive, (n, data), n, deadline)
        if r is None:
            raise SystemExit(f"icmp: no reply for size {n} before the deadline")
        resent += r
    print(f"icmp: {len(todo)} sizes ok, {resent} resent")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["udp-echo", "udp", "icmp"])
    p.add_argument("addr")
    p.add_argument("port", type=int, nargs="?", default=0)
    p.add_argument("--sizes", default="1-1372")
    p.add_argument("--marker", default="")
    p.add_argument("--ready")
    p.add_argument("--timeout", type=float, default=60)
    a = p.parse_args()
    {"udp-echo": udp_echo, "udp": udp_sweep, "icmp": icmp_sweep}[a.mode](a)


if __name__ == "__main__":
    sys.exit(main())
