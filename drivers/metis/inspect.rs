// SPDX-License-Identifier: GPL-2.0

//! debugfs: what the engine, the firmware's interface and the driver are
//! doing, for people debugging a card (`/sys/kernel/debug/metis/<BDF>/`,
//! root only; `docs/observability.md`).
//!
//! Reading never writes the card and never waits for a job. Files that read
//! registers or L2 do so only while the card is powered and no reset, resume
//! or unbind has it (an admission to the gate taken without waiting, and a
//! runtime-PM reference taken only if the card is already active); otherwise
//! they say why they can't.

use core::fmt::{
    self,
    Write, //
};

use kernel::{
    debugfs::{
        Dir,
        Scope,
        ScopedDir, //
    },
    io::{
        register::WithBase,
        Io, //
    },
    prelude::*,
    str::CString,
    sync::Arc,
    uaccess::UserSliceReader,
};

use crate::{
    card::{
        Card,
        EdmaBar, //
    },
    edma::Dir as EngineDir,
    gate::Admission,
    glue, ll,
    regs::{
        edma::{
            self,
            ChannelStatus,
            Direction, //
        },
        Halves,
    },
    stats::MAX_CHANNELS,
};

/// The per-card directory; removed (waiting for readers) when dropped.
pub(crate) type CardDir = Pin<KBox<Scope<Arc<Card>>>>;

/// Creates `<root>/<BDF>/` for `card`.
pub(crate) fn create(root: &Dir, card: Arc<Card>) -> Result<CardDir> {
    let name = CString::try_from_fmt(fmt!("{}", card.pdev.as_ref().name().to_str()?))?;
    KBox::pin_init(
        root.scope(card, &name, |card, dir: &ScopedDir<'_, '_>| {
            dir.read_callback_file(c"edma", card, &edma_regs);
            dir.read_callback_file(c"lists", card, &lists);
            dir.read_callback_file(c"interface", card, &interface);
            dir.read_callback_file(c"vmsi", card, &vmsi);
            dir.read_callback_file(c"stats", card, &channel_stats);
            dir.read_write_callback_file(c"trace", card, &trace, &clear_trace);
        }),
        GFP_KERNEL,
    )
}

/// Access to the card's registers for one read: `None` (with the reason) when
/// the card is asleep, in an outage, or going away.
struct Awake<'a> {
    card: &'a Card,
    _admission: Admission<'a>,
}

impl<'a> Awake<'a> {
    fn get(card: &'a Card) -> core::result::Result<Self, &'static str> {
        let admission = card
            .gate
            .try_enter()
            .ok_or("the card is being reset, resumed or unbound")?;
        if !glue::rpm_get_if_active(&card.pdev) {
            return Err("the card is runtime-suspended (open its node to wake it)");
        }
        Ok(Self {
            card,
            _admission: admission,
        })
    }
}

impl Drop for Awake<'_> {
    fn drop(&mut self) {
        glue::rpm_put(&self.card.pdev);
    }
}

fn on_off(v: bool) -> &'static str {
    if v {
        "on"
    } else {
        "off"
    }
}

fn status_name(s: ChannelStatus) -> &'static str {
    match s {
        ChannelStatus::Init => "init",
        ChannelStatus::Running => "running",
        ChannelStatus::Halted => "halted",
        ChannelStatus::Stopped => "stopped",
    }
}

