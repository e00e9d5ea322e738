// SPDX-License-Identifier: GPL-2.0

//! State of one card shared by the probe path, the interrupt handler and
//! (later) open files, which may all outlive each other.
//!
//! The card owns its blocks (the eDMA engine, the virtual-MSI table, the
//! firmware's interface structure, the gate) as nova-core's `Gpu` owns its
//! engines. The BARs are device-managed: once the card is unbound every
//! access sees `ENODEV` instead of touching unmapped registers. Register
//! bursts run under the RCU guard of the BAR and never sleep; waits happen
//! outside it.

use kernel::{
    device::Bound,
    new_poll_condvar, pci,
    prelude::*,
    sync::{
        aref::ARef,
        atomic::Atomic,
        new_mutex,
        poll::PollCondVar,
        Arc,
        Mutex, //
    },
};

use crate::{
    attach_cache::AttachCache,
    boot::FwState,
    edma::{
        Edma,
        Events, //
    },
    fw::{
        Firmware,
        FwOwner, //
    },
    gate::{
        Admission,
        Gate,
        HasGate,
        Outage,
        OwnedAdmission, //
    },
    glue::DmaBufAttach,
    glue::IommuMode,
    iface::{
        Iface,
        L2Window, //
    },
    mem::DevMem,
    pm::PmState,
    ratelimit::LogLimit,
    registered::{
        RegTable,
        Registered, //
    },
    regs,
    stats::DmaStats,
    vmsi::Vmsi,
};

/// BAR0: the eDMA registers.
pub(crate) type EdmaBar<'a> = pci::Bar<'a, { regs::BAR0_SIZE }>;
/// BAR2: the window onto L2, with the firmware's interface structure.
pub(crate) type L2Bar<'a> = pci::Bar<'a, { regs::BAR2_SIZE }>;

/// What probe learned, for `METIS_IOCTL_INFO`.
#[derive(Clone, Copy, Default)]
pub(crate) struct Status {
    pub(crate) mem_size: u64,
    pub(crate) fw_state: FwState,
    pub(crate) fw_version: u32,
    pub(crate) fw_if_version: u32,
    pub(crate) iommu_mode: IommuMode,
    pub(crate) irq_vectors: u32,
    /// Card resets since probe; also the generation of device-memory contents.
    pub(crate) reset_count: u32,
    /// Why the card was last reset (`None` before the first reset).
    pub(crate) last_reset: Option<ResetReason>,
}

/// Why a card was reset, for sysfs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ResetReason {
    /// `METIS_IOCTL_RESET` (`metisctl reset`).
    Requested,
    /// The driver recovered the card from a fault; the fault.
    Recovery(&'static str),
    /// Resume found the card without its firmware (or in an unknown state).
    Resume,
    /// A reset from outside the driver: sysfs `reset`, AER, a hot reset of the link.
    External,
}

impl core::fmt::Display for ResetReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Requested => f.write_str("requested"),
            Self::Recovery(why) => write!(f, "recovery: {why}"),
            Self::Resume => f.write_str("resume"),
            Self::External => f.write_str("external"),
        }
    }
}

impl kernel::fmt::Display for ResetReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Display::fmt(self, f)
    }
}

/// One bound card.
#[pin_data]
pub(crate) struct Card {
    pub(crate) pdev: ARef<pci::Device>,
    /// The DMA engine (BAR0), with the completion events latched from it.
    #[pin]
    pub(crate) edma: Edma,
    /// The window onto L2 (BAR2) and what the firmware publishes in it.
    #[pin]
    pub(crate) l2: L2Window,
    /// Who loads the firmware, the image the driver loads, and whether the card lost it.
    #[pin]
    pub(crate) fw: Firmware,
    /// The virtual-MSI table the firmware marks.
    #[pin]
    pub(crate) vmsi: Vmsi,
    /// Admission of work, and outages.
    #[pin]
    pub(crate) gate: Gate,
    /// Runtime PM and the outages of system sleep and of resets from outside.
    #[pin]
    pub(crate) pm: PmState,
    /// Device memory handed out to files.
    #[pin]
    pub(crate) mem: Mutex<DevMem>,
    /// Host buffers files registered, pinned and mapped for the card.
    #[pin]
    pub(crate) registered: Mutex<RegTable<Registered>>,
    /// dma-bufs files' jobs used, attached to the card and mapped, for the next jobs.
    #[pin]
    pub(crate) attachments: Mutex<AttachCache<DmaBufAttach>>,
    #[pin]
    pub(crate) status: Mutex<Status>,
    pub(crate) bytes_to_device: Atomic<u64>,
    pub(crate) bytes_from_device: Atomic<u64>,
    /// Async jobs of all files queued or running (at most `uapi::MAX_CARD_JOBS`).
    pub(crate) async_jobs: Atomic<u32>,
    /// Per-channel totals and the trace of recent transfers (debugfs).
    #[pin]
    pub(crate) stats: DmaStats,
    /// Limits the messages callers can trigger at will.
    #[pin]
    pub(crate) log_limit: LogLimit,
    /// Why the card must be reset once the current operation has left the gate.
    #[pin]
    pub(crate) recovery: Mutex<Option<&'static str>>,
    /// Linux interrupt number of vector 0 (0: none), for the storm fallback.
    pub(crate) irq_number: Atomic<u32>,
    /// Whether a wait that times out looks for a completion whose interrupt was lost
    /// (off during the interrupt self-test, which must see interrupts arrive).
    pub(crate) recover_lost: Atomic<bool>,
    /// Signalled when a firmware source is marked (`Events::sources`): what `poll` on a
    /// vendor-ABI node waits on.
    #[pin]
    pub(crate) source_poll: PollCondVar,
    /// The address spaces BAR2 is mapped into by users (the vendor-ABI nodes'): emptied
    /// when the card goes away or into an outage.
    #[pin]
    pub(crate) mapped: Mutex<KVec<crate::glue::MappedSpace>>,
}

