//! Control socket: one command per line, one JSON object per reply line.
//!
//! ```text
//! stats                         counters + device state
//! snapshot                      counters, link and time (ns), nothing reset: two
//!                               snapshots bracket what a benchmark cell cost
//! mark LABEL                    an event tagging the log at this point
//! link SPEC                     the link's speed from now on (gen1x1..gen5x16,
//!                               unlimited)
//! quiet on|off                  measurement mode: per-access events (DMA maps,
//!                               interrupts, vMSI words) neither kept nor logged
//! events [since N]              event log entries with seq > N (max 1000/reply)
//! reset-stats                   zero the counters (events keep their numbering)
//! inject drop-irq N             drop the next N message interrupts
//! inject delay-irq N MS         delay the next N message interrupts by MS ms
//! inject hang-channel wr|rd CH  next doorbell on CH never completes
//! inject abort wr|rd CH         next transfer on CH aborts with an error
//! inject corrupt-desc wr|rd CH  next descriptor fetch on CH reads garbage
//! inject missed-doorbell wr|rd CH  next doorbell while CH runs is ignored
//! inject stuck-channel wr|rd CH  next doorbell wedges CH: no completion, stop
//!                                and engine disable ignored until a reset
//! inject done-on-stop wr|rd CH  next stop request on CH finds the transfer just
//!                                finished: done status (and IMWR), no halt
//! inject link-stall wr|rd CH MS  next link element on CH is held up to MS ms
//! inject data-stall wr|rd CH MS  next data element on CH moves its bytes only
//!                                after up to MS ms: a job held on the card
//! inject torn-fetch wr|rd CH N  the element behind the Nth link on CH is
//!                        fetched right after the host's first write into it
//! inject walk-lag wr|rd CH MS  after its next done interrupt, CH's walker
//!                                waits up to MS ms before its next step
//! inject link-release wr|rd CH  ends a link-stall, data-stall or walk-lag hold now
//! inject storm VEC COUNT [US]   COUNT interrupts on VEC, as fast as possible or
//!                                US microseconds apart
//! inject fw-no-ready            next BOOT never leaves BOOTING
//! inject fw-hang                firmware stops (heartbeat, commands)
//! inject surprise-reset         card resets itself now
//! inject device-msg             firmware raises a device message (vMSI source 24)
//! inject engine-off             the card clears both engines' enables (a firmware that
//!                                reinitialises the DMA block)
//! inject bad-area hdrv|vmsi|desc  next interface structure the card writes
//!                                publishes that area at an offset past BAR2
//! inject bad-vmsi-count         next interface structure says num_vmsi = 5000
//! inject bad-mem-base           until `clear`, the boot block's free device
//!                                memory starts over the firmware's image
//! clear                         disarm every pending injection
//! help
//! ```

use crate::boot;
use crate::device::Device;
use crate::edma::Dir;
use crate::inject::Inject;
use crate::irq;
use crate::link::LinkSpec;
use crate::options::Identity;
use crate::vmsi;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;

pub const HELP: &str = "stats | snapshot | mark LABEL | link SPEC | quiet on|off | events [since N] | reset-stats | clear | help | inject (drop-irq N | delay-irq N MS | hang-channel wr|rd CH | abort wr|rd CH | corrupt-desc wr|rd CH | missed-doorbell wr|rd CH | stuck-channel wr|rd CH | done-on-stop wr|rd CH | link-stall wr|rd CH MS | data-stall wr|rd CH MS | walk-lag wr|rd CH MS | torn-fetch wr|rd CH N | link-release wr|rd CH | storm VEC COUNT [US] | fw-no-ready | fw-hang | surprise-reset | device-msg | runtime-boot | engine-off | bad-area hdrv|vmsi|desc | bad-vmsi-count | bad-mem-base)";

/// Upper bound for `inject storm` so a typo cannot wedge the emulator.
pub const MAX_STORM: u64 = 10_000_000;

fn err(msg: impl Into<String>) -> Value {
    json!({"ok": false, "error": msg.into()})
}

fn num(s: Option<&&str>) -> Result<u64, Value> {
    let s = s.ok_or_else(|| err("missing number"))?;
    crate::options::parse_u64(s).map_err(err)
}

fn chan(dev: &Device, args: &[&str]) -> Result<(Dir, usize), Value> {
    let d = args
        .get(2)
        .and_then(|s| Dir::parse(s))
        .ok_or_else(|| err("expected wr|rd"))?;
    let ch = num(args.get(3))? as usize;
    if ch >= dev.options().channels {
        return Err(err(format!("channel {ch} does not exist")));
    }
    Ok((d, ch))
}

/// Executes one control command.
pub fn handle(dev: &Device, line: &str) -> Value {
    let args: Vec<&str> = line.split_whitespace().collect();
    match run(dev, &args) {
        Ok(v) => v,
        Err(e) => e,
    }
}

