#!/usr/bin/env python3
"""STAND-IN for the quantum daemon, used only to test the integration harness.

NOT the product and NOT secure (a network-wide constant key, toy cipher). It
follows the daemon's CLI contract closely enough for tests/integration/run.sh
to exercise every case: etcd v3 (JSON gateway) address claims and DHCP keyed by
a machine ID in --data-dir, a TUN device with the private address /16, UDP
transport packets whose first byte is 0x04 with a counter, a MAC (drop_auth)
and a replay check (drop_replay), SIGUSR1 counters, clean exit on SIGTERM.
For the fault drills: fail-over between the --datastore-endpoints, a map cache
in <data-dir>/cache.json to start from while etcd is unreachable, a refresh
every second that re-creates <prefix>/config and its own node key, and exit 1
with `lost private address` when another machine holds its address.

    tests/integration/run.sh tests/integration/selftest/fake_quantum.py
"""
import argparse, base64, fcntl, hashlib, hmac, ipaddress, json, os, signal
import socket, struct, subprocess, sys, threading, time, urllib.request, uuid

KEY = b"fake-quantum-selftest-key"
# FAKE_BUG makes the stand-in misbehave, to check that the harness notices:
# plaintext (no cipher), noauth (MAC ignored), noreplay (no replay check),
# replayfirst (replay check before the MAC check: must not change any result);
# for the drills: persisttun (the TUN device outlives a killed process),
# nocache (no start from the cache), keepstolen (keeps running on a taken
# address), bloat (holds 16 KiB per known mapping), oneendpoint (uses only the
# first datastore endpoint), forgetpeers (drops every peer when etcd fails).
BUG = os.environ.get("FAKE_BUG", "")
NET = ipaddress.ip_network("10.99.0.0/16")
DHCP_FIRST = ipaddress.ip_address("10.99.4.1")
COUNTERS = dict.fromkeys("tx_packets rx_packets drop_no_route drop_no_session drop_auth drop_replay "
                         "drop_spoofed drop_malformed handshakes_completed".split(), 0)


def log(msg):
    print(f"{time.strftime('%H:%M:%S')} fake-quantum: {msg}", file=sys.stderr, flush=True)


CONFIG = {"network": str(NET), "staticRange": "10.99.0.0/23", "floatingRange": "10.99.2.0/23",
          "leaseTime": "172800s", "backend": "udp"}


