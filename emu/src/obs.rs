//! Observability: counters, the event log (with sequence numbers) and the
//! optional JSON-lines log file.

use crate::edma::Dir;
use crate::faults::Fault;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Events kept in memory; older ones are dropped (sequence numbers go on).
pub const EVENT_CAP: usize = 65536;
/// At most this many events per `events` reply.
pub const EVENTS_PER_REPLY: usize = 1000;
/// Event kinds written to the log without an immediate flush.
const NOISY: [&str; 6] = [
    "dma_map",
    "dma_unmap",
    "irq",
    "irq_pending",
    "set_irqs",
    "vmsi_write",
];
/// Faults of one kind printed to stderr before going quiet.
const STDERR_FAULTS_PER_KIND: u64 = 20;

/// Per eDMA channel: what the driver asked of it and what it signalled.
#[derive(Default, Clone, Copy, Debug)]
pub struct ChanCounters {
    /// Start doorbells rung (stop requests not counted).
    pub doorbells: u64,
    /// Of those, doorbells that found the channel running (latched for the walker).
    pub doorbells_latched: u64,
    /// Doorbells that started the channel.
    pub runs: u64,
    /// Data elements (or non-LL blocks) moved.
    pub elements: u64,
    /// Link elements followed.
    pub links: u64,
    /// List bytes fetched (data and link elements).
    pub list_bytes: u64,
    /// Payload bytes moved.
    pub bytes: u64,
    /// Time the channel's walker ran, from the doorbell's pick-up to its stop, in ns.
    pub busy_ns: u64,
    /// IMWRs the channel issued (done and abort).
    pub imwrs: u64,
    /// Of those, IMWRs that matched no programmed message (lost).
    pub imwr_mismatch: u64,
}

/// MMIO accesses of one class of address (the eDMA registers, other BAR0
/// space, the BAR2 window), by direction and width.
#[derive(Default, Clone, Copy, Debug)]
pub struct MmioClass {
    pub reads: u64,
    pub writes: u64,
    /// Accesses of 1, 2, 4 and 8 bytes.
    pub widths: [u64; 4],
}

#[derive(Default)]
pub struct Counters {
    pub mmio_reads: BTreeMap<String, u64>,
    pub mmio_writes: BTreeMap<String, u64>,
    pub mmio_classes: BTreeMap<&'static str, MmioClass>,
    pub cfg_reads: u64,
    pub cfg_writes: u64,
    pub irqs_sent: BTreeMap<String, u64>,
    pub irqs_lost: u64,
    pub irqs_pended: u64,
    pub faults: BTreeMap<&'static str, u64>,
    pub bytes_h2d: u64,
    pub bytes_d2h: u64,
    pub jobs: u64,
    pub elements: u64,
    pub transfers_done: u64,
    pub transfers_aborted: u64,
    pub resets: BTreeMap<&'static str, u64>,
    pub fw_commands: BTreeMap<String, u64>,
    pub dma_maps: u64,
    pub dma_unmaps: u64,
    pub dma_map_bytes: u64,
    pub dma_unmap_bytes: u64,
    pub injections: BTreeMap<String, u64>,
    /// IMWRs delivered under MSI-X without being checkable (QEMU owns the table).
    pub imwr_unverified: u64,
    /// Per channel, by `Dir as usize * 8 + ch`; `None` until the channel is first
    /// counted. Named ("wr0", "rd3") only when shown: counting runs per element.
    pub channels: [Option<ChanCounters>; 16],
    /// Virtual-MSI words the card set in the host's table.
    pub vmsi_writes: u64,
}

impl Counters {
    pub fn chan(&mut self, d: Dir, ch: usize) -> &mut ChanCounters {
        self.channels[d as usize * 8 + ch].get_or_insert_with(ChanCounters::default)
    }
}

struct Inner {
    c: Counters,
    seq: u64,
    events: VecDeque<Value>,
}

pub struct Obs {
    inner: Mutex<Inner>,
    log: Option<Mutex<BufWriter<File>>>,
    start: Instant,
    stderr_faults: bool,
    /// Measurement mode: the per-access events (`NOISY`) are neither kept
    /// nor logged, so a benchmark times the card and not its log.
    quiet: AtomicBool,
}