impl Card {
    pub(crate) fn new(
        pdev: &pci::Device<Bound>,
        edma_bar: pci::DevresBar<{ regs::BAR0_SIZE }>,
        l2: pci::DevresBar<{ regs::BAR2_SIZE }>,
        iface: Iface,
        fw_owner: FwOwner,
        wr_channels: u32,
        rd_channels: u32,
    ) -> Result<Arc<Self>> {
        let vmsi = Vmsi::new(pdev.as_ref(), iface.vmsi_count)?;
        let stats = DmaStats::new()?;
        let pdev: &pci::Device = pdev;
        let gate_dev: ARef<pci::Device> = pdev.into();
        Arc::pin_init(
            pin_init!(Self {
                pdev: pdev.into(),
                edma <- Edma::new(edma_bar, wr_channels, rd_channels),
                l2 <- L2Window::new(l2, iface),
                vmsi <- vmsi,
                fw <- Firmware::new(fw_owner),
                gate <- Gate::new(gate_dev),
                pm <- PmState::new(),
                mem <- new_mutex!(DevMem::new(0, 0), "metis_mem"),
                registered <- new_mutex!(RegTable::new(), "metis_registered"),
                attachments <- new_mutex!(AttachCache::new(), "metis_attachments"),
                status <- new_mutex!(Status::default(), "metis_status"),
                bytes_to_device: Atomic::new(0),
                bytes_from_device: Atomic::new(0),
                async_jobs: Atomic::new(0),
                stats <- stats,
                log_limit <- LogLimit::new(),
                recovery <- new_mutex!(None, "metis_recovery"),
                irq_number: Atomic::new(0),
                recover_lost: Atomic::new(false),
                source_poll <- new_poll_condvar!("metis_source_poll"),
                mapped <- new_mutex!(KVec::new(), "metis_mapped"),
            }),
            GFP_KERNEL,
        )
    }

    /// Drops every latched event (the interrupt mode changed under them); the counts of
    /// firmware sources stay.
    pub(crate) fn forget_events(&self) {
        let mut ev = self.edma.events.lock();
        *ev = Events {
            sources: ev.sources,
            ..Default::default()
        };
    }

    /// Lets files submit work (end of probe).
    pub(crate) fn open_gate(&self) {
        self.edma.events.lock().dead = false;
        self.gate.open();
    }

    /// Admits one operation from a file; see [`Gate::enter`].
    pub(crate) fn enter(&self) -> Result<Admission<'_>> {
        self.gate.enter()
    }

    /// As [`Self::enter`], for work that outlives the caller.
    pub(crate) fn enter_owned(self: &Arc<Self>) -> Result<OwnedAdmission<Card>> {
        OwnedAdmission::new(self.clone())
    }

    /// Whether unbind has started (the gate no longer admits anyone).
    pub(crate) fn closing(&self) -> bool {
        self.gate.closed()
    }

    /// Waits until `outage` is the only user left, then clears the events the
    /// aborted users left behind.
    pub(crate) fn wait_alone(&self, outage: &Outage<'_>) {
        outage.wait_alone();
        self.zap_mappings();
        let mut ev = self.edma.events.lock();
        *ev = Events {
            dead: ev.dead,
            sources: ev.sources,
            ..Default::default()
        };
    }

    /// Refuses new work, fails what is in flight and waits until no file
    /// operation uses the hardware any more.
    pub(crate) fn close(&self) {
        self.shut();
        self.wait_unused();
    }

    /// First half of [`Self::close`]: refuses new work and fails what is in flight.
    pub(crate) fn shut(&self) {
        self.gate.close();
        self.edma.events.lock().dead = true;
        self.edma.event_cv.notify_all();
        self.edma.busy_cv.notify_all();
    }

    /// Second half of [`Self::close`]: waits until nobody uses the card. An
    /// outage in progress counts and must have ended (or been given up).
    pub(crate) fn wait_unused(&self) {
        self.gate.wait_empty();
        self.zap_mappings();
    }

    /// Empties every user mapping of BAR2: the next access faults, and a fault maps only
    /// while the card admits users (SIGBUS during an outage and once it is gone). Called
    /// once the gate admits nobody and the last user (a fault in progress among them) has
    /// left, so no page is mapped behind it.
    fn zap_mappings(&self) {
        for m in self.mapped.lock().iter() {
            m.zap();
        }
    }
}

impl HasGate for Card {
    fn gate(&self) -> &Gate {
        &self.gate
    }
}
