//! Command-line syntax (clap derive).

use crate::size::{parse_nonzero_size, parse_size, parse_size_list, parse_u32, parse_u64};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Control tool of the metis driver (Axelera Metis AI accelerator).
///
/// Exit status: 0 success, 1 the operation failed (the reason, with its
/// errno name, is printed on stderr), 2 usage error.
#[derive(Debug, Parser)]
#[command(name = "metisctl", version, propagate_version = true)]
pub struct Cli {
    /// Device node.
    #[arg(
        short,
        long,
        global = true,
        env = "METIS_DEVICE",
        default_value = "/dev/metis0",
        value_name = "/dev/metisN"
    )]
    pub device: PathBuf,

    /// Print machine-readable JSON on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    /// Timeout passed to the driver for each DMA transfer and command, in
    /// milliseconds (default: the driver's).
    #[arg(long, global = true, value_name = "MS", value_parser = clap::value_parser!(u32).range(1..))]
    pub timeout_ms: Option<u32>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print everything METIS_IOCTL_INFO reports.
    Info,
    /// Firmware status, reload, and notice of firmware the runtime booted.
    #[command(subcommand)]
    Fw(FwCommand),
    /// DMA tools.
    #[command(subcommand)]
    Dma(DmaCommand),
    /// Run one firmware command.
    #[command(subcommand)]
    Cmd(CmdCommand),
    /// Reset the card (METIS_IOCTL_RESET): reboots the firmware; every
    /// device-memory region of every open file is lost.
    Reset,
    /// Every bound card's state from sysfs: address, node, driver and
    /// firmware versions, firmware state and owner, interrupt and IOMMU
    /// modes, resets, memory, bytes moved, DMA channels.
    ///
    /// Needs neither root nor access to /dev/metisN. With --json, an array
    /// with an object per card. Exit status 1 if no card is bound.
    /// METIS_SYSFS moves the sysfs root (default /sys).
    Status(CardArg),
    /// Per-channel DMA statistics of every bound card since probe: jobs,
    /// bytes, errors, timeouts, interrupted and aborted transfers, lost
    /// interrupts, longest and mean duration.
    ///
    /// Read from debugfs (/sys/kernel/debug/metis/<BDF>/stats): run as root,
    /// with debugfs mounted (`mount -t debugfs none /sys/kernel/debug`).
    Stats(CardArg),
    /// The driver's trace of the last 128 DMA transfers of one card (the
    /// first, or --card), oldest first.
    ///
    /// Read from debugfs (/sys/kernel/debug/metis/<BDF>/trace): run as root,
    /// with debugfs mounted. With --json, one JSON object per line.
    Trace(TraceArgs),
    /// Check what this machine needs for a Metis card and say what to fix:
    /// kernel options (also those the runtime needs), module, firmware file,
    /// each card's BARs, link, driver, device node, and from the driver's
    /// sysfs attributes its firmware state, interrupt and IOMMU modes and
    /// resets, the dma-heap. Works when the driver refused the card.
    /// Exit status 1 if anything prevents using a card.
    Doctor {
        /// The kernel's configuration (default: /boot/config-<release>).
        #[arg(long, value_name = "FILE")]
        kernel_config: Option<std::path::PathBuf>,
    },
}

/// `--card` of `status` and `stats`.
#[derive(Debug, Args)]
pub struct CardArg {
    /// Only this card: its PCI address (0000:01:00.0 or 01:00.0), metisN
    /// or /dev/metisN (default: every bound card).
    #[arg(long, value_name = "BDF|metisN|/dev/metisN")]
    pub card: Option<String>,
}

/// `trace` options.
#[derive(Debug, Args)]
pub struct TraceArgs {
    /// The card: its PCI address, metisN or /dev/metisN (default: the
    /// first bound card).
    #[arg(long, value_name = "BDF|metisN|/dev/metisN")]
    pub card: Option<String>,
    /// Keep reading (every 200 ms) and print each new transfer; after the
    /// trace is cleared, start over with the new ones. Ends with Ctrl-C.
    #[arg(long, short)]
    pub follow: bool,
    /// Empty the trace (sequence numbers start again at 1) and exit.
    #[arg(long, conflicts_with = "follow")]
    pub clear: bool,
}

