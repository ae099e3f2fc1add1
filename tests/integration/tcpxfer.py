#!/usr/bin/env python3
"""One-shot TCP transfer with SHA-256 on both ends (integration tests).

  tcpxfer.py recv ADDR PORT OUT [--ready FILE] [--timeout S]
      listen on ADDR:PORT, accept one connection, hash everything received
      until EOF, write "<sha256> <bytes>" to OUT. FILE is created once listening.
  tcpxfer.py send ADDR PORT FILE [--timeout S] [--rate BYTES_PER_S]
      connect (retrying until the timeout), send FILE (paced to the rate if
      given, so a stream can run without saturating the path), close; prints
      "<sha256> <bytes>" of what was sent.
"""
import argparse
import hashlib
import os
import socket
import sys
import time


def recv(a):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((a.addr, a.port))
    srv.listen(1)
    srv.settimeout(a.timeout)
    if a.ready:
        open(a.ready, "w").close()
    conn, peer = srv.accept()
    conn.settimeout(a.timeout)
    h, n = hashlib.sha256(), 0
    while True:
        b = conn.recv(1 << 16)
        if not b:
            break
        h.update(b)
        n += len(b)
    conn.close()
    srv.close()
    with open(a.out + ".tmp", "w") as f:
        f.write(f"{h.hexdigest()} {n}\n")
    os.rename(a.out + ".tmp", a.out)
    print(f"received {n} bytes from {peer[0]}")


def send(a):
    deadline = time.monotonic() + a.timeout
    while True:
        try:
            s = socket.create_connection((a.addr, a.port), timeout=5)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    s.settimeout(a.timeout)
    h, n = hashlib.sha256(), 0
    start = time.monotonic()
    with open(a.file, "rb") as f:
        while True:
            b = f.read(1 << 16)
            if not b:
                break
            s.sendall(b)
            h.update(b)
            n += len(b)
            if a.rate:
                ahead = start + n / a.rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
    s.shutdown(socket.SHUT_WR)
    s.recv(1)  # wait for the receiver to close: all bytes were read
    s.close()
    print(f"{h.hexdigest()} {n}")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("recv")
    r.add_argument("addr")
    r.add_argument("port", type=int)
    r.add_argument("out")
    r.add_argument("--ready")
    r.add_argument("--timeout", type=float, default=120)
    s = sub.add_parser("send")
    s.add_argument("addr")
    s.add_argument("port", type=int)
    s.add_argument("file")
    s.add_argument("--timeout", type=float, default=120)
    s.add_argument("--rate", type=float, default=0)
    a = ap.parse_args()
    recv(a) if a.cmd == "recv" else send(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
