#!/usr/bin/env python3
"""QEMU runner for the metis test matrix.

Builds what a scenario needs (kernel, module, guest programs, initramfs,
emulator), boots a guest with the emulated Metis card attached over
vfio-user, relays the guest's requests to the card's control socket, and
judges the run from the guest's TAP lines, the kernel's KUnit KTAP output and
the kernel log (any splat fails the run).

    run.py demo                                  probe the card once, show the log
    run.py run --arch x86_64 --iommu translated --scenario probe
    run.py matrix [--configs ...] [--scenarios ...]

Everything built lives under $METIS_CACHE (default ~/.cache/metis).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import traceback
import time
from dataclasses import dataclass, field
from pathlib import Path

import perf_report  # tests/harness, the script's own directory

REPO = Path(__file__).resolve().parents[2]
HARNESS = REPO / "tests" / "harness"
CACHE = Path(os.environ.get("METIS_CACHE", Path.home() / ".cache" / "metis"))

# name -> (arch, iommu mode)
CONFIGS = {
    "x86-none": ("x86_64", "none"),
    "x86-translated": ("x86_64", "translated"),
    "x86-pt": ("x86_64", "pt"),
    "arm64-none": ("arm64", "none"),
    "arm64-translated": ("arm64", "translated"),
}

# Kernel log lines that mean the kernel caught a bug. Any of them fails the run.
SPLAT_PATTERNS = [
    r"WARNING: ",
    r"BUG: ",
    r"Oops",
    r"general protection fault",
    r"Kernel panic",
    r"KASAN: ",
    r"UBSAN: ",
    r"possible circular locking dependency",
    r"possible recursive locking",
    r"inconsistent lock state",
    r"suspicious RCU usage",
    r"rcu: INFO: rcu_.* detected stalls",
    r"DMA-API: (?!preallocated|debugging enabled)",
    r"unreferenced object 0x",
    r"kmemleak: \d+ new suspected memory leaks",
    r"ODEBUG: ",
    r"list_add corruption",
    r"list_del corruption",
    r"Call Trace:",
    r"rust_panic",
]
SPLAT_RE = re.compile("|".join(SPLAT_PATTERNS))
# Splats a scenario provokes on purpose and declares with `@@ALLOW <regex>`.
TS_RE = re.compile(r"^\[\s*\d+\.\d+\]\s?")


def log(msg: str) -> None:
    print(f"[run] {msg}", file=sys.stderr, flush=True)


# Where build steps write what they print (compiler and linker chatter): the
# console stays for results. Set per build by build_all.
BUILD_LOG: Path | None = None


def sh(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    """Runs a build step; its output goes to BUILD_LOG, and its tail to stderr if it fails."""
    if BUILD_LOG is None:
        return subprocess.run(cmd, check=True, **kw)
    with open(BUILD_LOG, "a") as f:
        f.write(f"$ {' '.join(cmd)}\n")
        f.flush()
        res = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, **kw)
    if res.returncode != 0:
        tail = BUILD_LOG.read_text(errors="replace").splitlines()[-30:]
        print("\n".join(tail), file=sys.stderr)
        log(f"build step failed (exit {res.returncode}): {' '.join(cmd)}; full log: {BUILD_LOG}")
        raise subprocess.CalledProcessError(res.returncode, cmd)
    return res


def toolroot(*cmd: str, capture: bool = False) -> str:
    """Runs a command in the toolchain root (repo at /src/metis)."""
    if capture:
        return subprocess.run(["bash", str(HARNESS / "toolroot.sh"), *cmd],
                              check=True, stdout=subprocess.PIPE, text=True).stdout
    sh(["bash", str(HARNESS / "toolroot.sh"), *cmd])
    return ""


def kernel_dir(arch: str, flavour: str) -> Path:
    out = subprocess.run(
        ["bash", str(HARNESS / "kernel.sh"), arch, flavour],
        check=True, stdout=subprocess.PIPE, text=True,
    ).stdout.strip()
    return Path(out)


def kernel_image(arch: str, kdir: Path) -> Path:
    return kdir / ("arch/x86/boot/bzImage" if arch == "x86_64" else "arch/arm64/boot/Image")


def make_args(kdir: Path) -> list[str]:
    return (kdir / ".metis-make-args").read_text().split()


def build_module(kdir: Path, src: str, out: Path, extra: list[str] | None = None) -> None:
    """Builds an out-of-tree module from /src/metis/<src> into `out` (MO=)."""
    out.mkdir(parents=True, exist_ok=True)
    toolroot("make", "-s", "-C", str(kdir), f"M=/src/metis/{src}" if src else "M=/src/metis",
             f"MO={out}", *make_args(kdir), *(extra or []), "modules")


def module_closures(kdir: Path, names: tuple[str, ...]) -> dict[str, list[str]]:
    """For each module name, the module files (relative to modinst) to load, dependencies first."""
    mods = next((kdir / "modinst" / "lib" / "modules").iterdir())
    deps: dict[str, list[str]] = {}
    for line in (mods / "modules.dep").read_text().splitlines():
        target, _, rest = line.partition(":")
        deps[target] = rest.split()
    by_name = {Path(t).name.removesuffix(".ko"): t for t in deps}
    out: dict[str, list[str]] = {}
    for name in names:
        if name not in by_name:
            continue
        order: list[str] = []

        def visit(t: str) -> None:
            if t in order:
                return
            for d in deps.get(t, []):
                visit(d)
            order.append(t)

        visit(by_name[name])
        out[name] = [str((mods / t).relative_to(kdir / "modinst")) for t in order]
    return out


def build_guest_programs(arch: str, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    cc = "gcc" if arch == "x86_64" else "aarch64-linux-gnu-gcc"
    progs = []
    for src in sorted((REPO / "tests" / "guest").glob("*.c")):
        dst = out / src.stem
        toolroot(cc, "-static", "-pthread", "-O2", "-Wall", "-Werror", "-o", str(dst),
                 f"/src/metis/tests/guest/{src.name}")
        progs.append(dst)
    return progs


def build_host_tools() -> Path:
    """Builds the emulator and firmware tool on the host; returns the binary dir."""
    sh(["cargo", "build", "--release", "-q", "-p", "metis-emu", "--bins"], cwd=REPO)
    return Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "release"


class Cpio:
    """Minimal newc writer: enough for an initramfs."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.ino = 1
        self.seen: set[str] = set()

    def _entry(self, name: str, mode: int, data: bytes = b"") -> None:
        name = name.lstrip("/")
        if name in self.seen:
            return
        self.seen.add(name)
        nb = name.encode() + b"\0"
        hdr = "070701" + "".join(f"{v:08x}" for v in (
            self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(nb), 0))
        self.ino += 1
        self.buf += hdr.encode() + nb
        self.buf += b"\0" * (-len(self.buf) % 4)
        self.buf += data
        self.buf += b"\0" * (-len(self.buf) % 4)

    def dir(self, name: str) -> None:
        parts = name.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            self._entry("/".join(parts[:i]), stat.S_IFDIR | 0o755)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self.dir(os.path.dirname(name.strip("/")) or ".")
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name: str, target: str) -> None:
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        return gzip.compress(bytes(self.buf), compresslevel=1)