/// `fw` subcommands.
#[derive(Debug, Subcommand)]
pub enum FwCommand {
    /// Firmware state, owner, version and interface version.
    Status,
    /// Reload the firmware from /lib/firmware and reboot the card with it.
    ///
    /// The driver keeps the image it loaded at probe and boots it after every
    /// reset; this makes it read the file again (METIS_IOCTL_RESET with
    /// METIS_RESET_RELOAD_FIRMWARE), e.g. after a firmware update. A file the
    /// driver refuses leaves the card running the old firmware. Prints the
    /// status; fails (exit 1) unless the firmware ends up ready.
    Load {
        /// How long to wait for the firmware to boot, in seconds.
        #[arg(long, default_value_t = 10, value_name = "SECS")]
        wait: u64,
    },
    /// Tell the driver that userspace booted new firmware on a runtime-owned
    /// card: it re-reads the firmware's areas and registers its interrupt
    /// table.
    ///
    /// METIS_IOCTL_FW_CHANGED. The vendor runtime does this itself after
    /// loading the firmware; this is for firmware booted by other means.
    /// Fails on a kernel-owned card (the driver loads that one: `fw load`).
    /// Prints the status.
    Changed,
}

/// `dma` subcommands.
#[derive(Debug, Subcommand)]
pub enum DmaCommand {
    /// Time DMA transfers at each size and check a round trip.
    Bench(BenchArgs),
}

/// Transfer directions to benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DirArg {
    /// Host to device.
    To,
    /// Device to host.
    From,
    /// Both, one after the other at each size.
    Both,
    /// Both at once: jobs of the two directions alternate in flight.
    Bidir,
}

/// Host buffers `dma bench` times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BufferArg {
    /// Process memory, pinned and mapped per transfer.
    User,
    /// Driver-exported dma-bufs.
    Dmabuf,
    /// Both, user first.
    Both,
    /// Process memory registered with the driver once (pinned and mapped for the run).
    Registered,
}

/// Where user buffers start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AlignArg {
    /// At a page boundary: a transfer spans the fewest pages.
    Page,
    /// 16 bytes into a page, where a heap allocator often puts large
    /// buffers: one page more to pin and map.
    Odd,
}

/// `dma bench` options.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Sizes: LO..HI doubles from LO to HI, or a comma list (4K, 64M, 0x1000, 4096).
    #[arg(long, default_value = "4K..64M", value_parser = parse_sizes)]
    pub sizes: SizeList,
    /// Directions to time.
    #[arg(long, value_enum, default_value_t = DirArg::Both)]
    pub dir: DirArg,
    /// Timed transfers per size and direction.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub iters: u32,
    /// Also time transfers through driver-exported dma-bufs (zero copy), next to the
    /// ordinary user buffers (`--buffer both`).
    #[arg(long, conflicts_with = "buffer")]
    pub dmabuf: bool,
    /// Which host buffers to time: user (pinned per transfer), dmabuf (exported by
    /// the driver, zero copy), both, or registered (pinned and mapped once).
    #[arg(long, value_enum)]
    pub buffer: Option<BufferArg>,
    /// Skip the round-trip integrity check.
    #[arg(long)]
    pub no_verify: bool,
    /// Jobs in flight per direction: 1 times synchronous transfers; more
    /// submits asynchronous jobs and reaps them in order (user buffers only).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub qd: u32,
    /// Where user buffers start.
    #[arg(long, value_enum, default_value_t = AlignArg::Page)]
    pub align: AlignArg,
    /// Jobs per submission: above 1, each submission is one batch of this many
    /// jobs of one direction (one doorbell and one interrupt for all of them);
    /// --iters and --warmup then count batches.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=metis::MAX_BATCH as i64))]
    pub batch: u32,
    /// Untimed transfers before each timed row.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub warmup: u32,
    /// Also write the JSON document to this file.
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
}