fn run(dev: &Device, args: &[&str]) -> Result<Value, Value> {
    let sh = dev.shared();
    match args.first().copied() {
        None => Err(err("empty command")),
        Some("help") => Ok(json!({"ok": true, "help": HELP})),
        Some("stats") => {
            let mut v = snapshot(dev);
            v["device"] = dev.state_json();
            Ok(v)
        }
        Some("snapshot") => Ok(snapshot(dev)),
        Some("mark") => {
            let label = args[1..].join(" ");
            if label.is_empty() {
                return Err(err("usage: mark LABEL"));
            }
            sh.obs.event("mark", json!({"label": label}));
            Ok(json!({"ok": true, "seq": sh.obs.last_seq(), "t_ns": sh.obs.now_ns()}))
        }
        Some("link") => {
            let spec: LinkSpec = match args.get(1) {
                Some(s) if args.len() == 2 => s.parse().map_err(err)?,
                _ => return Err(err("usage: link SPEC (gen1x1..gen5x16, unlimited)")),
            };
            let was = sh.link.spec();
            sh.link.set_spec(spec);
            sh.obs.event(
                "link",
                json!({"was": was.to_string(), "now": spec.to_string()}),
            );
            Ok(json!({"ok": true, "was": was.to_string(), "link": spec.to_string()}))
        }
        Some("quiet") => {
            let on = match args.get(1).copied() {
                Some("on") if args.len() == 2 => true,
                Some("off") if args.len() == 2 => false,
                _ => return Err(err("usage: quiet on|off")),
            };
            sh.obs.set_quiet(on);
            Ok(json!({"ok": true, "quiet": on}))
        }
        Some("events") => {
            let since = match (args.get(1), args.get(2)) {
                (Some(&"since"), n) => num(n)?,
                (None, _) => 0,
                _ => return Err(err("usage: events [since N]")),
            };
            let (ev, more) = sh.obs.events_since(since);
            Ok(json!({"ok": true, "events": ev, "more": more, "last_seq": sh.obs.last_seq()}))
        }
        Some("reset-stats") => {
            sh.obs.reset_stats();
            sh.link.reset_wire_ns();
            Ok(json!({"ok": true}))
        }
        Some("clear") => {
            sh.st.lock().unwrap().inj = Inject::default();
            sh.obs.event("inject", json!({"what": "clear"}));
            Ok(json!({"ok": true}))
        }
        Some("inject") => inject(dev, args),
        Some(c) => Err(err(format!("unknown command '{c}'; {HELP}"))),
    }
}

/// The counters with the link's speed and booked wire time and the card's
/// clock: what a benchmark subtracts between two of them.
fn snapshot(dev: &Device) -> Value {
    let sh = dev.shared();
    let mut v = sh.obs.counters_json();
    let [up, down] = sh.link.wire_ns();
    v["ok"] = json!(true);
    v["t_ns"] = json!(sh.obs.now_ns());
    v["quiet"] = json!(sh.obs.quiet());
    v["link"] = json!({
        "spec": sh.link.spec().to_string(),
        "payload_bytes_per_sec": sh.link.spec().payload_bytes_per_sec(),
        "wire_ns": {"upstream": up, "downstream": down},
    });
    v
}