@dataclass
class Build:
    arch: str
    flavour: str
    image: Path
    initrd: Path
    bins: Path
    kdir: Path | None = None


def build_out(tag: str) -> Path:
    # METIS_BUILD_SUFFIX keeps the builds of a second checkout (e.g. a matrix run from a
    # worktree while the main tree is edited) apart.
    out = CACHE / "build" / (tag + os.environ.get("METIS_BUILD_SUFFIX", ""))
    out.mkdir(parents=True, exist_ok=True)
    global BUILD_LOG
    BUILD_LOG = out / "build.log"
    BUILD_LOG.write_text("")
    return out


def build_all(arch: str, flavour: str, kunit: bool = True) -> Build:
    kdir = kernel_dir(arch, flavour)
    out = build_out(f"{arch}-{flavour}{'-kunit' if kunit else ''}")
    log(f"building metis.ko, the test modules, the guest programs and the emulator ({arch}; log: {BUILD_LOG})")
    build_module(kdir, "", out / "metis", ["METIS_KUNIT=1"] if kunit else [])
    build_module(kdir, "tests/kmod", out / "kmod")
    # Upstream modules the scenarios load (dw-edma for the independent engine check, vivid as
    # a dma-buf importer nobody here wrote), with their dependencies: `NAME.order` lists the
    # files to insmod, dependencies first (`load_module` in tests/guest/lib.sh).
    extra = {name: [kdir / "modinst" / rel for rel in order] for name, order in
             module_closures(kdir, ("dw-edma-pcie", "dmatest", "vivid")).items()}
    kos = [*(out / "metis").rglob("*.ko"), *(out / "kmod").rglob("*.ko")]
    initrd, bins = build_initrd(arch, out, kos, extra)
    return Build(arch, flavour, kernel_image(arch, kdir), initrd, bins, kdir)


DEBIAN_ARCH = {"x86_64": "amd64", "arm64": "arm64"}


def build_distro(arch: str, version: str) -> Build:
    """A Debian kernel and the metis.ko its DKMS built (tests/packaging/debian.sh left both
    in $METIS_CACHE/debian-kernels/VERSION-ARCH/): no KUnit, no test modules."""
    kver = f"{version}-{DEBIAN_ARCH[arch]}"
    src = CACHE / "debian-kernels" / kver
    if not (src / "vmlinuz").exists() or not (src / "metis.ko").exists():
        raise SystemExit(f"run: no Debian kernel {kver} in {src}: run tests/packaging/debian.sh first")
    out = build_out(f"{arch}-debian-{version}")
    log(f"building the guest programs and the emulator for Debian's {kver} (log: {BUILD_LOG})")
    initrd, bins = build_initrd(arch, out, [src / "metis.ko"], {})
    return Build(arch, f"debian-{version}", src / "vmlinuz", initrd, bins)


def build_initrd(arch: str, out: Path, kos: list[Path],
                 extra: dict[str, list[Path]]) -> tuple[Path, Path]:
    """The guest's initramfs (programs, scenarios, firmware images, the modules `kos` and the
    upstream module closures `extra`) and the emulator; returns (initrd, emulator bin dir)."""
    progs = build_guest_programs(arch, out / "guest")
    # metisctl, static for the guest (userspace/build-guest.sh).
    sh(["bash", str(REPO / "userspace" / "build-guest.sh"), arch, str(out / "guest")])
    progs.append(out / "guest" / "metisctl")
    bins = build_host_tools()

    fw_dir = out / "firmware"
    fw_dir.mkdir(parents=True, exist_ok=True)
    fwimg = str(bins / "metis-fwimg")
    images = {
        "metis-fw-if1.bin": [],
        "metis-fw-if2.bin": ["--if-major", "2"],
        "metis-fw-badcrc.bin": ["--break", "bad-payload-crc"],
    }
    for name, args in images.items():
        sh([fwimg, "build", "--out", str(fw_dir / name), "--payload-size", "262144",
            "--fw", "1.2.3", *args])

    root = Path(subprocess.run(["bash", str(HARNESS / "toolroot.sh")], check=True,
                               stdout=subprocess.PIPE, text=True).stdout.strip())
    busybox = root / ("bin/busybox" if arch == "x86_64" else "opt/busybox-arm64/bin/busybox")
    if not busybox.exists():
        busybox = root / ("usr/bin/busybox" if arch == "x86_64"
                          else "opt/busybox-arm64/usr/bin/busybox")

    cp = Cpio()
    for d in ("bin", "sbin", "dev", "proc", "sys", "tmp", "run", "etc", "lib/firmware/axelera",
              "usr/bin", "usr/sbin", "lib/modules"):
        cp.dir(d)
    cp.file("bin/busybox", busybox.read_bytes(), 0o755)
    cp.symlink("bin/sh", "busybox")
    cp.file("init", (REPO / "tests/guest/init").read_bytes(), 0o755)
    cp.file("lib/metis/lib.sh", (REPO / "tests/guest/lib.sh").read_bytes())
    for scen in sorted((REPO / "tests/scenarios").glob("*.sh")):
        cp.file(f"scenarios/{scen.name}", scen.read_bytes(), 0o755)
    for ko in kos:
        cp.file(f"lib/metis/{ko.name}", ko.read_bytes())
    for name, order in extra.items():
        for path in order:
            cp.file(f"lib/metis/{path.name}", path.read_bytes())
        cp.file(f"lib/metis/{name}.order", "".join(p.name + "\n" for p in order).encode())
    for p in progs:
        cp.file(f"usr/bin/{p.name}", p.read_bytes(), 0o755)
    for fw in sorted(fw_dir.iterdir()):
        cp.file(f"lib/firmware/axelera/{fw.name}", fw.read_bytes())
    initrd = out / "initrd.gz"
    initrd.write_bytes(cp.finish())
    return initrd, bins