/// One half of the engine and its channels, decoded.
fn dump_half<D: Direction>(
    b0: &EdmaBar<'_>,
    name: &str,
    channels: u32,
    f: &mut dyn Write,
) -> fmt::Result {
    let en = b0.read(edma::ENGINE_EN::of::<D>());
    let st = b0.read(edma::INT_STATUS::of::<D>());
    let mask = b0.read(edma::INT_MASK::of::<D>());
    let llerr = b0.read(edma::LL_ERR_EN::of::<D>());
    let done = Halves {
        lo: b0.read(edma::DONE_IMWR_LO::of::<D>()).value().get(),
        hi: b0.read(edma::DONE_IMWR_HI::of::<D>()).value().get(),
    };
    let abort = Halves {
        lo: b0.read(edma::ABORT_IMWR_LO::of::<D>()).value().get(),
        hi: b0.read(edma::ABORT_IMWR_HI::of::<D>()).value().get(),
    };
    writeln!(
        f,
        "{name}: engine={} int_status=done:{:#04x},abort:{:#04x} int_mask=done:{:#04x},abort:{:#04x} \
         ll_err_en={:#04x} done_imwr={:#x} abort_imwr={:#x}",
        on_off(en.enable().get() != 0),
        st.done().get(),
        st.abort().get(),
        mask.done().get(),
        mask.abort().get(),
        llerr.ch().get(),
        done.join(),
        abort.join(),
    )?;
    for pair in 0..2usize {
        if let Some(r) = edma::CH_IMWR_DATA::of::<D>().try_at(pair) {
            let d = b0.read(r);
            writeln!(
                f,
                "{name} imwr_data ch{}={:#06x} ch{}={:#06x}",
                2 * pair,
                d.even().get(),
                2 * pair + 1,
                d.odd().get()
            )?;
        }
    }
    for ch in 0..usize::try_from(channels).unwrap_or(0) {
        let (
            Some(c1),
            Some(size),
            Some(sar_lo),
            Some(sar_hi),
            Some(dar_lo),
            Some(dar_hi),
            Some(llp_lo),
            Some(llp_hi),
        ) = (
            edma::CH_CONTROL1::of::<D>().try_at(ch),
            edma::CH_TRANSFER_SIZE::of::<D>().try_at(ch),
            edma::CH_SAR_LO::of::<D>().try_at(ch),
            edma::CH_SAR_HI::of::<D>().try_at(ch),
            edma::CH_DAR_LO::of::<D>().try_at(ch),
            edma::CH_DAR_HI::of::<D>().try_at(ch),
            edma::CH_LLP_LO::of::<D>().try_at(ch),
            edma::CH_LLP_HI::of::<D>().try_at(ch),
        )
        else {
            break;
        };
        let c = b0.read(c1);
        let word = |lo: u32, hi: u32| Halves { lo, hi }.join();
        writeln!(
            f,
            "{name} ch{ch} status={} lle={} ccs={} llp={} lie={} rie={} cb={} size={} sar={:#x} \
             dar={:#x} llp_addr={:#x}",
            status_name(c.status()),
            c.lle().get(),
            c.ccs().get(),
            c.llp().get(),
            c.lie().get(),
            c.rie().get(),
            c.cb().get(),
            b0.read(size).value().get(),
            word(b0.read(sar_lo).value().get(), b0.read(sar_hi).value().get()),
            word(b0.read(dar_lo).value().get(), b0.read(dar_hi).value().get()),
            word(b0.read(llp_lo).value().get(), b0.read(llp_hi).value().get()),
        )?;
    }
    Ok(())
}

/// `edma`: the engine's registers, decoded (`wr`: device to host, `rd`: host to device).
fn edma_regs(card: &Arc<Card>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let awake = match Awake::get(card) {
        Ok(a) => a,
        Err(why) => return writeln!(f, "unavailable: {why}"),
    };
    let busy = awake.card.edma.busy_mask();
    writeln!(
        f,
        "irq_mode={} busy=wr:{:#04x},rd:{:#04x}",
        crate::irq::mode_name(card.edma.irq_mode()),
        busy[EngineDir::Wr as usize],
        busy[EngineDir::Rd as usize]
    )?;
    let (wr, rd) = (card.edma.wr_channels(), card.edma.rd_channels());
    let res = awake.card.edma.with(|b0| -> fmt::Result {
        let ctrl = b0.read(edma::CTRL);
        writeln!(
            f,
            "ctrl: wr_channels={} rd_channels={}",
            ctrl.wr_channels().get(),
            ctrl.rd_channels().get()
        )?;
        dump_half::<edma::Wr>(b0, "wr", wr, f)?;
        dump_half::<edma::Rd>(b0, "rd", rd, f)
    });
    match res {
        Ok(r) => r,
        Err(_) => writeln!(f, "unavailable: the card is unbound"),
    }
}

/// `lists`: the linked list in L2 of each busy channel, element by element.
fn lists(card: &Arc<Card>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let awake = match Awake::get(card) {
        Ok(a) => a,
        Err(why) => return writeln!(f, "unavailable: {why}"),
    };
    let Some(desc) = card.l2.iface.lock().as_ref().map(|i| i.desc) else {
        return writeln!(f, "unavailable: no interface structure");
    };
    let busy = awake.card.edma.busy_mask();
    let mut any = false;
    for dir in [EngineDir::Wr, EngineDir::Rd] {
        for ch in 0..4u32 {
            if busy[dir as usize] & (1 << ch) == 0 {
                continue;
            }
            any = true;
            let Ok(part) = desc.part(dir, ch) else {
                continue;
            };
            // The slots of the job's run in the channel's ring (the whole ring's other
            // slots hold older jobs' elements): read one MMIO word at a time, so only these.
            let run = awake
                .card
                .edma
                .events
                .lock()
                .rings
                .get(dir as usize)
                .and_then(|r| r.get(usize::try_from(ch).ok()?))
                .and_then(|r| r.last_run());
            let Some(run) = run else {
                writeln!(
                    f,
                    "{} ch{ch}: list at {:#x}, {} slots, no run yet",
                    dir.name(),
                    part.dev_addr,
                    part.slots
                )?;
                continue;
            };
            writeln!(
                f,
                "{} ch{ch}: list at {:#x}, {} slots, run in slots {}..{}",
                dir.name(),
                part.dev_addr,
                part.slots,
                run.start,
                run.end
            )?;
            for slot in run.filter(|s| *s < part.slots) {
                let mut words = [0u32; ll::ELEMENT_WORDS];
                let base = part.bar_off + slot * ll::ELEMENT_SIZE;
                let read = card.l2.with(|l2| -> Result {
                    for (i, w) in words.iter_mut().enumerate() {
                        *w = l2.try_read32(base + 4 * i)?;
                    }
                    Ok(())
                });
                if !matches!(read, Ok(Ok(()))) {
                    writeln!(f, "  [{slot}] unreadable")?;
                    break;
                }
                writeln!(f, "  [{slot}] {}", ll::Element::decode(&words))?;
            }
        }
    }
    if !any {
        writeln!(f, "no channel is busy")?;
    }
    Ok(())
}

