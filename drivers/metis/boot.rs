// SPDX-License-Identifier: GPL-2.0

//! The model parts of the card (`docs/hw-interface.md`): our bootloader's
//! boot block in the MCUboot area and the command protocol in the known
//! command slot. The real card's protocol is not public; everything that
//! assumes ours is here, so that it can be replaced without touching the rest.

use kernel::{
    device::{
        Bound,
        Device, //
    },
    dma::{
        Coherent,
        CoherentBox, //
    },
    io::{
        poll::read_poll_timeout,
        Io, //
    },
    prelude::*,
    time::{
        delay::fsleep,
        Delta, //
    },
};

use crate::{
    card::{
        Card,
        L2Bar, //
    },
    edma::{
        Dir,
        Segment, //
    },
    fw::FwOwner,
    iface::{
        off as iface_off,
        u64_at,
        CMD_MSG_LEN, //
    },
    regs::Halves,
    uapi,
};

/// `BOOT_MAGIC` of a bootloader that implements the model protocol ("MTBP").
const BOOT_MAGIC: u32 = 0x5042_544d;
/// The protocol version this driver speaks.
const BOOT_PROTO: u32 = 1;

/// Offsets in BAR2 of the boot block.
mod off {
    pub(super) const MAGIC: usize = 0x400;
    pub(super) const PROTO: usize = 0x404;
    pub(super) const STATE: usize = 0x408;
    pub(super) const FAIL_REASON: usize = 0x40c;
    pub(super) const FW_MAX_SIZE: usize = 0x410;
    pub(super) const HEARTBEAT: usize = 0x418;
    pub(super) const FW_VERSION: usize = 0x41c;
    pub(super) const FW_IF_VERSION: usize = 0x420;
    pub(super) const DDR_SIZE: usize = 0x428;
    pub(super) const USER_MEM_BASE: usize = 0x430;
}

/// Card states in the boot block.
/// The boot block's `STATE` word, also what `METIS_IOCTL_INFO` reports as `fw_state`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum FwState {
    /// Powered off, or not known yet.
    #[default]
    Off,
    /// The bootloader waits for an image.
    Bootloader,
    Booting,
    Ready,
    Failed,
    /// A value the protocol does not define (all ones: the card does not answer).
    Unknown(u32),
}

impl FwState {
    pub(crate) fn from_raw(v: u32) -> Self {
        match v {
            0 => Self::Off,
            1 => Self::Bootloader,
            2 => Self::Booting,
            3 => Self::Ready,
            4 => Self::Failed,
            v => Self::Unknown(v),
        }
    }

    /// The number in the boot block and in `enum metis_fw_state`.
    pub(crate) fn raw(self) -> u32 {
        match self {
            Self::Off => 0,
            Self::Bootloader => 1,
            Self::Booting => 2,
            Self::Ready => 3,
            Self::Failed => 4,
            Self::Unknown(v) => v,
        }
    }
}

/// Command opcodes.
pub(crate) mod op {
    pub(crate) const BOOT: u32 = 1;
    /// FILL (address, length, pattern word); also `METIS_CMD_FILL`.
    pub(crate) const FILL: u32 = 4;
}

/// Set in the opcode word by the card when it has answered.
const ANSWERED: u32 = 1 << 31;
/// Status of a command that succeeded.
const STATUS_OK: u32 = 0;
/// Status of a command whose arguments the card refused.
const STATUS_BAD_ARGS: u32 = 2;

