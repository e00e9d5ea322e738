#!/usr/bin/env python3
"""Checks that an overlaid RK3588 device tree gives the PCIe 3.0 x4 root port
room for a Metis card, and nothing else changed that could break the board.

    check_window.py BASE.dtb OVERLAID.dtb

Passes when, for the controller pcie@fe150000:
  * it is enabled on the board;
  * there is a 32-bit non-prefetchable memory window of at least 64 MiB,
    aligned to 32 MiB on the bus: the card's 32 MiB BAR2 is 32-bit and
    non-prefetchable, and BAR0 and the expansion ROM need room beside it;
  * that window's bus addresses hold nothing the card writes to: RK3588 RAM
    (below 0xf0000000 and from 4 GiB up) and the GIC ITS doorbells (from the
    tree), since the root port would not forward such a write upstream;
  * every CPU range is one the controller already decoded in the base tree
    (its outbound address regions are fixed in silicon) and no two overlap;
  * the I/O window and every other property of the node are unchanged.
Exits 1 with a line per problem otherwise.
"""
import re
import subprocess
import sys

NODE = "/pcie@fe150000"
MIB = 1 << 20
# RK3588 address map: DRAM occupies the first 3.75 GiB and everything from 4 GiB.
RAM = [(0, 0xF000_0000), (1 << 32, 1 << 40)]


def fdtget(dtb: str, prop: str, kind: str = "u") -> str:
    return subprocess.run(["fdtget", "-t", kind, dtb, NODE, prop], check=True,
                          capture_output=True, text=True).stdout.strip()


def ranges(dtb: str) -> list[tuple[int, int, int, int]]:
    """(flags, bus, cpu, size) per entry: 3 bus cells, 2 CPU cells, 2 size cells."""
    c = [int(x) for x in fdtget(dtb, "ranges").split()]
    if len(c) % 7:
        raise SystemExit(f"{dtb}: ranges has {len(c)} cells, not a multiple of 7")
    out = []
    for i in range(0, len(c), 7):
        flags, bhi, blo, chi, clo, shi, slo = c[i:i + 7]
        out.append((flags, bhi << 32 | blo, chi << 32 | clo, shi << 32 | slo))
    return out


def node_props(dtb: str) -> dict[str, str]:
    names = subprocess.run(["fdtget", "-p", dtb, NODE], check=True, capture_output=True,
                           text=True).stdout.split()
    return {n: fdtget(dtb, n, "bx") for n in names}


def its_doorbells(dtb: str) -> list[tuple[int, int]]:
    dts = subprocess.run(["dtc", "-q", "-I", "dtb", "-O", "dts", dtb], check=True,
                         capture_output=True, text=True).stdout
    # Each ITS frame is 128 KiB; GITS_TRANSLATER lies in its second 64 KiB page.
    return [(int(a, 16), int(a, 16) + 0x20000)
            for a in re.findall(r"msi-controller@([0-9a-f]+)\s*{", dts)]


def overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def main() -> int:
    base, new = sys.argv[1], sys.argv[2]
    board = new.rsplit("/", 1)[-1]
    errors = []
    if fdtget(new, "status", "s") != "okay":
        errors.append("the x4 controller is not enabled on this board")
    old_r, new_r = ranges(base), ranges(new)
    space = lambda f: (f >> 24) & 3  # 1 I/O, 2 32-bit memory, 3 64-bit memory
    prefetch = lambda f: bool(f & 0x4000_0000)

    mem32 = [r for r in new_r if space(r[0]) == 2 and not prefetch(r[0])]
    if len(mem32) != 1:
        errors.append(f"{len(mem32)} 32-bit non-prefetchable windows, expected one")
    for f, bus, cpu, size in mem32:
        win = (bus, bus + size)
        if size < 64 * MIB:
            errors.append(f"32-bit window is {size // MIB} MiB, the card needs 64")
        if bus % (32 * MIB):
            errors.append(f"32-bit window at bus {bus:#x} is not 32 MiB aligned")
        if win[1] > 1 << 32:
            errors.append(f"32-bit window ends above 4 GiB ({win[1]:#x})")
        for r in RAM:
            if overlaps(win, r):
                errors.append(f"32-bit window {bus:#x}+{size:#x} covers RAM bus addresses")
        for d in its_doorbells(new):
            if overlaps(win, d):
                errors.append(f"32-bit window covers the ITS doorbell at {d[0]:#x}")

    decoded = [(cpu, cpu + size) for _, _, cpu, size in old_r]
    cpus = sorted((cpu, cpu + size) for _, _, cpu, size in new_r)
    for lo, hi in cpus:
        if not any(d[0] <= lo and hi <= d[1] for d in decoded):
            errors.append(f"CPU range {lo:#x}-{hi:#x} is outside the controller's regions")
    for a, b in zip(cpus, cpus[1:]):
        if overlaps(a, b):
            errors.append(f"CPU ranges {a[0]:#x} and {b[0]:#x} overlap")
    if [r for r in old_r if space(r[0]) == 1] != [r for r in new_r if space(r[0]) == 1]:
        errors.append("the I/O window changed")

    old_p, new_p = node_props(base), node_props(new)
    for k in sorted(set(old_p) | set(new_p)):
        if k != "ranges" and old_p.get(k) != new_p.get(k):
            errors.append(f"property {k} changed")

    for e in errors:
        print(f"{board}: {e}")
    if not errors:
        f, bus, cpu, size = mem32[0]
        print(f"{board}: ok, 32-bit window bus {bus:#x}-{bus + size - 1:#x} "
              f"({size // MIB} MiB) at CPU {cpu:#x}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
