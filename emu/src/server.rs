//! vfio-user transport: a thin `vfio_user::ServerBackend` over `Device`.
//!
//! The crate's server is single-threaded and handles one client; the eDMA
//! engine and firmware run on their own threads against the shared device
//! state. Regions are offered without mmap so every BAR access arrives as a
//! message and can be checked.

use crate::device::Device;
use std::fs::File;
use std::io;
use std::mem::size_of;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use vfio_bindings::bindings::vfio::*;
use vfio_user::{DmaMapFlags, DmaUnmapFlags, IrqInfo, Server, ServerBackend, ServerRegion};

struct Backend {
    dev: Arc<Device>,
}

impl ServerBackend for Backend {
    fn region_read(&mut self, region: u32, offset: u64, data: &mut [u8]) -> io::Result<()> {
        self.dev.region_read(region, offset, data);
        Ok(())
    }

    fn region_write(&mut self, region: u32, offset: u64, data: &[u8]) -> io::Result<()> {
        self.dev.region_write(region, offset, data);
        Ok(())
    }

    fn dma_map(
        &mut self,
        flags: DmaMapFlags,
        offset: u64,
        address: u64,
        size: u64,
        fd: Option<File>,
    ) -> io::Result<()> {
        self.dev.dma_map(
            flags.contains(DmaMapFlags::READ),
            flags.contains(DmaMapFlags::WRITE),
            offset,
            address,
            size,
            fd,
        )
    }

    fn dma_unmap(&mut self, flags: DmaUnmapFlags, address: u64, size: u64) -> io::Result<()> {
        self.dev.dma_unmap(address, size, unmap_all(flags.bits()));
        Ok(())
    }

    fn reset(&mut self) -> io::Result<()> {
        self.dev.vfio_reset();
        Ok(())
    }

    fn set_irqs(
        &mut self,
        index: u32,
        flags: u32,
        start: u32,
        count: u32,
        fds: Vec<File>,
    ) -> io::Result<()> {
        self.dev.set_irqs(index, flags, start, count, fds)
    }
}

/// QEMU sends Linux's VFIO_DMA_UNMAP_FLAG_ALL (bit 1), which the vfio_user
/// crate 0.1.7 names GET_DIRTY_PAGE_INFO while its own UNMAP_ALL is bit 2.
/// Dirty-page requests are never sent (QEMU has no vfio-user migration), so
/// either bit means "everything".
pub fn unmap_all(bits: u32) -> bool {
    bits & (1 << 1 | 1 << 2) != 0
}

/// Region table: BAR0, BAR2, ROM (read-only), config space; the others
/// (BAR1 is BAR0's upper half, BAR3-5, VGA) are empty.
pub fn regions(dev: &Device) -> Vec<ServerRegion> {
    (0..VFIO_PCI_NUM_REGIONS)
        .map(|index| {
            let size = dev.region_size(index);
            let flags = match index {
                _ if size == 0 => 0,
                VFIO_PCI_ROM_REGION_INDEX => VFIO_REGION_INFO_FLAG_READ,
                _ => VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE,
            };
            ServerRegion {
                region_info: vfio_region_info {
                    argsz: size_of::<vfio_region_info>() as u32,
                    flags,
                    index,
                    cap_offset: 0,
                    size,
                    offset: 0,
                },
                sparse_areas: Vec::new(),
                mmap_fd: None,
            }
        })
        .collect()
}

/// Interrupt table: INTx (maskable, automasked), MSI 32, MSI-X N; ERR and
/// REQ notifiers are not offered (count 0).
pub fn irqs(dev: &Device) -> Vec<IrqInfo> {
    let msix = dev.options().msix;
    (0..VFIO_PCI_NUM_IRQS)
        .map(|index| {
            let (count, flags) = match index {
                VFIO_PCI_INTX_IRQ_INDEX => (
                    1,
                    VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED,
                ),
                VFIO_PCI_MSI_IRQ_INDEX => (32, VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE),
                VFIO_PCI_MSIX_IRQ_INDEX if msix > 0 => {
                    (msix, VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE)
                }
                _ => (0, 0),
            };
            IrqInfo {
                index,
                flags,
                count,
            }
        })
        .collect()
}

/// Removes a stale socket file (nobody listening); refuses a live one.
pub fn clear_stale_socket(path: &Path) -> Result<(), String> {
    if !path.exists() {
        return Ok(());
    }
    if UnixStream::connect(path).is_ok() {
        return Err(format!("{} is in use by another server", path.display()));
    }
    std::fs::remove_file(path).map_err(|e| format!("remove stale {}: {e}", path.display()))
}

/// Binds the socket, calls `listening` once clients can connect, serves one
/// client until it disconnects.
pub fn serve(path: &Path, dev: Arc<Device>, listening: impl FnOnce()) -> Result<(), String> {
    clear_stale_socket(path)?;
    let server = Server::new(path, true, irqs(&dev), regions(&dev))
        .map_err(|e| format!("vfio-user server on {}: {e}", path.display()))?;
    listening();
    let mut backend = Backend { dev };
    server
        .run(&mut backend)
        .map_err(|e| format!("vfio-user: {e}"))
}