// TIMEOUT: BOOT's signal follows its answer at once; a loaded host may delay the interrupt.
const BOOT_SIGNAL_WAIT: Delta = Delta::from_secs(1);
// TIMEOUT: five heartbeat periods (one tick every 10 ms).
const HEARTBEAT_WAIT: Delta = Delta::from_millis(50);
// TIMEOUT: zeroing 1 GiB: 0.13 s for the firmware, 1 s for the engine over a Gen3 x4 link.
const SCRUB_TIMEOUT: Delta = Delta::from_secs(10);
// TIMEOUT: the longest command (RUN over 1 GiB, read and written) takes about 0.3 s at
// the card's internal bandwidth; one still running after 10 s is hung.
const COMMAND_DRAIN: Delta = Delta::from_secs(10);
// TIMEOUT: a command still running when the card is stopped (a FILL of 1 GiB takes about
// 0.13 s) gets this long to answer before its virtual-MSI registration is withdrawn, plus
// its bytes at 128 MiB/s (`SETTLE_SHIFT`, a 64th of the card's internal bandwidth), up to
// [`COMMAND_DRAIN`]: a hung firmware is not waited for longer. The wait ends when the
// command answers, so the margin costs time only with a firmware that never does. (The
// emulated card took 0.8 s for a 768 MiB FILL on a loaded machine, and once more than the
// 2 s a 512 MiB/s margin gave it: its answer then met a withdrawn registration.)
const COMMAND_SETTLE: Delta = Delta::from_millis(500);
/// Bytes a running command moves per millisecond of settle time, as a shift (2^17).
const SETTLE_SHIFT: u32 = 17;

/// What the boot block says.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct BootBlock {
    pub(crate) state: FwState,
    pub(crate) fail_reason: u32,
    pub(crate) fw_max_size: u32,
    pub(crate) fw_version: u32,
    pub(crate) fw_if_version: u32,
    pub(crate) ddr_size: u64,
    pub(crate) user_mem_base: u64,
}

fn read64(l2: &L2Bar<'_>, at: usize) -> Result<u64> {
    u64_at(&|at| l2.try_read32(at), at)
}

/// Whether the card's bootloader implements the model boot protocol: only
/// then does the driver own the firmware and send model commands.
pub(crate) fn has_protocol(l2: &L2Bar<'_>) -> Result<bool> {
    Ok(l2.try_read32(off::MAGIC)? == BOOT_MAGIC && l2.try_read32(off::PROTO)? == BOOT_PROTO)
}

/// The card's boot state.
pub(crate) fn state_of(l2: &L2Bar<'_>) -> Result<FwState> {
    Ok(FwState::from_raw(l2.try_read32(off::STATE)?))
}

impl Card {
    /// The card's boot state.
    pub(crate) fn boot_state(&self) -> Result<FwState> {
        self.l2.with(state_of)?
    }

    /// Waits up to `limit` for the card to be in its bootloader.
    pub(crate) fn wait_bootloader(&self, limit: Delta) -> Result {
        read_poll_timeout(
            || self.boot_state(),
            |s| *s == FwState::Bootloader,
            Delta::from_millis(1),
            limit,
        )
        .map(drop)
    }

    pub(crate) fn boot_block(&self) -> Result<BootBlock> {
        self.l2.with(|l2| -> Result<BootBlock> {
            Ok(BootBlock {
                state: FwState::from_raw(l2.try_read32(off::STATE)?),
                fail_reason: l2.try_read32(off::FAIL_REASON)?,
                fw_max_size: l2.try_read32(off::FW_MAX_SIZE)?,
                fw_version: l2.try_read32(off::FW_VERSION)?,
                fw_if_version: l2.try_read32(off::FW_IF_VERSION)?,
                ddr_size: read64(l2, off::DDR_SIZE)?,
                user_mem_base: read64(l2, off::USER_MEM_BASE)?,
            })
        })?
    }

    /// Whether the firmware's heartbeat counter moves.
    pub(crate) fn heartbeat_alive(&self) -> bool {
        let beat = || self.l2.with(|l2| l2.try_read32(off::HEARTBEAT));
        let first = beat();
        fsleep(HEARTBEAT_WAIT);
        matches!((first, beat()), (Ok(Ok(a)), Ok(Ok(b))) if a != b)
    }