impl Obs {
    pub fn new(log: Option<&Path>, stderr_faults: bool) -> std::io::Result<Obs> {
        let log = match log {
            Some(p) => Some(Mutex::new(BufWriter::new(File::create(p)?))),
            None => None,
        };
        Ok(Obs {
            inner: Mutex::new(Inner {
                c: Counters::default(),
                seq: 0,
                events: VecDeque::new(),
            }),
            log,
            start: Instant::now(),
            stderr_faults,
            quiet: AtomicBool::new(false),
        })
    }

    pub fn set_quiet(&self, on: bool) {
        self.quiet.store(on, Ordering::Relaxed);
    }

    pub fn quiet(&self) -> bool {
        self.quiet.load(Ordering::Relaxed)
    }

    /// Nanoseconds since the card started (the time base of `snapshot`).
    pub fn now_ns(&self) -> u64 {
        // CAST: below 584 years of uptime.
        self.start.elapsed().as_nanos() as u64
    }

    /// Appends an event; `fields` must be a JSON object.
    pub fn event(&self, kind: &str, fields: Value) {
        let mut g = self.inner.lock().unwrap();
        self.push_event(&mut g, kind, fields);
    }

    fn push_event(&self, g: &mut Inner, kind: &str, fields: Value) {
        if NOISY.contains(&kind) && self.quiet() {
            return;
        }
        g.seq += 1;
        let mut m = Map::new();
        m.insert("seq".into(), json!(g.seq));
        m.insert(
            "t_ms".into(),
            json!((self.start.elapsed().as_secs_f64() * 1e6).round() / 1e3),
        );
        m.insert("kind".into(), json!(kind));
        if let Value::Object(f) = fields {
            m.extend(f);
        }
        let ev = Value::Object(m);
        if let Some(log) = &self.log {
            let mut w = log.lock().unwrap();
            let _ = writeln!(w, "{ev}");
            // Per-buffer DMA maps and interrupts (vMSI words included) can come by the thousand per
            // second; everything else is flushed at once so a crash keeps it.
            if !NOISY.contains(&kind) {
                let _ = w.flush();
            }
        }
        if g.events.len() >= EVENT_CAP {
            g.events.pop_front();
        }
        g.events.push_back(ev);
    }