class Etcd:
    def __init__(self, endpoints, prefix):
        self.urls, self.prefix, self.current = [f"http://{e}" for e in endpoints.split(",")], prefix, 0
        if BUG == "oneendpoint":
            del self.urls[1:]

    def call(self, path, body):
        """POST to the current endpoint; on a connection error or timeout try the next ones."""
        error = None
        for _ in self.urls:
            req = urllib.request.Request(self.urls[self.current] + path, json.dumps(body).encode(),
                                         {"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=2) as r:
                    return json.load(r)
            except OSError as e:
                error = e
                self.current = (self.current + 1) % len(self.urls)
        raise error

    @staticmethod
    def b64(s):
        return base64.b64encode(s.encode()).decode()

    def nodes(self):
        p = self.prefix + "/nodes/"
        end = p[:-1] + chr(ord(p[-1]) + 1)
        r = self.call("/v3/kv/range", {"key": self.b64(p), "range_end": self.b64(end)})
        return [json.loads(base64.b64decode(kv["value"])) for kv in r.get("kvs", [])]

    def claim(self, ip, value):
        """Create <prefix>/nodes/<ip> if absent; return the holder's mapping."""
        k = self.b64(f"{self.prefix}/nodes/{ip}")
        r = self.call("/v3/kv/txn", {
            "compare": [{"key": k, "target": "CREATE", "result": "EQUAL", "create_revision": "0"}],
            "success": [{"request_put": {"key": k, "value": self.b64(json.dumps(value))}}],
            "failure": [{"request_range": {"key": k}}]})
        if r.get("succeeded"):
            return value
        kvs = r["responses"][0]["response_range"].get("kvs", [])
        return json.loads(base64.b64decode(kvs[0]["value"])) if kvs else None

    def put(self, ip, value):
        self.call("/v3/kv/put", {"key": self.b64(f"{self.prefix}/nodes/{ip}"), "value": self.b64(json.dumps(value))})

    def ensure_config(self):
        k = self.b64(f"{self.prefix}/config")
        self.call("/v3/kv/txn", {
            "compare": [{"key": k, "target": "CREATE", "result": "EQUAL", "create_revision": "0"}],
            "success": [{"request_put": {"key": k, "value": self.b64(json.dumps(CONFIG))}}]})


def keystream(nonce, n):
    out, i = b"", 0
    while len(out) < n:
        out += hashlib.sha256(KEY + nonce + i.to_bytes(4, "little")).digest()
        i += 1
    return out[:n]


def public_v4():
    out = subprocess.run(["ip", "-4", "-o", "route", "show", "default"], capture_output=True, text=True).stdout.split()
    dev = out[out.index("dev") + 1]
    addr = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", dev], capture_output=True, text=True).stdout.split()
    return addr[3].split("/")[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--datastore-endpoints", required=True)
    ap.add_argument("--datastore-prefix", default="/quantum")
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--private-ip")
    ap.add_argument("--public-v4")
    ap.add_argument("--listen-port", type=int, default=1099)
    ap.add_argument("--device-name", default="quantum0")
    ap.add_argument("--log-level", default="info")
    a, _ = ap.parse_known_args()

    os.makedirs(a.data_dir, exist_ok=True)
    idf = os.path.join(a.data_dir, "machine-id")
    if not os.path.exists(idf):
        open(idf, "w").write(uuid.uuid4().hex)
    mid = open(idf).read().strip()
    pub = a.public_v4 or public_v4()
    etcd = Etcd(a.datastore_endpoints, a.datastore_prefix)
    mapping = lambda ip: {"machineID": mid, "privateIP": str(ip), "ipv4": pub, "port": a.listen_port}
    cache_file = os.path.join(a.data_dir, "cache.json")
    cached = None
    try:
        etcd.ensure_config()
    except OSError as e:
        if BUG == "nocache" or not os.path.exists(cache_file):
            raise
        cached = json.load(open(cache_file))
        log(f"etcd unreachable ({e}); starting from the local cache")

    if cached:
        ip = ipaddress.ip_address(cached["ip"])
    elif a.private_ip:
        ip = ipaddress.ip_address(a.private_ip)
        if ip not in NET:
            print(f"error: --private-ip {ip} is outside the network {NET}", file=sys.stderr)
            return 2
        holder = etcd.claim(ip, mapping(ip))
        if holder["machineID"] != mid:
            print(f"error: --private-ip {ip} is held by machine {holder['machineID']}", file=sys.stderr)
            return 1
    else:
        mine = [m for m in etcd.nodes() if m["machineID"] == mid]
        ip = ipaddress.ip_address(mine[0]["privateIP"]) if mine else DHCP_FIRST
        while etcd.claim(ip, mapping(ip))["machineID"] != mid:
            ip += 1
    if not cached:
        etcd.put(ip, mapping(ip))
    log(f"machine {mid} holds {ip}, endpoint {pub}:{a.listen_port}")

    tun = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(tun, 0x400454CA, struct.pack("16sH", a.device_name.encode(), 0x0001 | 0x1000))  # TUNSETIFF TUN|NO_PI
    if BUG == "persisttun":
        fcntl.ioctl(tun, 0x400454CB, 1)  # TUNSETPERSIST
    subprocess.run(["ip", "addr", "add", f"{ip}/16", "dev", a.device_name], check=True)
    subprocess.run(["ip", "link", "set", a.device_name, "up", "mtu", "1400"], check=True)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", a.listen_port))

    peers, stop, boot = {}, threading.Event(), os.urandom(4)
    seen = {}  # one receiving thread: no lock needed
    registered = cached is None
    if cached:
        peers.update({m["privateIP"]: (m["ipv4"], m["port"]) for m in cached["nodes"]})
    ballast = []

    def refresh():
        nonlocal registered
        while not stop.is_set():
            try:
                etcd.ensure_config()
                nodes = etcd.nodes()
                holder = next((m for m in nodes if m["privateIP"] == str(ip)), None)
                if holder and holder["machineID"] != mid and BUG != "keepstolen":
                    log(f"lost private address {ip}: /nodes/{ip} is now held by machine {holder['machineID']}")
                    os._exit(1)
                if not registered or holder is None:
                    etcd.put(ip, mapping(ip))
                    registered = True
                peers.update({m["privateIP"]: (m["ipv4"], m["port"]) for m in nodes})
                if BUG == "bloat":
                    ballast[len(ballast):] = [bytearray(b"x" * 16384) for _ in range(len(nodes) - len(ballast))]
                with open(cache_file + ".tmp", "w") as f:
                    json.dump({"ip": str(ip), "nodes": nodes}, f)
                os.replace(cache_file + ".tmp", cache_file)
            except OSError as e:
                log(f"etcd: {e}")
                if BUG == "forgetpeers":
                    peers.clear()
            stop.wait(1)

    def outgoing():
        ctr = 0
        while True:
            pkt = os.read(tun, 65535)
            dst = socket.inet_ntoa(pkt[16:20]) if len(pkt) >= 20 else None
            if dst not in peers:
                COUNTERS["drop_no_route"] += 1
                continue
            ctr += 1
            hdr = b"\x04\0\0\0" + boot + struct.pack("<Q", ctr)
            body = pkt if BUG == "plaintext" else bytes(x ^ y for x, y in zip(pkt, keystream(hdr, len(pkt))))
            sock.sendto(hdr + body + hmac.new(KEY, hdr + body, "sha256").digest()[:16], peers[dst])
            COUNTERS["tx_packets"] += 1

    def incoming():
        while True:
            d, _ = sock.recvfrom(65535)
            if len(d) < 32 or d[0] != 4:
                COUNTERS["drop_malformed"] += 1
                continue
            hdr, body, tag = d[:16], d[16:-16], d[-16:]
            s = seen.setdefault(hdr[4:8], set())
            if BUG == "replayfirst" and hdr[8:16] in s:
                COUNTERS["drop_replay"] += 1
                continue
            if BUG != "noauth" and not hmac.compare_digest(tag, hmac.new(KEY, hdr + body, "sha256").digest()[:16]):
                COUNTERS["drop_auth"] += 1
                continue
            if BUG != "noreplay" and hdr[8:16] in s:
                COUNTERS["drop_replay"] += 1
                continue
            s.add(hdr[8:16])
            os.write(tun, body if BUG == "plaintext" else bytes(x ^ y for x, y in zip(body, keystream(hdr, len(body)))))
            COUNTERS["rx_packets"] += 1

    for f in (refresh, outgoing, incoming):
        threading.Thread(target=f, daemon=True).start()
    signal.signal(signal.SIGUSR1, lambda *_: log("counters: " + " ".join(f"{k}={v}" for k, v in COUNTERS.items())))
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(0.2):
        pass
    log("stopping")
    if BUG == "persisttun":
        fcntl.ioctl(tun, 0x400454CB, 0)  # a clean exit removes the persistent device
    os.close(tun)  # a non-persistent TUN device disappears with its last fd
    return 0


if __name__ == "__main__":
    sys.exit(main())