/// `interface`: the interface structure as the firmware published it (as checked at the last
/// boot or reset; not read again).
fn interface(card: &Arc<Card>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let Some(i) = *card.l2.iface.lock() else {
        return writeln!(f, "none published");
    };
    writeln!(f, "layout={}", i.layout.name())?;
    writeln!(f, "master_version={}.{}", i.version.0, i.version.1)?;
    writeln!(
        f,
        "memory_map={:#x}..{:#x}",
        i.memory_map[0], i.memory_map[1]
    )?;
    writeln!(f, "dma_vm={}", on_off(i.dma_vm))?;
    writeln!(f, "fw_load_addr={:#x}", i.fw_load_addr)?;
    writeln!(
        f,
        "host_drv=bar2+{:#x} size={}",
        i.host_drv.offset, i.host_drv.size
    )?;
    writeln!(f, "vmsi_count={}", i.vmsi_count)?;
    writeln!(
        f,
        "desc=dev:{:#x} size={} published={}",
        i.desc.dev_addr,
        i.desc.size,
        if i.desc.published {
            "yes"
        } else {
            "no (end of L2)"
        }
    )
}

/// `vmsi`: the virtual-MSI table, whether the firmware has it, and the marks taken per source.
fn vmsi(card: &Arc<Card>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match card.vmsi.table_address() {
        Some(a) => writeln!(f, "table={:#x} words={}", a, card.vmsi.count())?,
        None => writeln!(f, "table=none")?,
    }
    let area = card.l2.iface.lock().as_ref().map(|i| i.host_drv);
    match (Awake::get(card), area) {
        (Ok(_awake), Some(area)) => {
            let reg = card.l2.with(|l2| card.vmsi.registered(l2, area));
            match reg {
                Ok(Ok(r)) => writeln!(f, "registered={}", if r { "yes" } else { "no" })?,
                _ => writeln!(f, "registered=unreadable")?,
            }
        }
        (Err(why), _) => writeln!(f, "registered=unknown ({why})")?,
        (_, None) => writeln!(f, "registered=no (no host-driver area)")?,
    }
    for (src, n) in card.vmsi.counts().iter().enumerate() {
        if *n != 0 {
            writeln!(f, "source {src}: {n}")?;
        }
    }
    Ok(())
}

/// `stats`: per-channel totals since probe.
fn channel_stats(card: &Arc<Card>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    for (dir, n) in [
        (EngineDir::Wr, card.edma.wr_channels()),
        (EngineDir::Rd, card.edma.rd_channels()),
    ] {
        let all = card.stats.channels(dir);
        for (ch, s) in all
            .iter()
            .enumerate()
            .take(usize::try_from(n).unwrap_or(0).min(MAX_CHANNELS))
        {
            writeln!(
                f,
                "{} ch{ch} jobs={} bytes={} errors={} timeouts={} interrupted={} aborted={} \
                 lost_irqs={} max_us={} mean_us={}",
                dir.name(),
                s.jobs,
                s.bytes,
                s.errors,
                s.timeouts,
                s.interrupted,
                s.aborted,
                s.lost_irqs,
                s.max_ns / 1000,
                s.mean_ns() / 1000
            )?;
        }
    }
    Ok(())
}

/// `trace`: the most recent transfers, oldest first. Writing anything clears it.
fn trace(card: &Arc<Card>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match card.stats.trace() {
        Ok(entries) => {
            for e in entries.iter() {
                writeln!(f, "{e}")?;
            }
            Ok(())
        }
        Err(_) => writeln!(f, "unavailable: out of memory"),
    }
}

fn clear_trace(card: &Arc<Card>, reader: &mut UserSliceReader) -> Result {
    // What was written does not matter; consume it so `echo > trace` succeeds.
    let mut sink = [0u8; 64];
    while !reader.is_empty() {
        let n = reader.len().min(sink.len());
        reader.read_slice(&mut sink[..n])?;
    }
    card.stats.clear_trace();
    Ok(())
}