    pub fn fault(&self, f: Fault, detail: impl Into<String>) {
        let detail = detail.into();
        let mut g = self.inner.lock().unwrap();
        let n = g.c.faults.entry(f.name()).or_insert(0);
        *n += 1;
        let n = *n;
        if self.stderr_faults && n <= STDERR_FAULTS_PER_KIND {
            eprintln!("metis-emu: fault {}: {detail}", f.name());
        }
        self.push_event(
            &mut g,
            "fault",
            json!({"fault": f.name(), "detail": detail}),
        );
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut Counters) -> R) -> R {
        let mut g = self.inner.lock().unwrap();
        f(&mut g.c)
    }

    /// Counts one MMIO access of `width` bytes to register or area `name`,
    /// of address class `class`.
    pub fn mmio(&self, write: bool, name: &str, class: &'static str, width: usize) {
        let mut g = self.inner.lock().unwrap();
        let k = g.c.mmio_classes.entry(class).or_default();
        if write {
            k.writes += 1;
        } else {
            k.reads += 1;
        }
        if let Some(w) = [1, 2, 4, 8].iter().position(|w| *w == width) {
            k.widths[w] += 1;
        }
        let m = if write {
            &mut g.c.mmio_writes
        } else {
            &mut g.c.mmio_reads
        };
        match m.get_mut(name) {
            Some(v) => *v += 1,
            None => {
                m.insert(name.to_string(), 1);
            }
        }
    }

    pub fn irq_sent(&self, target: &str, source: &str) {
        let mut g = self.inner.lock().unwrap();
        *g.c.irqs_sent.entry(target.to_string()).or_insert(0) += 1;
        // A storm is logged once as a whole (irq::storm), not per message.
        if source != "storm" {
            self.push_event(&mut g, "irq", json!({"target": target, "source": source}));
        }
    }

    pub fn irq_lost(&self, target: &str, source: &str, why: &str) {
        let mut g = self.inner.lock().unwrap();
        g.c.irqs_lost += 1;
        self.push_event(
            &mut g,
            "irq_lost",
            json!({"target": target, "source": source, "why": why}),
        );
    }

    /// Flushes the log file (the process exits without running destructors).
    pub fn flush(&self) {
        if let Some(log) = &self.log {
            let _ = log.lock().unwrap().flush();
        }
    }

    pub fn fault_count(&self, f: Fault) -> u64 {
        self.inner
            .lock()
            .unwrap()
            .c
            .faults
            .get(f.name())
            .copied()
            .unwrap_or(0)
    }

    pub fn total_faults(&self) -> u64 {
        self.inner.lock().unwrap().c.faults.values().sum()
    }

    pub fn reset_stats(&self) {
        let mut g = self.inner.lock().unwrap();
        g.c = Counters::default();
    }

    pub fn last_seq(&self) -> u64 {
        self.inner.lock().unwrap().seq
    }

    /// Events with a sequence number above `since` (at most EVENTS_PER_REPLY).
    pub fn events_since(&self, since: u64) -> (Vec<Value>, bool) {
        let g = self.inner.lock().unwrap();
        let mut out = Vec::new();
        let mut more = false;
        for e in g.events.iter() {
            if e["seq"].as_u64().unwrap_or(0) > since {
                if out.len() == EVENTS_PER_REPLY {
                    more = true;
                    break;
                }
                out.push(e.clone());
            }
        }
        (out, more)
    }

    /// Counters as JSON (without device state, which `Device` adds).
    pub fn counters_json(&self) -> Value {
        let g = self.inner.lock().unwrap();
        let c = &g.c;
        json!({
            "mmio": {"reads": c.mmio_reads, "writes": c.mmio_writes},
            "mmio_classes": c.mmio_classes.iter().map(|(k, v)| (k.to_string(), json!({
                "reads": v.reads, "writes": v.writes,
                "widths": {"1": v.widths[0], "2": v.widths[1], "4": v.widths[2], "8": v.widths[3]},
            }))).collect::<Map<String, Value>>(),
            "config": {"reads": c.cfg_reads, "writes": c.cfg_writes},
            "irqs_sent": c.irqs_sent,
            "irqs_lost": c.irqs_lost,
            "irqs_pended": c.irqs_pended,
            "faults": c.faults,
            "faults_total": c.faults.values().sum::<u64>(),
            "bytes": {"host_to_device": c.bytes_h2d, "device_to_host": c.bytes_d2h},
            "jobs": c.jobs,
            "elements": c.elements,
            "transfers_done": c.transfers_done,
            "transfers_aborted": c.transfers_aborted,
            "resets": c.resets,
            "fw_commands": c.fw_commands,
            "dma_maps": c.dma_maps,
            "dma_unmaps": c.dma_unmaps,
            "dma_map_bytes": c.dma_map_bytes,
            "dma_unmap_bytes": c.dma_unmap_bytes,
            "injections": c.injections,
            "imwr_unverified": c.imwr_unverified,
            "channels": c.channels.iter().enumerate().filter_map(|(i, v)| {
                let d = if i < 8 { Dir::Wr } else { Dir::Rd };
                v.as_ref().map(|v| (format!("{}{}", d.name(), i % 8), v))
            }).map(|(k, v)| (k, json!({
                "doorbells": v.doorbells, "doorbells_latched": v.doorbells_latched,
                "runs": v.runs, "elements": v.elements, "links": v.links,
                "list_bytes": v.list_bytes, "bytes": v.bytes, "busy_ns": v.busy_ns,
                "imwrs": v.imwrs, "imwr_mismatch": v.imwr_mismatch,
            }))).collect::<Map<String, Value>>(),
            "vmsi_writes": c.vmsi_writes,
            "events_seq": g.seq,
        })
    }

    /// One line for stderr at exit.
    pub fn summary_line(&self) -> String {
        let g = self.inner.lock().unwrap();
        let c = &g.c;
        let total: u64 = c.faults.values().sum();
        let kinds: Vec<String> = c.faults.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let sent: u64 = c.irqs_sent.values().sum();
        format!(
            "metis-emu: summary: faults={total} [{}] irqs_sent={sent} irqs_lost={} bytes_h2d={} bytes_d2h={} resets={}",
            kinds.join(" "),
            c.irqs_lost,
            c.bytes_h2d,
            c.bytes_d2h,
            c.resets.values().sum::<u64>()
        )
    }
}
