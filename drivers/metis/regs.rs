// SPDX-License-Identifier: GPL-2.0

//! Register definitions for the two BARs.
//!
//! Every register is a naturally aligned 32-bit location. Quantities wider
//! than 32 bits are split into `_LO`/`_HI` halves; the driver writes the low
//! half first and the high half second (see `docs/hw-interface.md`).

use kernel::io::register;

/// Size of BAR0, the host interface area.
pub(crate) const BAR0_SIZE: usize = kernel::sizes::SZ_4K;
/// Size of BAR2, the eDMA registers and device-memory window.
pub(crate) const BAR2_SIZE: usize = kernel::sizes::SZ_32M;

/// Value of [`bar0::MAGIC`] on a card whose interface area is present.
pub(crate) const INTERFACE_MAGIC: u32 = 0xfd1f;

/// Host interface area (BAR0).
pub(crate) mod bar0 {
    use super::register;

    register! {
        /// Identifies the interface area.
        pub(crate) MAGIC(u32) @ 0x000 {
            15:0 magic;
        }

        /// Boot state of the card.
        pub(crate) STATE(u32) @ 0x014 {
            7:0 state;
        }

        /// Why the last boot failed.
        pub(crate) FAIL_REASON(u32) @ 0x018 {
            7:0 reason;
        }

        /// Device memory size, low half.
        pub(crate) MEM_SIZE_LO(u32) @ 0x028 {
            31:0 value;
        }

        /// Device memory size, high half.
        pub(crate) MEM_SIZE_HI(u32) @ 0x02c {
            31:0 value;
        }

        /// Version of the running firmware.
        pub(crate) FW_VERSION(u32) @ 0x200 {
            31:16 patch;
            15:8 minor;
            7:0 major;
        }

        /// Interrupt status of the firmware mailbox (write 1 to clear).
        pub(crate) FW_IRQ_STATUS(u32) @ 0xf04 {
            1:1 device_message;
            0:0 command_complete;
        }

        /// Interrupt mask of the firmware mailbox (1 = masked).
        pub(crate) FW_IRQ_MASK(u32) @ 0xf08 {
            1:1 device_message;
            0:0 command_complete;
        }
    }
}

/// DesignWare eDMA v0 global registers (BAR2, unrolled map).
pub(crate) mod edma {
    use super::register;

    register! {
        /// Channel counts implemented by the engine.
        pub(crate) CTRL(u32) @ 0x008 {
            19:16 rd_channels;
            3:0 wr_channels;
        }

        /// Write (device to host) engine enable.
        pub(crate) WR_ENGINE_EN(u32) @ 0x00c {
            0:0 enable;
        }

        /// Read (host to device) engine enable.
        pub(crate) RD_ENGINE_EN(u32) @ 0x02c {
            0:0 enable;
        }

        /// Write channel interrupt mask (1 = masked).
        pub(crate) WR_INT_MASK(u32) @ 0x054 {
            23:16 abort;
            7:0 done;
        }

        /// Write channel interrupt clear (write 1 to clear).
        pub(crate) WR_INT_CLEAR(u32) @ 0x058 {
            23:16 abort;
            7:0 done;
        }

        /// Read channel interrupt mask (1 = masked).
        pub(crate) RD_INT_MASK(u32) @ 0x0a8 {
            23:16 abort;
            7:0 done;
        }

        /// Read channel interrupt clear (write 1 to clear).
        pub(crate) RD_INT_CLEAR(u32) @ 0x0ac {
            23:16 abort;
            7:0 done;
        }
    }
}
