"""The `perf` scenario's report: exact per-job counts from the emulated cards'
counters, set next to each other (metis on card 0, upstream dw-edma on card 1)
and next to the fewest accesses a linked-list job needs.

The guest brackets two runs of every cell with `perf-snap N LABEL` requests:
a short run (n1 jobs) and a long one (n2 jobs), each between a snapshot
before (`#a0`, `#b0`) and after (`#a1`, `#b1`). Whatever a run costs once
(opening the device, allocating and scrubbing device memory, requesting
channels, mapping a registered buffer, warm-up jobs) is the same in both, so

    per job = ((b1 - b0) - (a1 - a0)) / ((n2 - n1) * directions)

is exact, whatever the guest did besides. The long run's own timing comes from
an `@@PERF LABEL {json}` line (metisctl's `--out` document, or edma_bench's
result line as JSON).

A cell's label is `key=value` words: peer (metis|dw-edma), size, dir
(to|from|bidir), qd, buf (page|odd|dmabuf for metis, job|once for dw-edma),
link, n1, n2 (jobs), and for metis batches batch (jobs per METIS_IOCTL_DMA_BATCH;
n1 and n2 are then multiples of it).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

# Writes per list element: metis writes a 24-byte element as six 32-bit words
# (the only width it uses on the card); dw-edma as four (size and control as
# 32-bit, the two addresses as 64-bit).
ELEMENT_WRITES = {"metis": 6, "dw-edma": 4}
# Untimed jobs per run before the timed ones (perf.sh's --warmup / warmup=).
WARMUP = 2
# Data slots in a channel's list ring on the emulated card (192 KiB of descriptors).
RING_SLOTS = 1021


def cell_of(label: str) -> tuple[str, str] | None:
    if "#" not in label:
        return None
    cell, phase = label.rsplit("#", 1)
    return cell, phase


def fields(cell: str) -> dict[str, str]:
    return dict(w.split("=", 1) for w in cell.split() if "=" in w)


def counts(snap: dict) -> dict[str, float]:
    """The counters one job is judged by, from one snapshot."""
    cls = snap.get("mmio_classes", {})
    ch = snap.get("channels", {}).values()
    wire = snap.get("link", {}).get("wire_ns", {})
    return {
        "mmio_writes": sum(c["writes"] for c in cls.values()),
        "mmio_reads": sum(c["reads"] for c in cls.values()),
        "edma_writes": cls.get("edma", {}).get("writes", 0),
        "edma_reads": cls.get("edma", {}).get("reads", 0),
        "window_writes": cls.get("bar2", {}).get("writes", 0),
        "window_reads": cls.get("bar2", {}).get("reads", 0),
        "msis": sum(snap.get("irqs_sent", {}).values()),
        "doorbells": sum(c.get("doorbells", 0) for c in ch),
        "engine_runs": sum(c.get("runs", 0) for c in ch),
        "elements": sum(c.get("elements", 0) for c in ch),
        "links": sum(c.get("links", 0) for c in ch),
        "list_bytes": sum(c.get("list_bytes", 0) for c in ch),
        "bytes": sum(c.get("bytes", 0) for c in ch),
        "dma_maps": snap.get("dma_maps", 0),
        "dma_unmaps": snap.get("dma_unmaps", 0),
        "dma_map_bytes": snap.get("dma_map_bytes", 0),
        "wire_ns": wire.get("upstream", 0) + wire.get("downstream", 0),
        "t_ns": snap.get("t_ns", 0),
    }


def delta(a: dict, b: dict) -> dict[str, float]:
    return {k: b[k] - a[k] for k in a}


def floor(elements: float, batch: int = 1) -> dict[str, float]:
    """The fewest card accesses a linked-list job of `elements` data elements
    needs: a list ring set up once, the elements written through the window
    (32-bit words), one doorbell, one interrupt, one status read and its clear;
    a batch of `batch` jobs shares the doorbell, the interrupt and the read."""
    return {"mmio_writes": ELEMENT_WRITES["metis"] * elements + 2 / batch,
            "mmio_reads": 1 / batch, "msis": 1 / batch, "engine_runs": 1 / batch, "dma_maps": 0,
            "overhead_writes": 2 / batch}


def batch_of(f: dict[str, str]) -> int:
    return int(f.get("batch", "1"))


def perf_lines(text: str) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for line in text.splitlines():
        m = re.match(r"@@PERF (.*?) (\{.*\})\s*$", line)
        if m:
            try:
                out[m.group(1)] = json.loads(m.group(2))
            except json.JSONDecodeError:
                pass
    return out


def timing(f: dict[str, str], doc: dict | None) -> dict[str, float]:
    """MB/s of the long run and the median job latency, from the guest's document."""
    if not doc:
        return {}
    if "results" in doc and doc["results"]:  # metisctl dma bench --out
        r = doc["results"][0]
        return {"mb_per_s": r["mb_per_s"], "median_us": r["median_us"], "p99_us": r["p99_us"],
                "guest_irqs_per_job": r.get("irqs_per_job")}
    if "total_ns" in doc:  # edma_bench's result line
        secs = doc["total_ns"] / 1e9
        return {"mb_per_s": int(f["size"]) * doc["jobs"] / secs / 1e6 if secs else 0.0,
                "median_us": doc["median_ns"] / 1e3, "p99_us": doc["p99_ns"] / 1e3}
    return {}


