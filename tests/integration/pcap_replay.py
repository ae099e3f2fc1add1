#!/usr/bin/env python3
"""Resend one captured quantum transport packet (replay / tamper tests).

Reads a classic pcap file (no pcapng) of Ethernet frames, finds IPv4/UDP
datagrams to --dst-port whose payload starts with 0x04 (transport data),
picks the largest one (an encrypted ping rather than a keepalive), optionally
flips one byte in the middle of its ciphertext, and sends the payload from an
ephemeral UDP port to --to:--port. Parsing is done by hand: no dependencies.
"""
import argparse
import socket
import struct
import sys

TRANSPORT = 0x04


def frames(path):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        raise SystemExit(f"{path}: too short for a pcap header")
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise SystemExit(f"{path}: not a classic pcap file (magic {magic.hex()})")
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    if linktype != 1:
        raise SystemExit(f"{path}: link type {linktype}, expected 1 (Ethernet)")
    off = 24
    while off + 16 <= len(data):
        incl = struct.unpack(endian + "I", data[off + 8:off + 12])[0]
        off += 16
        yield data[off:off + incl]
        off += incl


def udp_payloads(path, dst_port):
    for fr in frames(path):
        if len(fr) < 14:
            continue
        etype, off = struct.unpack("!H", fr[12:14])[0], 14
        while etype in (0x8100, 0x88A8) and len(fr) >= off + 4:  # VLAN tags
            etype, off = struct.unpack("!H", fr[off + 2:off + 4])[0], off + 4
        ip = fr[off:]
        if etype != 0x0800 or len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack("!H", ip[2:4])[0]
        frag = struct.unpack("!H", ip[6:8])[0]
        if frag & 0x3FFF:  # fragments: not a whole datagram
            continue
        udp = ip[ihl:total]
        if len(udp) < 8:
            continue
        sport, dport, ulen = struct.unpack("!HHH", udp[:6])
        if dport == dst_port:
            yield socket.inet_ntoa(ip[12:16]), sport, udp[8:ulen]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pcap")
    ap.add_argument("--to", required=True, help="destination IPv4 (the peer's underlay address)")
    ap.add_argument("--port", type=int, default=1099)
    ap.add_argument("--flip", action="store_true", help="flip one ciphertext byte before sending")
    a = ap.parse_args()

    found = [p for _, _, p in udp_payloads(a.pcap, a.port) if p and p[0] == TRANSPORT]
    if not found:
        raise SystemExit(f"no UDP payload to port {a.port} starting with 0x04 in {a.pcap}")
    pkt = bytearray(max(found, key=len))
    note = ""
    if a.flip:
        # Middle of the packet: past any header (<= 32 bytes) and before the
        # 16-byte tag for a packet carrying a ping (>= 100 bytes).
        if len(pkt) < 100:
            raise SystemExit(f"largest transport packet has {len(pkt)} bytes; need >= 100 to flip ciphertext")
        i = len(pkt) // 2
        pkt[i] ^= 0x01
        note = f", byte {i} flipped"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("0.0.0.0", 0))  # ephemeral port, never 1099
        s.sendto(pkt, (a.to, a.port))
        port = s.getsockname()[1]
    print(f"sent {len(pkt)}-byte transport packet ({len(found)} candidates{note}) "
          f"from port {port} to {a.to}:{a.port}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
