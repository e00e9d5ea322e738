// SPDX-License-Identifier: GPL-2.0

//! Firmware files: loading, validation, caching, and the boot sequence that
//! sends the cached image to the card (kernel-owned mode).
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
    firmware, new_mutex, new_poll_condvar,
    prelude::*,
    sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
        poll::PollCondVar,
        Mutex,
    },
    time::Delta,
};

use crate::{
    boot::FwState,
    card::Card,
    edma::{
        Dir,
        Segment, //
    },
    fw_image::{
        self,
        Reject, //
    },
    glue,
};

/// Firmware file loaded unless the `firmware` parameter names another.
pub(crate) const DEFAULT_FIRMWARE: &CStr = c"axelera/metis-fw-if1.bin";

// TIMEOUT: the card validates an image in well under 50 ms; the rest is slack for slow hosts.
const BOOT_TIMEOUT: Delta = Delta::from_secs(5);
// TIMEOUT: one image transfer of at most 8 MiB at a fraction of the link rate.
const LOAD_TIMEOUT: Delta = Delta::from_secs(10);

/// Who loads the card's firmware.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FwOwner {
    /// The driver: validated file, booted at probe and after every reset and resume.
    Kernel,
    /// Userspace (the vendor runtime): the driver never sends a firmware
    /// command, and tells userspace when the firmware is lost.
    Runtime,
}

/// The validated firmware image, kept for resets and resume.
pub(crate) struct FwStore {
    pub(crate) image: KVVec<u8>,
    /// Where the bootloader takes images, and how large they may be (fixed per card).
    pub(crate) load_addr: u64,
    pub(crate) max_size: u32,
}

/// The firmware side of a card that is the driver's business.
#[pin_data]
pub(crate) struct Firmware {
    /// Who loads the firmware; fixed at probe.
    pub(crate) owner: FwOwner,
    /// The validated image the card runs (kernel-owned), kept for resets and resume.
    #[pin]
    pub(crate) store: Mutex<FwStore>,
    /// Runtime-owned: the firmware was lost and userspace has not loaded a new one yet.
    pub(crate) lost: Atomic<bool>,
    /// Signalled when `lost` changes; open files poll on it.
    #[pin]
    pub(crate) event: PollCondVar,
}

impl Firmware {
    pub(crate) fn new(owner: FwOwner) -> impl PinInit<Self> {
        pin_init!(Self {
            owner,
            store <- new_mutex!(
                FwStore {
                    image: KVVec::new(),
                    load_addr: 0,
                    max_size: 0
                },
                "metis_fw"
            ),
            lost: Atomic::new(false),
            event <- new_poll_condvar!("metis_fw_event"),
        })
    }
}

impl FwOwner {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Kernel => "kernel-owned",
            Self::Runtime => "runtime-owned",
        }
    }
}