def cells(snapshots: list[dict], text: str) -> list[dict]:
    by: dict[str, dict] = {}
    for s in snapshots:
        c = cell_of(s["label"])
        if c:
            by.setdefault(c[0], {"card": s["card"]})[c[1]] = s["snap"]
    docs = perf_lines(text)
    out = []
    for cell, snaps in by.items():
        if not all(p in snaps for p in ("a0", "a1", "b0", "b1")):
            continue
        f = fields(cell)
        dirs = 2 if f.get("dir") == "bidir" else 1
        jobs = (int(f["n2"]) - int(f["n1"])) * dirs
        small = delta(counts(snaps["a0"]), counts(snaps["a1"]))
        big = delta(counts(snaps["b0"]), counts(snaps["b1"]))
        per_job = {k: (big[k] - small[k]) / jobs for k in big if k != "t_ns"}
        # Writes beyond the elements' own: exact whatever the buffers' layout, which a
        # process of its own may lay out differently from the other run's (an element
        # per contiguous piece, without an IOMMU).
        per_job["overhead_writes"] = (per_job["mmio_writes"]
                                      - ELEMENT_WRITES.get(f.get("peer", ""), 6)
                                      * per_job["elements"])
        link = snaps["b1"].get("link", {})
        t = timing(f, docs.get(cell))
        # Elements per job of the long run alone (its jobs share one buffer), and of the
        # short one. The warm-up is in submissions: batches of a batch cell.
        warm = WARMUP * batch_of(f)
        n = big["elements"] / ((int(f["n2"]) + warm) * dirs)
        n_short = small["elements"] / ((int(f["n1"]) + warm) * dirs)
        row = {"cell": cell, **f, "jobs": jobs, "per_job": per_job, "elements": n,
               "elements_short": n_short,
               "floor": floor(per_job["elements"], batch_of(f)), **t,
               "link_payload_mb_per_s": (link.get("payload_bytes_per_sec") or 0) / 1e6}
        if row["link_payload_mb_per_s"] and "mb_per_s" in t:
            # One direction's share of the link; bidir counts against one direction's rate.
            row["link_share"] = t["mb_per_s"] / row["link_payload_mb_per_s"]
        out.append(row)
    return out


# A metis buffer kind and the dw-edma mapping that matches it: mapped per job, or once.
PEER_BUF = {"page": "job", "odd": "job", "registered": "once", "dmabuf": "once"}


def peer_of(rows: list[dict], row: dict) -> dict | None:
    """The dw-edma cell that matches a metis cell (same size, direction, depth, link, and
    mapping per job or once)."""
    key = ("size", "dir", "qd", "link")
    for r in rows:
        if (r.get("peer") == "dw-edma" and all(r.get(k) == row.get(k) for k in key)
                and r.get("buf") == PEER_BUF.get(row.get("buf", ""))):
            return r
    return None


def fmt(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.0f}" if abs(v - round(v)) < 0.005 else f"{v:.2f}"