    /// Writes a command into the slot: arguments, size, then the opcode,
    /// which the card acts on.
    fn post_command(&self, opcode: u32, args: &[u32], size: usize) -> Result {
        let size = u32::try_from(size)?;
        if args.len() * 4 > CMD_MSG_LEN || opcode == 0 || opcode & ANSWERED != 0 {
            return Err(EINVAL);
        }
        self.program_l2(|l2| -> Result {
            for (i, a) in args.iter().enumerate() {
                l2.try_write32(*a, iface_off::CMD_MSG + i * 4)?;
            }
            l2.try_write32(size, iface_off::CMD_SIZE)?;
            l2.try_write32(opcode, iface_off::CMD_OPCODE)
        })?
    }

    /// The answer in the opcode word, once the card has answered.
    fn answer(&self) -> Result<Option<u32>> {
        let word = self.l2.with(|l2| l2.try_read32(iface_off::CMD_OPCODE))??;
        // All ones: the card is in reset or gone.
        if word == u32::MAX {
            return Err(EIO);
        }
        Ok((word & ANSWERED != 0).then_some(word & !ANSWERED))
    }

    fn status_result(status: u32) -> Result {
        match status {
            STATUS_OK => Ok(()),
            STATUS_BAD_ARGS => Err(EINVAL),
            _ => Err(EIO),
        }
    }

    /// Runs one command with `size` bytes of arguments in `args`; the caller
    /// holds the mailbox lock (and reads any result with [`Self::command_result`]
    /// under it). The card signals the answer through virtual MSI.
    pub(crate) fn command_locked(
        &self,
        opcode: u32,
        args: &[u32],
        size: usize,
        timeout: Delta,
    ) -> Result {
        // A card that reset itself would answer from its bootloader, which signals through a
        // virtual-MSI table nobody registered (an IOMMU fault on a real host, R1.2): commands
        // go only to a card whose firmware still runs.
        if self.status.lock().fw_state == FwState::Ready
            && matches!(self.boot_state(), Ok(s) if s != FwState::Ready)
        {
            self.check_health();
            return Err(EIO);
        }
        // The slot takes one command at a time. One whose caller's wait was failed without
        // draining it (an unbind, a stop, a reset about to come) may still run: it answers
        // first, or the card is reset.
        if let Some(running) = self.running_command() {
            if self.recovery.lock().is_some() {
                return Err(EIO);
            }
            self.drain_command(running)?;
        }
        self.edma.events.lock().mailbox = false;
        self.post_command(opcode, args, size)?;
        let waited = self.wait_event(timeout, |ev| core::mem::take(&mut ev.mailbox).then_some(()));
        let status = match (waited, self.answer()) {
            (Ok(()), Ok(Some(status))) => status,
            // Signalled, but the slot says otherwise: the signal was not this command's.
            (Ok(()), _) => return Err(EIO),
            (Err(e), Ok(Some(status))) if e == ETIMEDOUT => {
                dev_warn!(
                    self.pdev,
                    "command {} was answered but never signalled (lost virtual MSI); continuing\n",
                    opcode
                );
                status
            }
            (Err(e), _) => {
                // Only for a card that was running: a boot that fails is its caller's to report.
                let running = self.status.lock().fw_state == FwState::Ready;
                // A card that reset itself is recovered, not drained.
                self.check_health();
                if self.recovery.lock().is_some() {
                    return Err(e);
                }
                if e == ETIMEDOUT && running && !self.heartbeat_alive() {
                    dev_err!(
                        self.pdev,
                        "firmware stopped (no heartbeat, command {} unanswered); the card will be \
                         reset\n",
                        opcode
                    );
                    self.request_recovery("firmware stopped answering");
                } else if running && (e == ETIMEDOUT || e == ERESTARTSYS) {
                    // A command that never answers has the card reset; the caller fails anyway.
                    let _ = self.drain_command(opcode);
                }
                return Err(e);
            }
        };
        // A card that reset itself answers from its bootloader: recover it.
        Self::status_result(status).inspect_err(|_| self.check_health())
    }