@dataclass
class Result:
    config: str
    scenario: str
    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    splats: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # The guest's kernel stopped printing before init ran (see BOOT_STALL_S).
    stalled: bool = False

    @property
    def ok(self) -> bool:
        return not self.failed and not self.splats and bool(self.passed)


class Card:
    """One emulated card process."""

    def __init__(self, bins: Path, rundir: Path, idx: int, args: list[str]) -> None:
        self.sock = rundir / f"card{idx}.sock"
        self.ctl = rundir / f"card{idx}.ctl"
        self.events = rundir / f"card{idx}.events.jsonl"
        self.stderr = open(rundir / f"card{idx}.stderr", "w")
        self.proc = subprocess.Popen(
            [str(bins / "metis-emu"), "--socket", str(self.sock), "--control", str(self.ctl),
             "--log", str(self.events), *args],
            stdout=self.stderr, stderr=self.stderr)
        deadline = time.time() + 30
        while not (self.sock.exists() and self.ctl.exists()):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"metis-emu did not start: {(rundir / f'card{idx}.stderr').read_text()}")
            time.sleep(0.05)

    def control(self, line: str) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            # Storms and slow injections hold the reply until they are done.
            s.settimeout(60)
            s.connect(str(self.ctl))
            s.sendall(line.encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        return data.decode().strip()

    def stop(self) -> None:
        # The card exits by itself once QEMU has let go of it, after logging its
        # state (`disconnect` event); give it a moment before asking.
        try:
            self.proc.wait(3)
        except subprocess.TimeoutExpired:
            pass
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.stderr.close()


def qemu_command(arch: str, iommu: str, build: Build, rundir: Path, cards: list[Card],
                 cmdline_extra: str, mem_mb: int, smp: int) -> list[str]:
    append = ["console=ttyS0" if arch == "x86_64" else "console=ttyAMA0", "panic=-1",
              "dma_debug_entries=262144",
              "kmemleak=on", "loglevel=7", "printk.time=1"]
    if arch == "x86_64":
        machine = "q35,accel=tcg,memory-backend=mem"
        dev = []
        # The boot's check that the timer interrupt arrives through the IO-APIC waits a
        # fixed number of loops: a TCG guest on a loaded host can miss it, and with
        # interrupt remapping the kernel then panics ("timer doesn't work through
        # Interrupt-remapped IO-APIC", a new-machine make check). KVM guests skip it too.
        append += ["no_timer_check"]
        if iommu == "translated":
            machine += ",kernel-irqchip=split"
            dev = ["-device", "intel-iommu,intremap=on,caching-mode=on,device-iotlb=off"]
            append += ["intel_iommu=on", "iommu.strict=1"]
        elif iommu == "pt":
            machine += ",kernel-irqchip=split"
            dev = ["-device", "intel-iommu,intremap=on,caching-mode=on"]
            append += ["intel_iommu=on", "iommu=pt"]
        # la57=off: with 5-level paging, a timer interrupt that lands while the boot CPU
        # is re-identified (its LA57 feature bit briefly clear) makes KASAN take the lock
        # of the interrupt descriptor for a wild access; the report taints the kernel and
        # switches lockdep off for the rest of the boot.
        cmd = ["qemu-system-x86_64", "-machine", machine, "-cpu", "max,la57=off", "-global",
               "ICH9-LPC.disable_s3=0"] + dev
    else:
        cmd = ["qemu-system-aarch64", "-machine", "virt,gic-version=3,accel=tcg,memory-backend=mem",
               "-cpu", "cortex-a76"]
        if iommu == "translated":
            cmd += ["-device", "virtio-iommu-pci"]
            append += ["iommu.strict=1"]
    cmd += [
        "-m", f"{mem_mb}M", "-smp", str(smp),
        "-object", f"memory-backend-memfd,id=mem,size={mem_mb}M,share=on",
        "-nographic", "-no-reboot", "-nodefaults",
        "-chardev", f"file,id=con,path={rundir / 'console.log'}",
        "-serial", "chardev:con",
        # The guest's second serial port (ttyS1 / ttyAMA1) is its line channel to the runner.
        "-chardev", f"socket,id=hostctl,path={rundir / 'hostctl.sock'},server=on,wait=off",
        "-serial", "chardev:hostctl",
        "-qmp", f"unix:{rundir / 'qmp.sock'},server=on,wait=off",
        "-kernel", str(build.image),
        "-initrd", str(build.initrd),
        "-append", " ".join(a for a in append if a) + " " + cmdline_extra,
    ]
    for i, card in enumerate(cards):
        # 5 GT/s: QEMU 11.1's root port never reports Data Link Layer Link Active
        # for a vfio-user device, and the guest gives up on any faster port after a
        # secondary bus reset (which AER recovery does) when that bit stays clear.
        cmd += ["-device", f"pcie-root-port,id=rp{i},chassis={i + 1},slot={i + 1},x-speed=5"]
        cmd += ["-device", json.dumps({"driver": "vfio-user-pci", "id": f"metis{i}", "bus": f"rp{i}",
                                       "socket": {"path": str(card.sock), "type": "unix"}})]
    return cmd


class Qmp:
    def __init__(self, path: Path) -> None:
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(30)
        self.s.connect(str(path))
        self.f = self.s.makefile("rwb")
        self._read()  # greeting
        self.cmd("qmp_capabilities")

    def _read(self) -> dict:
        while True:
            line = self.f.readline()
            if not line:
                raise RuntimeError("QMP closed")
            msg = json.loads(line)
            if "event" not in msg:
                return msg

    def cmd(self, name: str, **args) -> dict:
        self.f.write(json.dumps({"execute": name, "arguments": args}).encode() + b"\n")
        self.f.flush()
        return self._read()


class HostChannel:
    """The guest's line channel to the host (its second serial port).

    Requests, one per line:  card N <control command>   -> the card's JSON reply
                             perf-snap N LABEL           -> card N's counters are kept, under
                                                            LABEL, for the perf report
                                                            (tests/harness/perf_report.py);
                                                            the guest gets only "ok"
                             qmp <command> [json args]   -> the QMP reply
                             sleep-ms N                  -> "ok" after N ms (host time)
                             wake-after-ms N             -> "ok" at once; N ms later, once the
                                                            guest is suspended, QMP system_wakeup
    """

    def __init__(self, path: Path, cards: list[Card], qmp_path: Path) -> None:
        self.path = path
        self.cards = cards
        self.qmp_path = qmp_path
        self.qmp: Qmp | None = None
        self.sock: socket.socket | None = None
        self.buf = b""
        self.requests: list[str] = []
        self.snapshots: list[dict] = []

    def connect(self) -> bool:
        if self.sock:
            return True
        if not self.path.exists():
            return False
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(str(self.path))
        except OSError:
            s.close()
            return False
        s.setblocking(False)
        self.sock = s
        return True

    def handle(self, line: str) -> str:
        self.requests.append(line)
        parts = line.split(None, 2)
        try:
            if parts[0] == "card":
                return self.cards[int(parts[1])].control(parts[2] if len(parts) > 2 else "stats")
            if parts[0] == "perf-snap":
                snap = json.loads(self.cards[int(parts[1])].control("snapshot"))
                if not snap.get("ok"):
                    return json.dumps({"error": f"card {parts[1]}: {snap}"})
                self.snapshots.append({"card": int(parts[1]), "label": parts[2], "snap": snap})
                return "ok"
            if parts[0] == "qmp":
                if self.qmp is None:
                    self.qmp = Qmp(self.qmp_path)
                rest = line.split(None, 2)
                args = json.loads(rest[2]) if len(rest) > 2 else {}
                return json.dumps(self.qmp.cmd(rest[1], **args))
            if parts[0] == "sleep-ms":
                time.sleep(int(parts[1]) / 1000)
                return "ok"
            if parts[0] == "wake-after-ms":
                if self.qmp is None:
                    self.qmp = Qmp(self.qmp_path)
                threading.Thread(target=self._wake, args=(self.qmp, int(parts[1])), daemon=True).start()
                return "ok"
        except Exception as e:  # the guest gets the error as its answer
            return json.dumps({"error": str(e)})
        return json.dumps({"error": f"unknown request {line!r}"})

    @staticmethod
    def _wake(qmp: Qmp, delay_ms: int) -> None:
        # The guest is blocked in `echo mem > /sys/power/state` and sends nothing until it
        # wakes, so this thread has the QMP connection to itself.
        time.sleep(delay_ms / 1000)
        deadline = time.time() + 60
        try:
            while time.time() < deadline:
                if qmp.cmd("query-status").get("return", {}).get("status") == "suspended":
                    qmp.cmd("system_wakeup")
                    return
                time.sleep(0.05)
        except (OSError, RuntimeError):
            pass

    def _drop(self) -> None:
        # QEMU closed the connection (it can drop an early client while it
        # starts up): forget it and connect again on the next poll.
        if self.sock:
            self.sock.close()
        self.sock = None
        self.buf = b""

    def poll(self) -> None:
        if not self.connect():
            return
        assert self.sock
        try:
            r, _, _ = select.select([self.sock], [], [], 0)
            if not r:
                return
            data = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop()
            return
        if not data:
            self._drop()
            return
        self.buf += data
        while b"\n" in self.buf:
            raw, self.buf = self.buf.split(b"\n", 1)
            line = raw.decode(errors="replace").strip()
            if not line.startswith("@"):
                continue
            tag, _, request = line.partition(" ")
            reply = self.handle(request)
            try:
                self.sock.setblocking(True)
                self.sock.sendall(f"{tag} {reply}\n".encode())
                self.sock.setblocking(False)
            except OSError:
                self._drop()
                return


LOCKDEP_START = re.compile(r"WARNING: (possible circular locking dependency|possible recursive locking)"
                           r"|BUG: Invalid wait context")


def foreign_lockdep_lines(lines: list[str]) -> dict[int, bool]:
    """Lines of lockdep reports that name no metis lock, function or module
    (value True on the report's first line, False on the rest).

    Lockdep reports a dependency between two locks it saw taken in both orders;
    when neither chain passes through metis (no frame, lock class or module of
    ours), it is a report about the kernel itself (e.g. pciehp's reset_lock
    against pci_rescan_remove_lock on hot-unplug) and not this driver's to fix.
    A report ends with the call trace of its "stack backtrace:".

    An invalid-wait-context report is about one lock taken while others are
    held: it is foreign when neither that lock, nor where it is taken, nor any
    held lock is ours, whoever called in (e.g. aer_inject's config accessors
    taking their spinlock under the PCI core's raw MSI lock while a driver
    restores its state after an AER reset).
    """
    foreign: dict[int, bool] = {}
    plain = [TS_RE.sub("", ln.rstrip("\r")) for ln in lines]
    for i, line in enumerate(plain):
        if not LOCKDEP_START.search(line):
            continue
        end, state = i, "report"
        for j in range(i + 1, min(i + 600, len(plain))):
            end = j
            if state == "report" and plain[j].startswith("stack backtrace:"):
                state = "backtrace"
            elif state == "backtrace" and plain[j].lower().startswith("call trace:"):
                state = "frames"
            elif state == "frames" and not plain[j].startswith((" ", "\t")):
                end = j - 1
                break
        block = plain[i:end + 1]
        if "Invalid wait context" in line:
            block = plain[i:next((j for j in range(i, end + 1)
                                  if plain[j].startswith("stack backtrace:")), end + 1)]
        if not any("metis" in b for b in block):
            for k in range(i, end + 1):
                foreign[k] = k == i
    return foreign


def parse_console(text: str, res: Result) -> None:
    allow: list[re.Pattern] = []
    in_kunit = False
    booted = False
    boot_reports: list[str] = []
    raw_lines = text.splitlines()
    foreign = foreign_lockdep_lines(raw_lines)
    foreign_text = "\n".join(TS_RE.sub("", raw_lines[n]) for n in sorted(foreign))
    # Any lockdep report, ours or not, switches lock checking off for the rest of
    # the boot; a scenario may accept that from a known kernel report.
    lockdep_off_ok: list[re.Pattern] = []
    lockdep_off_seen = False
    for n, raw in enumerate(raw_lines):
        line = TS_RE.sub("", raw.rstrip("\r"))
        if n in foreign:
            if foreign[n]:
                res.notes.append("kernel lockdep report that involves no metis code (not failing): "
                                 + line.strip())
            continue
        if line.startswith("@@BOOTED"):
            booted = True
        if line.startswith("@@LOCKDEP-OFF-OK "):
            lockdep_off_ok.append(re.compile(line[len("@@LOCKDEP-OFF-OK "):]))
            continue
        m = re.match(r"@@LOCKDEP (\S+) (\d+)", line)
        if m:
            if m.group(2) == "0" and not lockdep_off_seen:
                lockdep_off_seen = True
                if any(p.search(foreign_text) for p in lockdep_off_ok):
                    res.notes.append(f"lock checking was switched off during {m.group(1)} by the "
                                     "kernel report it expects; later results were not lock-checked")
                else:
                    res.failed.append(f"lock_checking_{m.group(1)} # lockdep was switched off "
                                      "during the boot (the first report or taint in the console "
                                      "says why); results from then on were not lock-checked")
            continue
        if line.startswith("@@ALLOW "):
            allow.append(re.compile(line[len("@@ALLOW "):]))
            continue
        if line.startswith("@@TAP "):
            body = line[len("@@TAP "):]
            m = re.match(r"(not ok|ok)\s+(\S+)(.*)", body)
            if m:
                (res.passed if m.group(1) == "ok" else res.failed).append(
                    m.group(2) + (m.group(3) if m.group(1) == "not ok" else ""))
            continue
        if line.startswith("@@NOTE "):
            res.notes.append(line[len("@@NOTE "):])
            continue
        # KUnit: suites are announced with "# Subtest: name"; cases are indented results.
        if re.match(r"\s*# Subtest: metis_", line):
            in_kunit = True
            continue
        if in_kunit:
            m = re.match(r"\s{4,}(not ok|ok) \d+ (\S+)(.*)", line)
            if m:
                name = "kunit." + m.group(2)
                if m.group(1) == "ok" and "# SKIP" not in m.group(3):
                    res.passed.append(name)
                elif m.group(1) == "not ok":
                    res.failed.append(name + m.group(3))
                continue
            if re.match(r"(not ok|ok) \d+ metis_", line.strip()) and not line.startswith("    "):
                in_kunit = False
        if SPLAT_RE.search(line) and not any(a.search(line) for a in allow):
            if booted:
                res.splats.append(line.strip())
            else:
                # Before init runs, no metis code is loaded: such a report belongs to the
                # kernel or the emulated platform, so it is shown but does not fail the run.
                boot_reports.append(line.strip())
    if boot_reports:
        res.notes.append("kernel report during boot, before any test (not attributable to metis): "
                         + " | ".join(boot_reports[:3]))


# Cards of a shared boot: card0 is a Metis, card1 presents the Synopsys IDs
# upstream dw-edma-pcie binds to (tests/scenarios/dw-edma.sh).
SHARED_CARDS = [[], ["--identity", "synopsys"]]


def scenario_header(name: str, key: str) -> str | None:
    for line in (REPO / "tests" / "scenarios" / f"{name}.sh").read_text().splitlines():
        if line.startswith(f"# {key}:"):
            return line.split(":", 1)[1].strip()
    return None


# A TCG guest on a loaded host has been seen to stop for good right after bringing up its
# second CPU (Debian's x86_64 kernel on x86-pt, with "calibrate_delay_direct() failed"
# just before): no output at all before init. A healthy boot prints something at least
# every few seconds, and reaches init within two minutes even then.
BOOT_STALL_S = 300


def run_boot(build: Build, config: str, scenarios: list[str],
             card_args: list[list[str]] | None = None, timeout: int = 2700, mem_mb: int = 1024,
             smp: int = 2, verbose: bool = False, cmdline_extra: str = "") -> Result:
    """Boots one guest and runs `scenarios` in it, in order. A boot whose kernel stalls
    before init (BOOT_STALL_S) is tried once more, and says so in its notes."""
    args = (build, config, scenarios, card_args, timeout, mem_mb, smp, verbose, cmdline_extra)
    res = _boot_once(*args)
    if res.stalled:
        first = res
        res = _boot_once(*args)
        res.notes.insert(0, "the first boot stalled before init and was tried again: "
                         + "; ".join(first.failed[:1]))
    return res


def _boot_once(build: Build, config: str, scenarios: list[str],
               card_args: list[list[str]] | None, timeout: int, mem_mb: int,
               smp: int, verbose: bool, cmdline_extra: str) -> Result:
    arch, iommu = CONFIGS[config]
    assert arch == build.arch
    label = "+".join(scenarios)
    # A Debian kernel's boots are named apart from the test kernel's.
    name = config if build.kdir else f"deb-{config}"
    res = Result(name, label)
    # Socket paths must fit in sun_path (108 bytes): keep the directory name short.
    rundir = CACHE / "runs" / f"{name}-{label[:20]}-{os.getpid()}"
    shutil.rmtree(rundir, ignore_errors=True)
    rundir.mkdir(parents=True)
    if card_args is None:
        own = scenario_header(scenarios[0], "cards")
        card_args = [c.split() for c in own.split("|")] if own is not None else SHARED_CARDS
    # A scenario of its own may ask for more guest memory (`# mem: MB`).
    mem_mb = int(scenario_header(scenarios[0], "mem") or mem_mb)
    cards = [Card(build.bins, rundir, i, a) for i, a in enumerate(card_args)]
    cmd = qemu_command(arch, iommu, build, rundir, cards,
                       f"metis.scenario={','.join(scenarios)} metis.config={config} "
                       f"metis.soak={os.environ.get('METIS_SOAK', '0')} "
                       f"kunit.filter_glob=metis* {cmdline_extra}",
                       mem_mb, smp)
    (rundir / "qemu.cmd").write_text(" ".join(cmd))
    t0 = time.time()
    qemu_log = open(rundir / "qemu.log", "w")
    qemu = subprocess.Popen(["bash", str(HARNESS / "toolroot.sh"), *cmd],
                            stdout=qemu_log, stderr=subprocess.STDOUT, start_new_session=True)
    chan = HostChannel(rundir / "hostctl.sock", cards, rundir / "qmp.sock")
    console = rundir / "console.log"
    pos = 0
    timed_out = False
    powered_down_at = 0.0
    ticks = 0
    booted = False
    grown_at, size = time.time(), -1
    try:
        while qemu.poll() is None:
            chan.poll()
            if not booted and ticks % 25 == 0 and console.exists():
                now_size = console.stat().st_size
                if now_size != size:
                    grown_at, size = time.time(), now_size
                    booted = b"@@BOOTED" in console.read_bytes()
                elif time.time() - grown_at > BOOT_STALL_S:
                    res.stalled = True
                    last = console.read_text(errors="replace").rstrip().splitlines()[-1:]
                    res.failed.append(f"boot stalled: no console output for {BOOT_STALL_S} s "
                                      f"before init (last line: {' '.join(last)[:160]})")
                    os.killpg(qemu.pid, signal.SIGKILL)
                    break
            # After S3 cycles QEMU sometimes ignores the ACPI S5 request and the kernel then
            # panics in the exiting init; the guest is done by then, so stop QEMU ourselves.
            ticks += 1
            if (not powered_down_at and ticks % 25 == 0 and console.exists()
                    and b"reboot: Power down" in console.read_bytes()):
                powered_down_at = time.time()
            if powered_down_at and time.time() - powered_down_at > 3:
                os.killpg(qemu.pid, signal.SIGKILL)
                break
            if verbose and console.exists():
                with open(console, "rb") as f:
                    f.seek(pos)
                    chunk = f.read()
                    pos += len(chunk)
                    if chunk:
                        sys.stdout.write(chunk.decode(errors="replace"))
                        sys.stdout.flush()
            if time.time() - t0 > timeout:
                timed_out = True
                os.killpg(qemu.pid, signal.SIGKILL)
                break
            time.sleep(0.02)
        qemu.wait()
    finally:
        if qemu.poll() is None:
            os.killpg(qemu.pid, signal.SIGKILL)
        for c in cards:
            c.stop()
        qemu_log.close()
    res.seconds = time.time() - t0
    (rundir / "host-requests.log").write_text("\n".join(chan.requests) + "\n")
    text = console.read_text(errors="replace") if console.exists() else ""
    if chan.snapshots:
        perf_report.report(rundir, config, chan.snapshots, text, res)
    if verbose and console.exists():
        sys.stdout.write(text[pos:] if pos < len(text) else "")
    # What the kernel prints after it asked the machine to power off is not the driver's.
    parse_console(text.split("reboot: Power down", 1)[0], res)
    if timed_out:
        res.failed.append(f"timeout after {timeout}s")
    for scen in scenarios:
        if f"@@END {scen}" not in text:
            res.failed.append(f"scenario {scen} did not finish")
    if "@@DONE" not in text:
        res.failed.append("guest did not finish the scenario (see console.log)")
    for name, why in poweroff_checks(text, cards):
        if why:
            res.failed.append(f"{name} # {why}")
        else:
            res.passed.append(name)
    # The card's own verdict: faults the scenario did not declare fail the run.
    expected: dict[int, int] = {}
    for m in re.finditer(r"@@EXPECT-FAULTS (\d+) (\d+)", text):
        expected[int(m.group(1))] = expected.get(int(m.group(1)), 0) + int(m.group(2))
    for i, c in enumerate(cards):
        faults = count_faults(c.events)
        if faults != expected.get(i, 0):
            res.failed.append(f"card{i}: {faults} fault events, scenario expected {expected.get(i, 0)}")
    if not res.ok and not res.failed and not res.splats:
        res.failed.append("no test result reported")
    (rundir / "result.json").write_text(json.dumps(res.__dict__, indent=1))
    if res.stalled:
        # Kept apart from the next attempt's, which starts from a clean directory.
        kept = rundir.with_name(rundir.name + "-stalled")
        shutil.rmtree(kept, ignore_errors=True)
        rundir = rundir.rename(kept)
    res.notes.append(f"logs: {rundir}")
    return res


# DesignWare eDMA channel status (CH_CONTROL1.CS): the channel is moving data.
EDMA_CS_RUNNING = 1


def poweroff_checks(text: str, cards: list[Card]) -> list[tuple[str, str | None]]:
    """The checks a guest asked for with `@@EXPECT-QUIESCED-AT-POWEROFF N`:
    when QEMU let go of card N after the guest powered off (so after the
    driver's `shutdown`), its engine was disabled, no channel was running and
    its firmware interrupts were masked. The card logs its state at that
    moment as its `disconnect` event. Returns (name, None if it held, else why
    not)."""
    out: list[tuple[str, str | None]] = []
    for idx in sorted({int(m.group(1)) for m in re.finditer(r"@@EXPECT-QUIESCED-AT-POWEROFF (\d+)", text)}):
        name = f"card{idx}_quiesced_at_poweroff"
        if "reboot: Power down" not in text:
            out.append((name, "the guest did not power off"))
            continue
        dev = None
        if idx < len(cards):
            for ev in read_events(cards[idx].events):
                if ev.get("kind") == "disconnect":
                    dev = ev.get("device")
        if dev is None:
            out.append((name, "the card logged no disconnect state"))
            continue
        bad = []
        for d in ("wr", "rd"):
            eng = dev["edma"][d]
            if eng["engine_en"]:
                bad.append(f"{d} engine enabled")
            running = [i for i, c in enumerate(eng["channels"]) if c["cs"] == EDMA_CS_RUNNING]
            if running:
                bad.append(f"{d} channels {running} running")
        # The firmware's interrupts: the virtual-MSI registration is withdrawn.
        if dev["vmsi"]["ctrl"] != 0:
            bad.append(f"virtual-MSI registration still enabled (ctrl {dev['vmsi']['ctrl']})")
        out.append((name, ", ".join(bad) or None))
    return out


def read_events(events: Path) -> list[dict]:
    """A card's event log (one JSON object per line; a torn last line is skipped)."""
    out = []
    if events.exists():
        for line in events.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


def count_faults(events: Path) -> int:
    return sum(1 for ev in read_events(events) if ev.get("kind") == "fault" or ev.get("type") == "fault")


def print_result(r: Result) -> None:
    status = "PASS" if r.ok else "FAIL"
    print(f"== {status} {r.config} {r.scenario}: {len(r.passed)} passed, {len(r.failed)} failed, "
          f"{len(r.splats)} splats, {r.seconds:.0f} s", flush=True)
    for f in r.failed:
        print(f"   not ok {f}")
    for s in r.splats[:10]:
        print(f"   splat: {s}")
    for n in r.notes:
        print(f"   {n}")


def print_demo(r: Result) -> int:
    """The demo's story: the guest's @@SAY lines, then the verdict and where the logs are."""
    logs = next((n[len("logs: "):] for n in r.notes if n.startswith("logs: ")), str(CACHE / "runs"))
    console = Path(logs) / "console.log"
    text = console.read_text(errors="replace") if console.exists() else ""
    for raw in text.splitlines():
        line = TS_RE.sub("", raw.rstrip("\r"))
        if line.startswith("@@SAY "):
            print(line[len("@@SAY "):])
    print()
    if r.ok:
        print(f"Demo passed: {len(r.passed)} checks, no kernel warnings, no card faults; "
              f"the guest ran for {r.seconds:.0f} s.")
    else:
        print_result(r)
        print("Demo FAILED.")
    print(f"Full logs (kernel console, card event logs, QEMU command): {logs}")
    return 0 if r.ok else 1


def scenarios_for(config: str) -> list[str]:
    out = []
    for p in sorted((REPO / "tests" / "scenarios").glob("*.sh")):
        configs = (scenario_header(p.stem, "configs") or "all").split()
        if config in configs or "all" in configs:
            out.append(p.stem)
    return out


# Measured guest run times, so that the matrix starts the longest boots first.
BOOT_SECONDS = CACHE / "boot-seconds.json"


def boot_estimate(config: str, boot: list[str]) -> float:
    """Seconds the boot took last time; without a record, a shared boot (many
    scenarios) is long, a boot of its own short, and x86's debug kernel slower."""
    try:
        known = json.loads(BOOT_SECONDS.read_text())
    except (OSError, ValueError):
        known = {}
    key = f"{config} {'+'.join(boot)}"
    if isinstance(known.get(key), (int, float)):
        return float(known[key])
    return (60.0 if config.startswith("x86") else 20.0) * len(boot)


def record_boot_seconds(res: Result) -> None:
    try:
        known = json.loads(BOOT_SECONDS.read_text())
    except (OSError, ValueError):
        known = {}
    known[f"{res.config} {res.scenario}"] = round(res.seconds)
    tmp = BOOT_SECONDS.with_suffix(".tmp")
    tmp.write_text(json.dumps(known, indent=1, sort_keys=True) + "\n")
    tmp.replace(BOOT_SECONDS)



def boots_for(scenarios: list[str]) -> list[list[str]]:
    """Groups scenarios into boots: those with their own cards boot alone,
    except that scenarios naming the same `# boot: NAME` share one boot (with
    the cards of the first), the scenario called NAME first."""
    shared = [s for s in scenarios if scenario_header(s, "cards") is None]
    own: list[list[str]] = []
    named: dict[str, list[str]] = {}
    for s in scenarios:
        if scenario_header(s, "cards") is None:
            continue
        name = scenario_header(s, "boot")
        if name is None:
            own.append([s])
        elif name in named:
            named[name].append(s)
        else:
            named[name] = [s]
            own.append(named[name])
    for name, group in named.items():
        group.sort(key=lambda s: s != name)
    return ([shared] if shared else []) + own


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("demo")
    d.add_argument("--config", default="x86-translated", choices=CONFIGS)
    d.add_argument("-v", "--verbose", action="store_true", help="stream the whole console")
    r = sub.add_parser("run")
    r.add_argument("--config", default="x86-none", choices=CONFIGS)
    r.add_argument("--scenario", required=True)
    r.add_argument("--flavour", default=None)
    r.add_argument("-v", "--verbose", action="store_true")
    m = sub.add_parser("matrix")
    m.add_argument("--configs", nargs="*", default=list(CONFIGS))
    m.add_argument("--scenarios", nargs="*", default=None)
    m.add_argument("--flavour", default=None)
    for p in (r, m):
        p.add_argument("--distro", metavar="VERSION", default=None,
                       help="boot Debian's kernel VERSION (e.g. 7.3.4+deb13) with its DKMS-built metis.ko")
    m.add_argument("--serial", action="store_true", help="one guest at a time")
    m.add_argument("--workers", type=int, default=int(os.environ.get("METIS_WORKERS", "2")),
                   help="guests side by side (default 2, or $METIS_WORKERS)")
    args = ap.parse_args()

    def flavour_for(arch: str, override: str | None) -> str:
        if override:
            return override
        return os.environ.get(f"METIS_FLAVOUR_{arch.upper()}", "debug" if arch == "x86_64" else "release")

    if args.cmd == "demo":
        arch = CONFIGS[args.config][0]
        t0 = time.time()
        build = build_all(arch, flavour_for(arch, None))
        print(f"Built: the {arch} {build.flavour} test kernel ({build.kdir}), metis.ko, "
              f"metisctl and the emulated card, in {time.time() - t0:.0f} s.", flush=True)
        print(f"Booting QEMU ({args.config}: {arch}, IOMMU {CONFIGS[args.config][1]}) "
              "with the emulated card attached over vfio-user...\n", flush=True)
        res = run_boot(build, args.config, ["demo"], verbose=args.verbose)
        return print_demo(res)
    def build_for(arch: str) -> Build:
        if args.distro:
            return build_distro(arch, args.distro)
        return build_all(arch, flavour_for(arch, args.flavour))

    if args.cmd == "run":
        arch = CONFIGS[args.config][0]
        build = build_for(arch)
        res = run_boot(build, args.config, args.scenario.split(","), verbose=args.verbose)
        print_result(res)
        return 0 if res.ok else 1
    builds: dict[str, Build] = {}
    for config in args.configs:
        arch = CONFIGS[config][0]
        if arch not in builds:
            builds[arch] = build_for(arch)
    # Every boot of every configuration goes into one queue, the longest first, and
    # `--workers` guests run side by side: a guest leaves a core idle much of the time
    # (sleeps, host requests, timeouts, a serial boot), and lanes per architecture left
    # the short arm64 lane idle for most of the run.
    queue: list[tuple[float, int, str, list[str]]] = []
    for config in args.configs:
        # --scenarios picks among those the configuration runs (each scenario's `# configs:`).
        wanted = [s for s in scenarios_for(config)
                  if s != "demo" and (not args.scenarios or s in args.scenarios)]
        for boot in boots_for(wanted):
            queue.append((boot_estimate(config, boot), len(queue), config, boot))
    queue.sort(key=lambda q: (-q[0], q[1]))
    results_by_slot: dict[int, Result] = {}
    printing = threading.Lock()

    def worker() -> None:
        while True:
            with printing:
                if not queue:
                    return
                _, slot, config, boot = queue.pop(0)
            arch = CONFIGS[config][0]
            try:
                res = run_boot(builds[arch], config, boot)
            except Exception as e:  # a harness bug must fail the run, not end the worker
                res = Result(config, "+".join(boot))
                res.failed.append(f"harness error: {e!r}\n{traceback.format_exc()}")
            with printing:
                print_result(res)
                sys.stdout.flush()
                results_by_slot[slot] = res
                record_boot_seconds(res)

    workers = 1 if args.serial else max(1, args.workers)
    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # By configuration as asked for, each in queue order (a Debian kernel's are "deb-CONFIG").
    order = {c: i for i, c in enumerate(args.configs)}
    results = sorted((results_by_slot[s] for s in sorted(results_by_slot)),
                     key=lambda r: order.get(r.config.removeprefix("deb-"), len(order)))
    npass = sum(len(r.passed) for r in results)
    nfail = sum(len(r.failed) + len(r.splats) for r in results)
    print("\nconfiguration      result  passed failed splats seconds  scenarios")
    for r in results:
        print(f"{r.config:18} {'PASS' if r.ok else 'FAIL':7} {len(r.passed):6} "
              f"{len(r.failed):6} {len(r.splats):6} {r.seconds:7.0f}  {r.scenario}")
    print(f"\nqemu: {npass} passed, {nfail} failed")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except subprocess.CalledProcessError as e:
        # The failing step already printed its log's tail and where the log is.
        log(f"stopped: {' '.join(map(str, e.cmd))} exited with {e.returncode}")
        sys.exit(1)