def table(rows: list[dict]) -> str:
    head = ("| size | dir | qd | link | buffer | batch | elements | "
            "metis W+ / R / MSI / runs / maps | "
            "dw-edma W+ / R / MSI / runs / maps | metis ÷ dw-edma W+ / R / MSI | "
            "floor W+ / R / MSI | metis MB/s | dw-edma MB/s | link share |")
    lines = [head, "|" + "---|" * 14]
    for r in rows:
        if r.get("peer") != "metis":
            continue
        p = peer_of(rows, r)

        def five(x: dict | None) -> str:
            if not x:
                return "-"
            j = x["per_job"]
            return " / ".join(fmt(j[k]) for k in
                              ("overhead_writes", "mmio_reads", "msis", "engine_runs", "dma_maps"))
        ratio = " / ".join(fmt(v) for v in ratios(r, p)) if p else "-"
        fl = r["floor"]
        lines.append(
            f"| {human(int(r['size']))} | {r['dir']} | {r['qd']} | {r['link']} | {r['buf']} | "
            f"{batch_of(r)} | {fmt(r['elements'])} | {five(r)} | {five(p)} | {ratio} | "
            f"{fmt(fl['overhead_writes'])} / {fmt(fl['mmio_reads'])} / {fmt(fl['msis'])} | "
            f"{fmt(r.get('mb_per_s'))} | {fmt(p.get('mb_per_s')) if p else '-'} | "
            f"{fmt(100 * r['link_share']) + ' %' if 'link_share' in r else '-'} |")
    return "\n".join(lines) + "\n"


def ratios(r: dict, p: dict) -> list[float | None]:
    """metis's writes beyond the elements, reads and MSIs per job over dw-edma's."""
    out: list[float | None] = []
    for k in ("overhead_writes", "mmio_reads", "msis"):
        theirs = p["per_job"][k]
        out.append(r["per_job"][k] / theirs if theirs else None)
    return out


def human(n: int) -> str:
    for unit, shift in (("M", 20), ("K", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift}{unit}"
    return str(n)


def report(rundir: Path, config: str, snapshots: list[dict], text: str, res) -> None:
    """Writes perf.json and perf.md into the run directory and checks what the
    counts must satisfy whatever the machine's speed."""
    rows = cells(snapshots, text)
    for r in rows:
        p = peer_of(rows, r) if r.get("peer") == "metis" else None
        if p:
            r["vs_dw_edma"] = dict(zip(("overhead_writes", "mmio_reads", "msis"), ratios(r, p)))
    (rundir / "perf.json").write_text(json.dumps({"config": config, "cells": rows}, indent=1))
    md = table(rows)
    (rundir / "perf.md").write_text(md)
    for line in md.splitlines():
        res.notes.append(f"perf {config}: {line}")
    check(rows, res)


def check(rows: list[dict], res) -> None:
    for r in rows:
        name = "perf." + "_".join(f"{k}{r[k]}" for k in ("peer", "size", "dir", "qd", "buf", "link"))
        batch = batch_of(r)
        if batch != 1:
            name += f"_batch{batch}"
        j = r["per_job"]
        # A batch is one submission: one doorbell and one interrupt for all its jobs (a
        # batch longer than a channel's ring would take one more of each per ring).
        if batch != 1 and max(r.get("elements", 0), r.get("elements_short", 0)) * batch < RING_SLOTS:
            d, m = j["doorbells"] * batch, j["msis"] * batch
            if d > 1.005 or m > 1.005:
                res.failed.append(f"{name}_one_doorbell_one_interrupt # a batch of {batch} rang "
                                  f"{d:.2f} doorbells and raised {m:.2f} interrupts")
            else:
                res.passed.append(f"{name}_one_doorbell_one_interrupt")
        # Every job moved its bytes once: the counts are of the cell's jobs and nothing else.
        want = int(r["size"])
        if abs(j["bytes"] - want) > 0.5:
            res.failed.append(f"{name}_bytes # {j['bytes']:.1f} bytes per job counted, {want} moved")
        else:
            res.passed.append(f"{name}_bytes")
        # The guest's count of the card's interrupts and the card's own agree. With
        # several jobs in flight, a message that reaches a vector still pending merges
        # with it: the guest may take fewer than were sent, never more.
        # Only for jobs of one run each: a job longer than the list ring takes a run (and an
        # interrupt) per ring's length, so its count per job depends on the layout of the
        # run's buffer, which the two runs of a cell do not share.
        g = r.get("guest_irqs_per_job")
        longest = max(r.get("elements", 0), r.get("elements_short", 0))
        if "guest_irqs_per_job" in r and g is None:
            # metisctl found no interrupt count for the card: the check below would not run.
            res.failed.append(f"{name}_irqs_agree # metisctl could not count the card's "
                              "interrupts (/proc/interrupts, the PCI device's msi_irqs)")
        elif g is not None and longest < RING_SLOTS:
            sent = j["msis"]
            if g > sent + 0.05 or (r["qd"] == "1" and r["dir"] != "bidir" and g < sent - 0.05):
                res.failed.append(f"{name}_irqs_agree # the guest took {g:.2f} interrupts per job, "
                                  f"the card sent {sent:.2f}")
            else:
                res.passed.append(f"{name}_irqs_agree")