    /// After a command's caller gave up (its timeout, a signal): the command may still run
    /// on the card, writing the regions its caller is about to release, and its answer
    /// would be taken for the next command's (security review H2). Waits, under the
    /// mailbox lock, until the card has answered it; a card that does not within
    /// [`COMMAND_DRAIN`] is reset before the caller releases anything (`EIO`).
    fn drain_command(&self, opcode: u32) -> Result {
        let answered = read_poll_timeout(
            || self.answer(),
            |a| a.is_some(),
            Delta::from_millis(1),
            COMMAND_DRAIN,
        );
        // Its signal, if it came meanwhile, belongs to no one.
        self.edma.events.lock().mailbox = false;
        if answered.is_err() {
            dev_err!(
                self.pdev,
                "command {} still runs {} ms after its caller gave up; the card will be reset \
                 before its memory is released\n",
                opcode,
                COMMAND_DRAIN.as_millis()
            );
            self.request_recovery("a firmware command never finished");
            return Err(EIO);
        }
        Ok(())
    }

    /// The opcode of a command that sits in the slot unanswered, if one does.
    fn running_command(&self) -> Option<u32> {
        match self.l2.with(|l2| l2.try_read32(iface_off::CMD_OPCODE)) {
            Ok(Ok(w)) if w != 0 && w != u32::MAX && w & ANSWERED == 0 => Some(w),
            _ => None,
        }
    }

    /// Before the card is stopped: a command still running (its caller gave up, or was
    /// failed by the stop) answers first, so that the firmware signals it while its
    /// virtual-MSI registration still stands, not into a withdrawn one (R1.2). A
    /// runtime-owned card's slot is the runtime's.
    pub(crate) fn settle_command(&self) {
        if self.fw.owner == FwOwner::Runtime {
            return;
        }
        let Some(opcode) = self.running_command() else {
            return;
        };
        let _ = read_poll_timeout(
            || Ok(self.running_command()),
            |running| running.is_none(),
            Delta::from_millis(1),
            self.settle_time(opcode),
        );
    }

    /// How long a running command gets to answer before the card is stopped: longer for
    /// one that moves more bytes (its length, from the slot).
    fn settle_time(&self, opcode: u32) -> Delta {
        let word = |i: usize| self.command_result(i).map_or(0, u64::from);
        let length = |i: usize| word(i) | (word(i + 1) << 32);
        // The message layouts `file.rs: cmd` and `scrub` write.
        let bytes = match opcode {
            uapi::CMD_CHECKSUM | uapi::CMD_FILL => length(2),
            // Read and written.
            uapi::CMD_RUN => length(4).saturating_mul(2),
            _ => 0,
        };
        let ms = i64::try_from(bytes >> SETTLE_SHIFT).unwrap_or(i64::MAX);
        let total = COMMAND_SETTLE.as_millis().saturating_add(ms);
        Delta::from_millis(total.min(COMMAND_DRAIN.as_millis()))
    }

    /// Word `i` of the command message (results), under the mailbox lock.
    pub(crate) fn command_result(&self, i: usize) -> Result<u32> {
        if i >= CMD_MSG_LEN / 4 {
            return Err(EINVAL);
        }
        self.l2
            .with(|l2| l2.try_read32(iface_off::CMD_MSG + i * 4))?
    }

    /// Issues BOOT for an image of `size` bytes at the load address, and
    /// polls for the answer: the bootloader answers without an interrupt,
    /// since the new firmware has not been registered with yet.
    pub(crate) fn boot_command(&self, size: u32, timeout: Delta) -> Result {
        let _slot = self.l2.mailbox.lock();
        self.post_command(op::BOOT, &[size], 4)?;
        let status = read_poll_timeout(
            || self.answer(),
            |a| a.is_some(),
            Delta::from_millis(1),
            timeout,
        )?;
        // The bootloader also signals its answer, through the registration it held; with
        // INTx the firmware it starts may drop the line before the handler ran. Taken here
        // (from the table if need be), so that it can't pass for the next command's.
        let _ = self.wait_event(BOOT_SIGNAL_WAIT, |ev| {
            core::mem::take(&mut ev.mailbox).then_some(())
        });
        self.service();
        self.edma.events.lock().mailbox = false;
        Self::status_result(status.unwrap_or(u32::MAX))
    }
}

