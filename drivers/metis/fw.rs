// SPDX-License-Identifier: GPL-2.0

//! Firmware loading and the boot handshake, and the command mailbox.
//!
//! The image is validated completely before it is DMA'd to the card, so a
//! wrong or corrupt file never reaches the card's bootloader.

use kernel::{
    device::{
        Bound,
        Device, //
    },
    dma::{
        Coherent,
        CoherentBox, //
    },
    firmware::Firmware,
    io::{
        register::Array,
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
        Dir, //
    },
    edma::Segment,
    fw_image::{
        self,
        Reject, //
    },
    regs::{
        self,
        bar0, //
    },
};

/// Firmware file loaded unless the `firmware` parameter names another.
pub(crate) const DEFAULT_FIRMWARE: &CStr = c"axelera/metis-fw-if1.bin";

// TIMEOUT: the card validates an image in well under 50 ms; the rest is slack for slow hosts.
const BOOT_TIMEOUT: Delta = Delta::from_secs(5);
// TIMEOUT: one image transfer of at most 8 MiB at a fraction of the link rate.
const LOAD_TIMEOUT: Delta = Delta::from_secs(10);
// TIMEOUT: five heartbeat periods (docs/hw-interface.md: one tick every 10 ms).
const HEARTBEAT_WAIT: Delta = Delta::from_millis(50);

/// What the card reports once its firmware runs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FwInfo {
    pub(crate) version: u32,
    pub(crate) if_version: u32,
}

/// Explains a refused image in one line that names what was found and what is needed.
fn explain(dev: &Device<Bound>, name: &CStr, r: Reject) {
    match r {
        Reject::Interface { image } => dev_err!(
            dev,
            "firmware {} implements interface {}.{} but this driver implements interface {}.x: \
             install the firmware that matches this driver or pass firmware=<file>\n",
            name.to_str().unwrap_or("?"),
            image.0,
            image.1,
            fw_image::DRIVER_IF_MAJOR
        ),
        other => dev_err!(
            dev,
            "firmware {} is not a valid Metis image ({:?}); it was not sent to the card: \
             reinstall the firmware file\n",
            name.to_str().unwrap_or("?"),
            other
        ),
    }
}

impl Card {
    fn fw_params(&self) -> Result<(u64, u32)> {
        self.with_bar0(|b0| {
            let lo = b0.read(bar0::FW_LOAD_ADDR_LO).value().get();
            let hi = b0.read(bar0::FW_LOAD_ADDR_HI).value().get();
            (
                u64::from(hi) << 32 | u64::from(lo),
                b0.read(bar0::FW_MAX_SIZE).value().get(),
            )
        })
    }

    /// Requests and validates the firmware file and makes it the image the
    /// card boots from now on (probe, resets, resume). The card is not touched:
    /// a refused file leaves the cached image in place.
    pub(crate) fn fetch_firmware(&self, dev: &Device<Bound>) -> Result {
        let name = crate::glue::firmware_param().unwrap_or(DEFAULT_FIRMWARE);
        let fw = Firmware::request(name, dev).inspect_err(|e| {
            dev_err!(
                dev,
                "can't load firmware {} ({:?}): install it under /lib/firmware\n",
                name.to_str().unwrap_or("?"),
                e
            )
        })?;
        let mut store = self.fw.lock();
        if store.max_size == 0 {
            (store.load_addr, store.max_size) = self.fw_params()?;
        }
        fw_image::validate(fw.data(), store.load_addr, store.max_size).map_err(|r| {
            explain(dev, name, r);
            EINVAL
        })?;
        let mut image = KVVec::with_capacity(fw.data().len(), GFP_KERNEL)?;
        image.extend_from_slice(fw.data(), GFP_KERNEL)?;
        store.image = image;
        Ok(())
    }

    /// Boots the cached image on a card in its bootloader; returns the running versions.
    pub(crate) fn boot_firmware(&self, dev: &Device<Bound>) -> Result<FwInfo> {
        let store = self.fw.lock();
        if store.image.is_empty() {
            return Err(ENOENT);
        }
        self.boot_image(dev, &store.image, store.load_addr)
    }

