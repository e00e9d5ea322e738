//! Armed fault injections (set from the control socket, consumed by the
//! device when the matching event happens).

use crate::edma::Dir;
use crate::iface::BadValues;

#[derive(Default, Debug, Clone)]
pub struct Inject {
    /// Drop the next N interrupts (MSI/MSI-X messages).
    pub drop_irq: u64,
    /// Delay the next N interrupts by `delay_ms`.
    pub delay_irq: u64,
    pub delay_ms: u64,
    /// Next doorbell on the channel never completes (CS stays running).
    pub hang: [[bool; 8]; 2],
    /// Next transfer on the channel aborts with an error.
    pub abort: [[bool; 8]; 2],
    /// Next descriptor fetch on the channel reads garbage.
    pub corrupt: [[bool; 8]; 2],
    /// Next doorbell while the channel is running is ignored.
    pub missed_doorbell: [[bool; 8]; 2],
    /// Next doorbell wedges the channel: it never completes and ignores stop
    /// and engine disable until the card is reset.
    pub stuck: [[bool; 8]; 2],
    /// Next stop request on the channel arrives just after the channel
    /// finished: instead of halting it reports done (status, and IMWR when
    /// message interrupts are on), as a transfer that beat the stop would.
    pub done_on_stop: [[bool; 8]; 2],
    /// Next link element the walker fetches on the channel is followed only
    /// after this many ms, or on `link_release`: holds the walk inside the
    /// window in which the host reprograms a channel behind its done interrupt.
    pub link_stall_ms: [[u64; 8]; 2],
    /// Next data element the walker fetches on the channel moves its bytes
    /// only after this many ms, or on `link_release`: holds a job on the card
    /// before any of it is done, however few elements it has.
    pub data_stall_ms: [[u64; 8]; 2],
    /// The element behind the Nth link the walker follows on the channel
    /// (counted from 1; 0: not armed) is fetched the moment the host's first
    /// write into it lands, as an engine that fetches while the host rewrites
    /// its list would: a host that hands an element over (its control word,
    /// with the cycle bit) before the rest of it is written has the engine
    /// move stale addresses.
    pub torn_fetch: [[u32; 8]; 2],
    /// After the next done interrupt it raises on the channel, the walker takes
    /// this many ms (or until `link_release`) before its next step, as a walker
    /// thread the host's scheduler put aside would: what hardware fetched before
    /// the interrupt must not depend on it.
    pub walk_lag_ms: [[u64; 8]; 2],
    /// Ends a `link_stall_ms`, `data_stall_ms` or `walk_lag_ms` hold early.
    pub link_release: [[bool; 8]; 2],
    /// Next BOOT never leaves BOOTING.
    pub fw_no_ready: bool,
    /// Bad values for the next publication of the interface structure.
    pub iface: BadValues,
    /// Until `clear`: the boot block says the free device memory starts at
    /// the firmware's load address, over the firmware's own image.
    pub bad_mem_base: bool,
}

impl Inject {
    /// Takes a per-channel flag, returning whether it was armed.
    pub fn take(flags: &mut [[bool; 8]; 2], dir: Dir, ch: usize) -> bool {
        std::mem::take(&mut flags[dir as usize][ch])
    }

    pub fn armed_json(&self) -> serde_json::Value {
        let list = |f: &[[bool; 8]; 2]| -> Vec<String> {
            let mut v = Vec::new();
            for (d, name) in [(0, "wr"), (1, "rd")] {
                for (ch, on) in f[d].iter().enumerate() {
                    if *on {
                        v.push(format!("{name}{ch}"));
                    }
                }
            }
            v
        };
        serde_json::json!({
            "drop_irq": self.drop_irq,
            "delay_irq": self.delay_irq,
            "delay_ms": self.delay_ms,
            "hang_channel": list(&self.hang),
            "abort": list(&self.abort),
            "corrupt_desc": list(&self.corrupt),
            "missed_doorbell": list(&self.missed_doorbell),
            "stuck_channel": list(&self.stuck),
            "done_on_stop": list(&self.done_on_stop),
            "link_stall": list(&self.link_stall_ms.map(|d| d.map(|ms| ms != 0))),
            "data_stall": list(&self.data_stall_ms.map(|d| d.map(|ms| ms != 0))),
            "torn_fetch": list(&self.torn_fetch.map(|d| d.map(|n| n != 0))),
            "walk_lag": list(&self.walk_lag_ms.map(|d| d.map(|ms| ms != 0))),
            "fw_no_ready": self.fw_no_ready,
            "bad_iface": self.iface.names(),
        })
    }
}
