//! `metis_emu`: a model of the Axelera Metis AI accelerator card as seen
//! over PCIe, for driving a real driver through QEMU's vfio-user client.
//!
//! The device model (`device::Device`) is transport-free; `server` adapts it
//! to the `vfio_user` crate, and the tests drive it directly.

pub mod boot;
pub mod config;
pub mod control;
pub mod device;
pub mod devmem;
pub mod dma;
pub mod edma;
pub mod faults;
pub mod firmware;
pub mod fw_image;
pub mod iface;
pub mod inject;
pub mod irq;
pub mod link;
pub mod msi;
pub mod obs;
pub mod options;
pub mod rom;
pub mod server;
pub mod vmsi;

pub use device::Device;
pub use faults::Fault;
pub use options::{Identity, IfLayout, Options};