    /// DMAs a validated `image` to the card and runs the boot handshake.
    fn boot_image(&self, dev: &Device<Bound>, image: &[u8], load_addr: u64) -> Result<FwInfo> {
        let buf: Coherent<[u8]> = CoherentBox::<[u8]>::from_slice(dev, image, GFP_KERNEL)?.into();
        let seg = Segment {
            addr: buf.dma_address(),
            len: u32::try_from(image.len())?,
        };
        self.transfer(dev, Dir::Rd, &[seg], load_addr, LOAD_TIMEOUT)
            .inspect_err(|e| dev_err!(dev, "firmware transfer to the card failed ({:?})\n", e))?;
        drop(buf);

        let status = self.command(regs::cmd::BOOT, &[seg.len], BOOT_TIMEOUT);
        let (state, reason, version, if_version) = self.with_bar0(|b0| {
            (
                b0.read(bar0::STATE).state().get(),
                b0.read(bar0::FAIL_REASON).reason().get(),
                b0.read(bar0::FW_VERSION).into_raw(),
                b0.read(bar0::FW_IF_VERSION).into_raw(),
            )
        })?;
        if state != regs::fw_state::READY {
            dev_err!(
                dev,
                "firmware did not start: card state {}, reason {}, command {:?}; \
                 reset the card (metisctl reset) or power-cycle the machine\n",
                state,
                reason,
                status
            );
            return Err(EIO);
        }
        let if_major = if_version >> 16;
        if if_major != u32::from(fw_image::DRIVER_IF_MAJOR) {
            dev_err!(
                dev,
                "running firmware reports interface {}.{} but this driver implements {}.x\n",
                if_major,
                if_version & 0xffff,
                fw_image::DRIVER_IF_MAJOR
            );
            return Err(EPROTO);
        }
        Ok(FwInfo {
            version,
            if_version,
        })
    }

    /// Whether the firmware's heartbeat counter moves (it ticks every 10 ms).
    fn heartbeat_alive(&self) -> bool {
        let beat = || self.with_bar0(|b0| b0.read(bar0::HEARTBEAT).value().get());
        let first = beat();
        fsleep(HEARTBEAT_WAIT);
        matches!((first, beat()), (Ok(a), Ok(b)) if a != b)
    }

    /// Runs one mailbox command with argument words `args`.
    pub(crate) fn command(&self, opcode: u32, args: &[u32], timeout: Delta) -> Result {
        let _slot = self.mailbox.lock();
        self.command_locked(opcode, args, args.len() * 4, timeout)
    }

    /// Runs one command with `size` bytes of arguments in `args`; the caller
    /// holds the mailbox lock (and reads any result from `CMD_MSG` under it).
    pub(crate) fn command_locked(
        &self,
        opcode: u32,
        args: &[u32],
        size: usize,
        timeout: Delta,
    ) -> Result {
        self.events.lock().mailbox = false;
        let size = u32::try_from(size)?;
        self.program_bar0(|b0| -> Result {
            b0.write_reg(bar0::CMD_OPCODE::from_raw(opcode));
            b0.write_reg(bar0::CMD_SIZE::from_raw(size));
            for (i, a) in args.iter().enumerate() {
                b0.write(
                    bar0::CMD_MSG::try_at(i).ok_or(EINVAL)?,
                    bar0::CMD_MSG::from_raw(*a),
                );
            }
            b0.write_reg(bar0::DOORBELL::from_raw(1));
            Ok(())
        })??;
        self.wait_event(timeout, |ev| core::mem::take(&mut ev.mailbox).then_some(()))
            .inspect_err(|e| {
                // Only for a card that was running: a boot that fails is its caller's to report.
                let running = self.status.lock().fw_state == regs::fw_state::READY;
                if *e == ETIMEDOUT && running && !self.heartbeat_alive() {
                    dev_err!(
                        self.pdev,
                        "firmware stopped (no heartbeat, command {} unanswered); the card will be \
                         reset\n",
                        opcode
                    );
                    self.request_recovery("firmware stopped answering");
                }
            })?;
        match self.with_bar0(|b0| b0.read(bar0::CMD_STATUS).value().get())? {
            regs::cmd::STATUS_OK => Ok(()),
            // Arguments the card refused (bounds it checks itself).
            2 => Err(EINVAL),
            _ => Err(EIO),
        }
    }
}