/// A parsed `--sizes` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizeList(pub Vec<u64>);

fn parse_sizes(s: &str) -> Result<SizeList, String> {
    parse_size_list(s).map(SizeList)
}

/// Ops of `cmd run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RunOpArg {
    /// out = in.
    Copy,
    /// out = bitwise NOT of in.
    Not,
    /// out = in XOR the low byte of --arg.
    Xor,
    /// out = in plus (arg + byte index) mod 256, bytewise.
    AddIndex,
}

impl From<RunOpArg> for metis::RunOp {
    fn from(o: RunOpArg) -> Self {
        match o {
            RunOpArg::Copy => metis::RunOp::Copy,
            RunOpArg::Not => metis::RunOp::Not,
            RunOpArg::Xor => metis::RunOp::Xor,
            RunOpArg::AddIndex => metis::RunOp::AddIndex,
        }
    }
}

/// `cmd` subcommands. Each allocates the regions it needs, loads them with
/// DMA, runs the command and checks the result on the host.
#[derive(Debug, Subcommand)]
pub enum CmdCommand {
    /// ECHO: send up to 256 bytes through the firmware and check they come back.
    Echo {
        /// Payload as text.
        #[arg(conflicts_with = "hex", required_unless_present = "hex")]
        text: Option<String>,
        /// Payload as hex bytes (e.g. 00ff10).
        #[arg(long, value_parser = parse_hex_arg)]
        hex: Option<HexBytes>,
    },
    /// CHECKSUM: CRC-32 of a range, compared with the host's CRC-32 of the data.
    Checksum {
        /// Bytes to checksum (default: the file size with --file, else 1M).
        #[arg(long, value_parser = parse_nonzero_size)]
        len: Option<u64>,
        /// Offset of the range in the region.
        #[arg(long, default_value = "0", value_parser = parse_size)]
        offset: u64,
        /// Data to load (default: pseudo-random bytes from --seed).
        #[arg(long)]
        file: Option<PathBuf>,
        /// Seed of the pseudo-random data.
        #[arg(long, default_value = "1", value_parser = parse_u64)]
        seed: u64,
    },
    /// FILL: fill a range with a 32-bit pattern, read it back and check it.
    Fill {
        /// Bytes to fill.
        #[arg(long, default_value = "1M", value_parser = parse_nonzero_size)]
        len: u64,
        /// Offset of the range in the region.
        #[arg(long, default_value = "0", value_parser = parse_size)]
        offset: u64,
        /// 32-bit pattern (its little-endian bytes repeat).
        #[arg(long, default_value = "0xa5a5a5a5", value_parser = parse_u32)]
        pattern: u32,
    },
    /// RUN: transform an input range into an output range; checks the output
    /// bytes and the returned CRC-32 against the host's.
    Run {
        /// Transform.
        #[arg(long, value_enum, default_value_t = RunOpArg::Copy)]
        op: RunOpArg,
        /// Key: XOR byte, ADD_INDEX base.
        #[arg(long, default_value = "0", value_parser = parse_u32)]
        arg: u32,
        /// Bytes to transform.
        #[arg(long, default_value = "1M", value_parser = parse_nonzero_size)]
        len: u64,
        /// Seed of the pseudo-random input.
        #[arg(long, default_value = "1", value_parser = parse_u64)]
        seed: u64,
    },
}

/// A parsed `--hex` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HexBytes(pub Vec<u8>);

fn parse_hex_arg(s: &str) -> Result<HexBytes, String> {
    parse_hex(s).map(HexBytes)
}

