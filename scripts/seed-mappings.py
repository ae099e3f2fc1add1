#!/usr/bin/env python3
"""Write many fake node mappings into etcd through its JSON gateway, one by one.

The churn and scale test of quantum: a running node must absorb the stream of
additions without growing past its memory bound, and a node that starts after
them must load the whole map quickly.

    scripts/seed-mappings.py --endpoint http://10.201.99.254:2379 --count 10000

Each mapping is a valid quantum mapping (random machine ID and Curve25519-sized
public key) at consecutive private addresses from --first (default 10.99.16.1,
above the addresses the test nodes get by DHCP), with a public endpoint in
--underlay (default 10.201.100.0/24, a range no namespace uses, so nothing is
ever sent there). Keys are written without a lease unless --lease-ttl is given.
Prints one line with how many keys were written and how long it took.
Exits non-zero on the first write etcd refuses.
"""
import argparse
import base64
import http.client
import ipaddress
import json
import os
import sys
import threading
import time
import urllib.parse


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def mapping(private_ip: str, public_ip: str) -> bytes:
    return json.dumps({
        "machineID": os.urandom(16).hex(),
        "privateIP": private_ip,
        "ipv4": public_ip,
        "port": 1099,
        "publicKey": b64(os.urandom(32)),
    }, separators=(",", ":")).encode()


class Gateway:
    """One keep-alive HTTP connection to etcd's JSON gateway."""

    def __init__(self, endpoint: str, timeout: float):
        url = urllib.parse.urlsplit(endpoint if "://" in endpoint else "http://" + endpoint)
        if url.scheme != "http" or not url.hostname:
            raise SystemExit(f"seed-mappings: endpoint '{endpoint}' is not http://host:port")
        self.connection = http.client.HTTPConnection(url.hostname, url.port or 2379, timeout=timeout)

    def post(self, path: str, body: dict) -> dict:
        self.connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        response = self.connection.getresponse()
        payload = response.read()
        if response.status != 200:
            raise RuntimeError(f"{path}: HTTP {response.status}: {payload[:200]!r}")
        return json.loads(payload or b"{}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", required=True, help="etcd client URL, e.g. http://127.0.0.1:2379")
    parser.add_argument("--prefix", default="/quantum", help="quantum key prefix (default /quantum)")
    parser.add_argument("--count", type=int, default=10000, help="mappings to write (default 10000)")
    parser.add_argument("--first", default="10.99.16.1", help="first private address (default 10.99.16.1)")
    parser.add_argument("--underlay", default="10.201.100.0/24", help="public endpoints are drawn from here")
    parser.add_argument("--writers", type=int, default=4, help="parallel connections (default 4)")
    parser.add_argument("--lease-ttl", type=int, default=0, help="bind the keys to one lease of this TTL")
    args = parser.parse_args()
    if args.count < 1 or args.writers < 1:
        parser.error("--count and --writers must be positive")

    first = ipaddress.IPv4Address(args.first)
    underlay = list(ipaddress.IPv4Network(args.underlay).hosts())
    prefix = args.prefix.rstrip("/")
    lease = None
    if args.lease_ttl > 0:
        lease = Gateway(args.endpoint, 10).post("/v3/lease/grant", {"TTL": str(args.lease_ttl)})["ID"]

    errors: list[str] = []
    next_index = [0]
    lock = threading.Lock()

    def writer() -> None:
        gateway = Gateway(args.endpoint, 10)
        while True:
            with lock:
                if errors or next_index[0] >= args.count:
                    return
                index = next_index[0]
                next_index[0] += 1
            private_ip = str(first + index)
            body = {"key": b64(f"{prefix}/nodes/{private_ip}".encode()),
                    "value": b64(mapping(private_ip, str(underlay[index % len(underlay)])))}
            if lease:
                body["lease"] = lease
            try:
                gateway.post("/v3/kv/put", body)
            except Exception as error:  # one line, then stop every writer
                with lock:
                    errors.append(f"{private_ip}: {error}")
                return

    start = time.monotonic()
    threads = [threading.Thread(target=writer) for _ in range(args.writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - start
    if errors:
        print(f"seed-mappings: failed: {errors[0]}", file=sys.stderr)
        return 1
    print(f"seed-mappings: wrote {args.count} mappings under {prefix}/nodes/ "
          f"from {first} in {elapsed:.1f} s ({args.count / elapsed:.0f}/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