/// Decides who owns the firmware from the `fw_owner` parameter (0 auto, 1
/// the driver, 2 userspace) and whether the card's bootloader advertises the
/// boot protocol the driver implements. Returns the owner and why, or why not.
///
/// A real card's bootloader is not ours: it must never be sent a model
/// command, so the driver owns the firmware only where the card says it may.
pub(crate) fn choose_owner(
    param: i32,
    protocol: bool,
) -> core::result::Result<(FwOwner, &'static str), &'static str> {
    match (param, protocol) {
        (0, true) => Ok((
            FwOwner::Kernel,
            "the card's bootloader advertises the boot protocol this driver implements",
        )),
        (0, false) => Ok((
            FwOwner::Runtime,
            "the card's bootloader does not advertise the boot protocol this driver implements",
        )),
        (1, true) => Ok((FwOwner::Kernel, "fw_owner=1")),
        (1, false) => Err(
            "fw_owner=1 asks the driver to load the firmware, but the card's bootloader does not \
             advertise the boot protocol this driver implements: load with fw_owner=0 or 2",
        ),
        (2, _) => Ok((FwOwner::Runtime, "fw_owner=2")),
        _ => Err("fw_owner must be 0 (auto), 1 (the driver) or 2 (userspace)"),
    }
}

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
        let load_addr = self.l2.iface.lock().as_ref().ok_or(ENODEV)?.fw_load_addr;
        Ok((load_addr, self.boot_block()?.fw_max_size))
    }

    /// Requests and validates the firmware file and makes it the image the
    /// card boots from now on (probe, resets, resume). The card is not touched:
    /// a refused file leaves the cached image in place.
    pub(crate) fn fetch_firmware(&self, dev: &Device<Bound>) -> Result {
        let name = crate::glue::firmware_param().unwrap_or(DEFAULT_FIRMWARE);
        let fw = firmware::Firmware::request(name, dev).inspect_err(|e| {
            dev_err!(
                dev,
                "can't load firmware {} ({:?}): install it under /lib/firmware\n",
                name.to_str().unwrap_or("?"),
                e
            )
        })?;
        let mut store = self.fw.store.lock();
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
        let store = self.fw.store.lock();
        if store.image.is_empty() {
            return Err(ENOENT);
        }
        self.boot_image(dev, &store.image, store.load_addr)
    }

    /// DMAs a validated `image` to the card, runs the boot handshake, and
    /// adopts what the new firmware published (its areas, a fresh virtual-MSI
    /// registration: the firmware clears the old one when it starts).
    fn boot_image(&self, dev: &Device<Bound>, image: &[u8], load_addr: u64) -> Result<FwInfo> {
        let buf: Coherent<[u8]> = CoherentBox::<[u8]>::from_slice(dev, image, GFP_KERNEL)?.into();
        let seg = Segment {
            addr: buf.dma_address(),
            len: u32::try_from(image.len())?,
            dev: load_addr,
        };
        self.transfer(Dir::Rd, &[seg], LOAD_TIMEOUT)
            .inspect_err(|e| dev_err!(dev, "firmware transfer to the card failed ({:?})\n", e))?;
        drop(buf);

        // The bootloader signals BOOT's answer through the registration it holds: this
        // table's, whatever withdrew it since (a stop, an interrupt fallback).
        self.register_vmsi()?;
        let status = self.boot_command(seg.len, BOOT_TIMEOUT);
        let bb = self.boot_block()?;
        if bb.state != FwState::Ready {
            dev_err!(
                dev,
                "firmware did not start: card state {:?}, reason {}, command {:?}; \
                 reset the card (metisctl reset) or power-cycle the machine\n",
                bb.state,
                bb.fail_reason,
                status
            );
            return Err(EIO);
        }
        let if_major = bb.fw_if_version >> 16;
        if if_major != u32::from(fw_image::DRIVER_IF_MAJOR) {
            dev_err!(
                dev,
                "running firmware reports interface {}.{} but this driver implements {}.x\n",
                if_major,
                bb.fw_if_version & 0xffff,
                fw_image::DRIVER_IF_MAJOR
            );
            return Err(EPROTO);
        }
        self.adopt_interface()?;
        Ok(FwInfo {
            version: bb.fw_version,
            if_version: bb.fw_if_version,
        })
    }
}

impl Card {
    /// Runtime-owned: the card lost its firmware (reset, power loss); the
    /// runtime must load it again. Open files see `POLLPRI` until it has.
    pub(crate) fn firmware_lost(&self) {
        self.fw.lost.store(true, Relaxed);
        self.fw.event.notify_all();
        glue::notify_firmware_lost(&self.pdev);
        dev_info!(
            self.pdev,
            "the card's firmware is gone; the runtime must load it again (uevent \
             METIS_EVENT=FIRMWARE_LOST sent)\n"
        );
    }

    /// `METIS_IOCTL_FW_CHANGED` and the vendor ABI's `DYNMEM_LOAD`: userspace booted a
    /// firmware on a runtime-owned card. Adopts what it publishes, registers the
    /// virtual-MSI table with it, and writes the engine's enables and IMWR registers
    /// again.
    pub(crate) fn firmware_changed(&self) -> Result {
        if self.fw.owner != FwOwner::Runtime {
            return Err(EINVAL);
        }
        let _gate = self.enter()?;
        self.adopt_interface()?;
        self.edma.restore()?;
        let (version, (major, minor)) = self
            .l2
            .iface
            .lock()
            .as_ref()
            .map_or((0, (0, 0)), |i| (i.fw_version(), i.version));
        {
            let mut st = self.status.lock();
            st.fw_state = FwState::Ready;
            st.fw_version = version;
            st.fw_if_version = 0;
        }
        self.fw.lost.store(false, Relaxed);
        self.fw.event.notify_all();
        dev_info!(
            self.pdev,
            "firmware {}.{} loaded by the runtime; its areas adopted\n",
            major,
            minor
        );
        Ok(())
    }
}

#[cfg(metis_kunit)]
#[kernel::prelude::kunit_tests(metis_fw_owner)]
mod tests {
    use super::*;

    #[test]
    fn owner_follows_what_the_card_shows() {
        assert_eq!(choose_owner(0, true).map(|o| o.0), Ok(FwOwner::Kernel));
        assert_eq!(choose_owner(0, false).map(|o| o.0), Ok(FwOwner::Runtime));
    }

    #[test]
    fn the_parameter_overrides_within_limits() {
        assert_eq!(choose_owner(2, true).map(|o| o.0), Ok(FwOwner::Runtime));
        assert_eq!(choose_owner(1, true).map(|o| o.0), Ok(FwOwner::Kernel));
        // Never a model command to a card that does not speak the protocol.
        assert!(choose_owner(1, false).is_err());
        assert!(choose_owner(3, true).is_err());
        assert!(choose_owner(-1, false).is_err());
    }
}
