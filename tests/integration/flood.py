#!/usr/bin/env python3
"""Flood a quantum node with valid-looking handshake initiations (handshake_flood case).

Sends --count initiations evenly over --seconds to --to:--port, from --sockets source
ports spread over the --sources addresses. Each is what a worker cannot tell from a real one without Diffie-Hellman: type 1,
zero reserved bytes, 148 bytes, a valid mac1 for the target's static public key
(--public-key, base64, as in its etcd mapping), random sender index, ephemeral key and
encrypted fields, zero mac2. With --replay PCAP, every --replay-every-th packet is
instead a real initiation captured in PCAP (sent to --port), resent as it was.
Prints one line of figures at the end: sent, replays, seconds, rate.
"""
import argparse
import base64
import hashlib
import hmac
import os
import socket
import sys
import time

from pcap_replay import udp_payloads

INITIATION = 1
INITIATION_SIZE = 148
MAC_SIZE = 16
MAC1_OFFSET = INITIATION_SIZE - 2 * MAC_SIZE


def mac1_key(public_key):
    return hashlib.sha256(b"mac1----" + public_key).digest()


def initiation(key):
    """A random initiation with a valid mac1 under `key` and a zero mac2."""
    body = bytes([INITIATION, 0, 0, 0]) + os.urandom(MAC1_OFFSET - 4)
    mac1 = hmac.new(key, body, hashlib.sha256).digest()[:MAC_SIZE]
    return body + mac1 + bytes(MAC_SIZE)


def captured_initiations(path, port):
    return [p for _, _, p in udp_payloads(path, port) if len(p) == INITIATION_SIZE and p[0] == INITIATION]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--to", required=True, help="the target's underlay IPv4 address")
    ap.add_argument("--port", type=int, default=1099)
    ap.add_argument("--public-key", required=True, help="the target's static public key, base64")
    ap.add_argument("--count", type=int, default=50000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--sockets", type=int, default=64, help="source ports to send from")
    ap.add_argument("--sources", default="0.0.0.0",
                    help="comma-separated local addresses to send from, the sockets spread over them")
    ap.add_argument("--replay", help="pcap holding a real initiation to the target")
    ap.add_argument("--replay-every", type=int, default=10)
    a = ap.parse_args()

    public_key = base64.b64decode(a.public_key)
    if len(public_key) != 32:
        raise SystemExit(f"--public-key: {len(public_key)} bytes after base64 decoding, expected 32")
    key = mac1_key(public_key)
    replays = captured_initiations(a.replay, a.port) if a.replay else []
    if a.replay and not replays:
        raise SystemExit(f"no {INITIATION_SIZE}-byte initiation to port {a.port} in {a.replay}")

    sources = a.sources.split(",")
    sockets = []
    for i in range(max(a.sockets, len(sources))):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setblocking(False)
        # Replies (cookie replies) are never read: the kernel drops what overflows this.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.bind((sources[i % len(sources)], 0))
        sockets.append(s)
    target = (a.to, a.port)
    batch = 50
    interval = a.seconds * batch / a.count
    sent = replayed = refused = 0
    print(f"flood: started, {a.count} initiations in {a.seconds} s to {a.to}:{a.port}", flush=True)
    start = time.monotonic()
    while sent + refused < a.count:
        for _ in range(min(batch, a.count - sent - refused)):
            n = sent + refused
            if replays and n % a.replay_every == 0:
                packet, replayed = replays[(n // a.replay_every) % len(replays)], replayed + 1
            else:
                packet = initiation(key)
            try:
                sockets[n % len(sockets)].sendto(packet, target)
                sent += 1
            except (BlockingIOError, ConnectionRefusedError):
                refused += 1
        pause = start + interval * (sent + refused) / batch - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    elapsed = time.monotonic() - start
    print(f"flood: sent={sent} refused={refused} replays={replayed} seconds={elapsed:.2f} "
          f"rate={sent / elapsed:.0f}/s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