impl Card {
    /// Runs a command and returns the first result word of the message.
    pub(crate) fn command_with_result(
        &self,
        opcode: u32,
        args: &[u32],
        timeout: Delta,
    ) -> Result<u32> {
        let _slot = self.l2.mailbox.lock();
        self.command_locked(opcode, args, args.len() * 4, timeout)?;
        let result = self.command_result(0)?;
        self.still_answered()?;
        Ok(result)
    }

    /// Zeroes `len` bytes of device memory at `dev_addr` before they go to a new owner
    /// (security review H3): the previous owner's data must not be readable by the next.
    ///
    /// A kernel-owned card's firmware fills it (at its internal bandwidth); a runtime-owned
    /// card's firmware takes no commands from the driver, so the engine copies zeros from
    /// a host buffer instead.
    pub(crate) fn scrub(&self, dev: &Device<Bound>, dev_addr: u64, len: u64) -> Result {
        if self.fw.owner == FwOwner::Kernel {
            let a = Halves::of(dev_addr);
            let l = Halves::of(len);
            return self
                .command_with_result(op::FILL, &[a.lo, a.hi, l.lo, l.hi, 0], SCRUB_TIMEOUT)
                .map(drop);
        }
        const ZEROS: usize = 64 * 1024;
        let zeros: Coherent<[u8]> =
            CoherentBox::<[u8]>::zeroed_slice(dev, ZEROS, GFP_KERNEL)?.into();
        let mut segs = KVVec::new();
        let (mut dev, mut left) = (dev_addr, len);
        while left > 0 {
            // CAST: at most `ZEROS`.
            let n = left.min(ZEROS as u64) as u32;
            segs.push(
                Segment {
                    addr: zeros.dma_address(),
                    len: n,
                    dev,
                },
                GFP_KERNEL,
            )?;
            dev = dev.checked_add(u64::from(n)).ok_or(EOVERFLOW)?;
            left -= u64::from(n);
        }
        self.transfer(Dir::Rd, &segs, SCRUB_TIMEOUT)
    }

    /// ECHO: sends `buf` and replaces it with what the card sent back.
    pub(crate) fn echo(&self, buf: &mut [u8], timeout: Delta) -> Result {
        let mut words = [0u32; uapi::ECHO_MAX / 4];
        for (i, b) in buf.iter().enumerate() {
            words[i / 4] |= u32::from(*b) << (8 * (i % 4));
        }
        let _slot = self.l2.mailbox.lock();
        self.command_locked(
            uapi::CMD_ECHO,
            &words[..buf.len().div_ceil(4)],
            buf.len(),
            timeout,
        )?;
        for (i, chunk) in buf.chunks_mut(4).enumerate() {
            let w = self.command_result(i)?;
            for (j, b) in chunk.iter_mut().enumerate() {
                // CAST: byte extraction.
                *b = (w >> (8 * j)) as u8;
            }
        }
        self.still_answered()
    }

    /// After reading a command's results: the slot still holds its (successful) answer,
    /// so they were its. A stop does not take the mailbox lock (a command may hold it until its
    /// timeout), so a reset can clear L2 between the answer and the reads; the results
    /// are then the reset card's, and the caller gets `EIO` rather than them (the
    /// fuzzer saw an ECHO come back different under resets).
    fn still_answered(&self) -> Result {
        match self.answer() {
            Ok(Some(STATUS_OK)) => Ok(()),
            _ => Err(EIO),
        }
    }
}