fn inject(dev: &Device, args: &[&str]) -> Result<Value, Value> {
    let sh = dev.shared();
    let what = *args.get(1).ok_or_else(|| err(HELP))?;
    let armed = |detail: Value| {
        sh.obs
            .with(|c| *c.injections.entry(what.to_string()).or_insert(0) += 1);
        sh.obs
            .event("inject_armed", json!({"what": what, "args": detail}));
    };
    match what {
        "drop-irq" => {
            let n = num(args.get(2))?;
            sh.st.lock().unwrap().inj.drop_irq = n;
            armed(json!({"n": n}));
        }
        "delay-irq" => {
            let n = num(args.get(2))?;
            let ms = num(args.get(3))?;
            let mut st = sh.st.lock().unwrap();
            st.inj.delay_irq = n;
            st.inj.delay_ms = ms;
            drop(st);
            armed(json!({"n": n, "ms": ms}));
        }
        "hang-channel" | "abort" | "corrupt-desc" | "missed-doorbell" | "stuck-channel"
        | "done-on-stop" => {
            let (d, ch) = chan(dev, args)?;
            let mut st = sh.st.lock().unwrap();
            let flags = match what {
                "hang-channel" => &mut st.inj.hang,
                "abort" => &mut st.inj.abort,
                "corrupt-desc" => &mut st.inj.corrupt,
                "stuck-channel" => &mut st.inj.stuck,
                "done-on-stop" => &mut st.inj.done_on_stop,
                _ => &mut st.inj.missed_doorbell,
            };
            flags[d as usize][ch] = true;
            drop(st);
            armed(json!({"dir": d.name(), "ch": ch}));
        }
        "link-release" => {
            let (d, ch) = chan(dev, args)?;
            sh.st.lock().unwrap().inj.link_release[d as usize][ch] = true;
            armed(json!({"dir": d.name(), "ch": ch}));
        }
        "link-stall" | "data-stall" | "walk-lag" => {
            let (d, ch) = chan(dev, args)?;
            let ms = num(args.get(4))?.min(60_000);
            let mut st = sh.st.lock().unwrap();
            let stall = match what {
                "link-stall" => &mut st.inj.link_stall_ms,
                "data-stall" => &mut st.inj.data_stall_ms,
                _ => &mut st.inj.walk_lag_ms,
            };
            stall[d as usize][ch] = ms;
            drop(st);
            armed(json!({"dir": d.name(), "ch": ch, "ms": ms}));
        }
        "torn-fetch" => {
            let (d, ch) = chan(dev, args)?;
            let n = num(args.get(4))?;
            if n == 0 || n > 1_000_000 {
                return Err(err("N counts links from 1"));
            }
            sh.st.lock().unwrap().inj.torn_fetch[d as usize][ch] = n as u32;
            armed(json!({"dir": d.name(), "ch": ch, "n": n}));
        }
        "storm" => {
            let v = num(args.get(2))?;
            let count = num(args.get(3))?.min(MAX_STORM);
            // Optional gap between messages: back-to-back writes coalesce in the eventfd, so a
            // storm the guest sees as separate interrupts needs a little space between them.
            let gap_us = match args.get(4) {
                Some(_) => num(args.get(4))?.min(1_000_000),
                None => 0,
            };
            if v >= 32 {
                return Err(err("vector must be < 32"));
            }
            armed(json!({"vector": v, "count": count, "gap_us": gap_us}));
            let sent = irq::storm(sh, v as u32, count, gap_us);
            return Ok(json!({"ok": true, "sent": sent}));
        }
        "fw-no-ready" => {
            sh.st.lock().unwrap().inj.fw_no_ready = true;
            armed(json!({}));
        }
        "fw-hang" => {
            sh.st.lock().unwrap().fw.hang();
            armed(json!({}));
        }
        "surprise-reset" => {
            armed(json!({}));
            dev.surprise_reset();
        }
        "device-msg" | "bad-area" | "bad-vmsi-count" | "bad-mem-base" | "runtime-boot"
            if sh.opts.identity != Identity::Metis =>
        {
            return Err(err(format!("{what}: this identity has no firmware")));
        }
        "runtime-boot" => {
            let mut st = sh.st.lock().unwrap();
            if !boot::runtime_boot(sh, &mut st) {
                return Err(err("the card is not in its bootloader"));
            }
            armed(json!({}));
        }
        "engine-off" => {
            armed(json!({}));
            crate::edma::engine::firmware_engine_off(sh, &mut sh.st.lock().unwrap());
        }
        "device-msg" => {
            armed(json!({}));
            let mut st = sh.st.lock().unwrap();
            vmsi::signal(sh, &mut st, vmsi::SRC_DEVICE_MSG, "fw.device-msg");
        }
        "bad-area" => {
            let name = *args.get(2).ok_or_else(|| err("expected hdrv|vmsi|desc"))?;
            if !sh.st.lock().unwrap().inj.iface.arm_area(name) {
                return Err(err(format!("unknown area '{name}' (hdrv|vmsi|desc)")));
            }
            armed(json!({"area": name}));
        }
        "bad-mem-base" => {
            sh.st.lock().unwrap().inj.bad_mem_base = true;
            armed(json!({}));
        }
        "bad-vmsi-count" => {
            sh.st.lock().unwrap().inj.iface.vmsi_count = true;
            armed(json!({}));
        }
        _ => return Err(err(format!("unknown injection '{what}'; {HELP}"))),
    }
    Ok(json!({"ok": true}))
}

/// Serves the control socket on its own threads.
pub fn spawn_listener(dev: Arc<Device>, path: &Path) -> std::io::Result<()> {
    if path.exists() {
        std::fs::remove_file(path)?;
    }
    let l = UnixListener::bind(path)?;
    std::thread::Builder::new()
        .name("control".into())
        .spawn(move || {
            for conn in l.incoming() {
                let Ok(conn) = conn else { continue };
                let dev = dev.clone();
                std::thread::spawn(move || serve_conn(&dev, conn));
            }
        })?;
    Ok(())
}

fn serve_conn(dev: &Device, conn: UnixStream) {
    let Ok(mut out) = conn.try_clone() else {
        return;
    };
    for line in BufReader::new(conn).lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        let reply = handle(dev, &line);
        if writeln!(out, "{reply}").is_err() {
            break;
        }
    }
}
