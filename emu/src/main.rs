//! `metis-emu`: vfio-user server emulating the Axelera Metis card.

use metis_emu::control;
use metis_emu::options::{parse_size, Identity, IfLayout, Options};
use metis_emu::server;
use metis_emu::Device;
use std::path::PathBuf;
use std::process::exit;
use std::sync::Arc;

const USAGE: &str =
    "usage: metis-emu --socket PATH [--control PATH] [--log PATH] [--mem-size SIZE] \
[--channels N] [--link SPEC] [--msix N] [--identity metis|synopsys] [--d3-loses-state] \
[--bar2-size SIZE] [--if-layout 1.6|1.4] [--no-boot-protocol] [--no-vsec]";

struct Cli {
    socket: PathBuf,
    control: Option<PathBuf>,
    opts: Options,
}

fn parse() -> Result<Cli, String> {
    let mut it = std::env::args().skip(1);
    let mut socket = None;
    let mut control = None;
    let mut opts = Options {
        stderr_faults: true,
        ..Options::default()
    };
    while let Some(a) = it.next() {
        let mut val = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--socket" => socket = Some(PathBuf::from(val("--socket")?)),
            "--control" => control = Some(PathBuf::from(val("--control")?)),
            "--log" => opts.log = Some(PathBuf::from(val("--log")?)),
            "--mem-size" => opts.mem_size = parse_size(&val("--mem-size")?)?,
            "--channels" => {
                opts.channels = val("--channels")?
                    .parse()
                    .map_err(|_| "--channels: not a number".to_string())?
            }
            "--link" => opts.link = val("--link")?.parse()?,
            "--msix" => {
                opts.msix = val("--msix")?
                    .parse()
                    .map_err(|_| "--msix: not a number".to_string())?
            }
            "--identity" => opts.identity = val("--identity")?.parse::<Identity>()?,
            "--d3-loses-state" => opts.d3_loses_state = true,
            "--bar2-size" => opts.bar2_size = parse_size(&val("--bar2-size")?)?,
            "--if-layout" => opts.if_layout = val("--if-layout")?.parse::<IfLayout>()?,
            "--no-boot-protocol" => opts.boot_protocol = false,
            "--no-vsec" => opts.vsec = false,
            "-h" | "--help" => {
                println!("{USAGE}");
                exit(0);
            }
            _ => return Err(format!("unknown argument '{a}'")),
        }
    }
    opts.validate()?;
    let socket = socket.ok_or("--socket is required")?;
    Ok(Cli {
        socket,
        control,
        opts,
    })
}

fn cleanup(cli_socket: &PathBuf, control: &Option<PathBuf>) {
    let _ = std::fs::remove_file(cli_socket);
    if let Some(c) = control {
        let _ = std::fs::remove_file(c);
    }
}

fn main() {
    let cli = match parse() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("metis-emu: {e}\n{USAGE}");
            exit(2);
        }
    };
    let dev = match Device::new(cli.opts.clone()) {
        Ok(d) => Arc::new(d),
        Err(e) => {
            eprintln!("metis-emu: cannot create device: {e}");
            exit(1);
        }
    };
    if let Some(c) = &cli.control {
        if let Err(e) = control::spawn_listener(dev.clone(), c) {
            eprintln!("metis-emu: control socket {}: {e}", c.display());
            exit(1);
        }
    }
    // SIGTERM/SIGINT: summary, remove sockets, exit. The vfio-user loop is
    // blocked in recvmsg, so a dedicated thread does it.
    {
        let dev = dev.clone();
        let sock = cli.socket.clone();
        let ctl = cli.control.clone();
        let mut signals = signal_hook::iterator::Signals::new([
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGINT,
        ])
        .expect("signal handler");
        std::thread::spawn(move || {
            if let Some(sig) = signals.forever().next() {
                eprintln!("metis-emu: signal {sig}, exiting");
                eprintln!("{}", dev.summary_line());
                dev.flush_log();
                cleanup(&sock, &ctl);
                exit(0);
            }
        });
    }
    let sock = cli.socket.clone();
    let r = server::serve(&cli.socket, dev.clone(), || {
        eprintln!("metis-emu: listening on {}", sock.display());
    });
    // What the guest left the card in when it went away (after a guest
    // power-off: whether its driver's shutdown stopped the card).
    dev.shared().obs.event(
        "disconnect",
        serde_json::json!({"device": dev.state_json()}),
    );
    eprintln!("{}", dev.summary_line());
    dev.flush_log();
    cleanup(&cli.socket, &cli.control);
    match r {
        Ok(()) => {
            eprintln!("metis-emu: client disconnected");
            exit(0)
        }
        Err(e) => {
            eprintln!("metis-emu: {e}");
            exit(1)
        }
    }
}
