#!/usr/bin/env python3
"""The performance issue's ratios from one table of the shared benchmark harness.

    scripts/bench_ratios.py HARNESS_OUTPUT [--tunnel quantum]

HARNESS_OUTPUT is the harness's markdown (`${OUT%.json}.md`) or a log holding it: the table's
rows are read by their header names. quantum is compared with the best of the other userspace
tunnels in the same table (wireguard-go, nebula, tinc: the best one per figure) and with the
bare veth. Prints a markdown table of figure, quantum, best peer, ratio, target and whether it
is met. Exits 1 if the table lacks quantum, the veth or every peer (a run that cannot be judged).
"""
import argparse
import re
import sys

PEERS = ("wireguard-go", "nebula", "tinc")
COLUMNS = {
    "one": "TCP 1-stream Gbit/s",
    "four": "TCP 4-stream Gbit/s",
    "rtt": "RTT median ms",
    "p99": "RTT p99 ms",
    "cpu": "tunnel CPU-s/GB",
    "status": "status",
}


def number(cell):
    """The leading number of a cell ('1.722 (1.696-1.748)' -> 1.722), or None ('-', 'n/a')."""
    match = re.match(r"\s*([0-9]+(?:\.[0-9]+)?)", cell)
    return float(match.group(1)) if match else None


def read_rows(text):
    """tunnel name -> {figure: value} from the first harness table in `text`."""
    header, rows = None, {}
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("|"):
            if header and rows:
                break
            continue
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if header is None:
            if cells and cells[0] == "tunnel":
                header = cells
            continue
        if set(cells[0]) <= set("-: "):
            continue
        row = {}
        for key, title in COLUMNS.items():
            index = next((i for i, name in enumerate(header) if name.startswith(title)), None)
            if index is None:
                sys.exit(f"bench_ratios: the table has no column '{title}'")
            row[key] = cells[index] if key == "status" else number(cells[index])
        rows[cells[0]] = row
    return rows


def ratio_table(rows, tunnel):
    """Markdown lines: each figure of `tunnel` against the best peer's (and the veth)."""
    if tunnel not in rows or "veth" not in rows:
        sys.exit(f"bench_ratios: the table needs rows for {tunnel} and veth (has: {', '.join(rows)})")
    peers = {name: row for name, row in rows.items() if name in PEERS and row["status"] == "ok"}
    if not peers:
        sys.exit(f"bench_ratios: no peer ({', '.join(PEERS)}) ran successfully in this table")
    ours, veth = rows[tunnel], rows["veth"]

    def best(key, smaller):
        candidates = [(row[key], name) for name, row in peers.items() if row[key] is not None]
        return (min if smaller else max)(candidates) if candidates else (None, "-")

    lines = [f"Ratios ({tunnel} against the best of {', '.join(sorted(peers))} in this table, per figure):", "",
             f"| figure | {tunnel} | best peer | ratio | target | met |", "|---|---:|---|---:|---|---|"]

    def add(figure, value, peer, peer_name, ratio, target, met, unit=""):
        shown = "-" if value is None else f"{value:.3f}{unit}"
        peer_shown = "-" if peer is None else f"{peer:.3f}{unit} ({peer_name})"
        ratio_shown = "-" if ratio is None else f"{ratio:.2f}×"
        lines.append(f"| {figure} | {shown} | {peer_shown} | {ratio_shown} | {target} | "
                     f"{'-' if met is None else ('yes' if met else 'NO')} |")

    def quotient(a, b):
        return None if a is None or not b else a / b

    for key, figure in (("one", "TCP 1 stream, Gbit/s"), ("four", "TCP 4 streams, Gbit/s")):
        peer, name = best(key, smaller=False)
        ratio = quotient(ours[key], peer)
        add(figure, ours[key], peer, name, ratio, "≥ 4×", None if ratio is None else ratio >= 4)
    peer, name = best("cpu", smaller=True)
    ratio = quotient(ours["cpu"], peer)
    add("tunnel CPU-s/GB", ours["cpu"], peer, name, ratio, "≤ 0.25×", None if ratio is None else ratio <= 0.25)

    share = quotient(ours["one"], veth["one"])
    lines.append(f"| TCP 1 stream, share of the bare veth ({veth['one']} Gbit/s) | "
                 f"{'-' if share is None else f'{100 * share:.1f} %'} | | | ≥ 20 % | "
                 f"{'-' if share is None else ('yes' if share >= 0.2 else 'NO')} |")

    added = None if ours["rtt"] is None or veth["rtt"] is None else ours["rtt"] - veth["rtt"]
    peer, name = best("rtt", smaller=True)
    peer_added = None if peer is None or veth["rtt"] is None else peer - veth["rtt"]
    add("median RTT added over the veth, ms", added, peer_added, name, quotient(added, peer_added),
        "≤ best peer's", None if added is None or peer_added is None else added <= peer_added)
    peer, name = best("p99", smaller=True)
    add("RTT p99, ms", ours["p99"], peer, name, quotient(ours["p99"], peer), "≤ best peer's",
        None if ours["p99"] is None or peer is None else ours["p99"] <= peer)
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("harness_output", help="the harness's markdown table, or a log that holds it")
    parser.add_argument("--tunnel", default="quantum", help="the row to judge (default quantum)")
    arguments = parser.parse_args()
    with open(arguments.harness_output, encoding="utf-8") as file:
        rows = read_rows(file.read())
    if not rows:
        sys.exit(f"bench_ratios: no harness table in {arguments.harness_output}")
    print("\n".join(ratio_table(rows, arguments.tunnel)))


if __name__ == "__main__":
    main()