/// Parses hex bytes: `00ff10`, `0x00ff10`, `00 ff 10`, `00:ff:10`.
pub fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    let t: String = s
        .trim()
        .trim_start_matches("0x")
        .chars()
        .filter(|c| !matches!(c, ' ' | ':' | '_'))
        .collect();
    if !t.len().is_multiple_of(2) {
        return Err(format!("hex '{s}' has an odd number of digits"));
    }
    (0..t.len())
        .step_by(2)
        .map(|i| {
            t.get(i..i + 2)
                .and_then(|p| u8::from_str_radix(p, 16).ok())
                .ok_or_else(|| format!("invalid hex '{s}'"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("metisctl").chain(args.iter().copied()))
    }

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn globals_anywhere() {
        let c = parse(&["info", "--device", "/dev/metis3", "--json"]).unwrap();
        assert_eq!(c.device, PathBuf::from("/dev/metis3"));
        assert!(c.json);
        assert!(matches!(c.command, Command::Info));
        let c = parse(&["-d", "/dev/metis1", "fw", "status"]).unwrap();
        assert_eq!(c.device, PathBuf::from("/dev/metis1"));
        assert!(matches!(c.command, Command::Fw(FwCommand::Status)));
        assert!(!c.json);
        assert_eq!(c.timeout_ms, None);
        let c = parse(&["--timeout-ms", "500", "reset"]).unwrap();
        assert_eq!(c.timeout_ms, Some(500));
        assert!(parse(&["--timeout-ms", "0", "reset"]).is_err());
    }

    #[test]
    fn bench_defaults() {
        let c = parse(&["dma", "bench"]).unwrap();
        let Command::Dma(DmaCommand::Bench(b)) = c.command else {
            panic!("not bench");
        };
        assert_eq!(b.sizes.0.len(), 15);
        assert_eq!(b.sizes.0[0], 4096);
        assert_eq!(*b.sizes.0.last().unwrap(), 64 << 20);
        assert_eq!(b.dir, DirArg::Both);
        assert_eq!(b.iters, 10);
        assert!(!b.dmabuf && !b.no_verify);
        assert_eq!((b.qd, b.align, b.warmup), (1, AlignArg::Page, 3));
        assert_eq!(b.out, None);
    }

    #[test]
    fn bench_queue_depth_and_both_directions_at_once() {
        let c = parse(&[
            "dma",
            "bench",
            "--qd",
            "16",
            "--dir",
            "bidir",
            "--align",
            "odd",
            "--warmup",
            "0",
            "--out",
            "/tmp/b.json",
        ])
        .unwrap();
        let Command::Dma(DmaCommand::Bench(b)) = c.command else {
            panic!("not bench");
        };
        assert_eq!(
            (b.qd, b.dir, b.align, b.warmup),
            (16, DirArg::Bidir, AlignArg::Odd, 0)
        );
        assert_eq!(b.out, Some(PathBuf::from("/tmp/b.json")));
        for bad in [&["--qd", "0"][..], &["--qd", "65"], &["--align", "none"]] {
            let mut a = vec!["dma", "bench"];
            a.extend_from_slice(bad);
            assert!(parse(&a).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn bench_options() {
        let c = parse(&[
            "dma", "bench", "--sizes", "4K..16K", "--dir", "from", "--iters", "3", "--dmabuf",
        ])
        .unwrap();
        let Command::Dma(DmaCommand::Bench(b)) = c.command else {
            panic!("not bench");
        };
        assert_eq!(b.sizes, SizeList(vec![4096, 8192, 16384]));
        assert_eq!(b.dir, DirArg::From);
        assert_eq!(b.iters, 3);
        assert!(b.dmabuf);
        let c = parse(&["dma", "bench", "--buffer", "dmabuf"]).unwrap();
        let Command::Dma(DmaCommand::Bench(b)) = c.command else {
            panic!("not bench");
        };
        assert_eq!(b.buffer, Some(BufferArg::Dmabuf));
        assert!(parse(&["dma", "bench", "--buffer", "user", "--dmabuf"]).is_err());
    }

    #[test]
    fn usage_errors() {
        for args in [
            &["dma", "bench", "--sizes", "4Q"][..],
            &["dma", "bench", "--dir", "sideways"],
            &["dma", "bench", "--iters", "0"],
            &["cmd", "echo"],
            &["cmd", "echo", "hi", "--hex", "00"],
            &["cmd", "fill", "--len", "0"],
            &["cmd", "fill", "--pattern", "0x100000000"],
            &["cmd", "run", "--op", "rot13"],
            &["frobnicate"],
            &[],
        ] {
            let e = parse(args).unwrap_err();
            assert_ne!(e.kind(), ErrorKind::DisplayHelp, "{args:?}");
            assert_eq!(e.exit_code(), 2, "{args:?}");
        }
    }

    #[test]
    fn cmd_args() {
        let c = parse(&[
            "cmd",
            "run",
            "--op",
            "add-index",
            "--arg",
            "0x10",
            "--len",
            "64K",
        ])
        .unwrap();
        let Command::Cmd(CmdCommand::Run { op, arg, len, seed }) = c.command else {
            panic!("not run");
        };
        assert_eq!((op, arg, len, seed), (RunOpArg::AddIndex, 16, 65536, 1));
        assert_eq!(metis::RunOp::from(op), metis::RunOp::AddIndex);
        let c = parse(&["cmd", "echo", "--hex", "00ff10"]).unwrap();
        let Command::Cmd(CmdCommand::Echo { text, hex }) = c.command else {
            panic!("not echo");
        };
        assert_eq!((text, hex), (None, Some(HexBytes(vec![0, 0xff, 0x10]))));
        let c = parse(&["cmd", "fill", "--pattern", "0xdeadbeef", "--offset", "4K"]).unwrap();
        let Command::Cmd(CmdCommand::Fill {
            len,
            offset,
            pattern,
        }) = c.command
        else {
            panic!("not fill");
        };
        assert_eq!((len, offset, pattern), (1 << 20, 4096, 0xdead_beef));
        let c = parse(&["fw", "changed"]).unwrap();
        assert!(matches!(c.command, Command::Fw(FwCommand::Changed)));
        assert!(parse(&["fw", "changed", "--wait", "3"]).is_err());
        let c = parse(&["fw", "load", "--wait", "3"]).unwrap();
        assert!(matches!(
            c.command,
            Command::Fw(FwCommand::Load { wait: 3 })
        ));
    }

    #[test]
    fn observability_commands() {
        let c = parse(&["status"]).unwrap();
        assert!(matches!(c.command, Command::Status(CardArg { card: None })));
        let c = parse(&["--json", "stats", "--card", "metis1"]).unwrap();
        assert!(c.json);
        let Command::Stats(CardArg { card }) = c.command else {
            panic!("not stats");
        };
        assert_eq!(card.as_deref(), Some("metis1"));
        let c = parse(&["trace", "-f", "--card", "01:00.0"]).unwrap();
        let Command::Trace(t) = c.command else {
            panic!("not trace");
        };
        assert_eq!(
            (t.card.as_deref(), t.follow, t.clear),
            (Some("01:00.0"), true, false)
        );
        let c = parse(&["trace", "--clear"]).unwrap();
        assert!(matches!(
            c.command,
            Command::Trace(TraceArgs {
                clear: true,
                follow: false,
                card: None
            })
        ));
        for args in [
            &["trace", "--clear", "--follow"][..],
            &["status", "--card"],
            &["stats", "extra"],
            &["status", "--follow"],
        ] {
            let e = parse(args).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{args:?}");
        }
    }

    #[test]
    fn hex_payloads() {
        assert_eq!(parse_hex("00ff10"), Ok(vec![0, 255, 16]));
        assert_eq!(parse_hex("0xAB cd:EF"), Ok(vec![0xab, 0xcd, 0xef]));
        assert_eq!(parse_hex(""), Ok(vec![]));
        assert!(parse_hex("abc").is_err());
        assert!(parse_hex("zz").is_err());
    }
}
