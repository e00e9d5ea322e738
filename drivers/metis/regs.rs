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

/// Card boot states in [`bar0::STATE`].
pub(crate) mod fw_state {
    pub(crate) const BOOTLOADER: u32 = 1;
    pub(crate) const READY: u32 = 3;
    pub(crate) const FAILED: u32 = 4;
}

/// Command opcodes and statuses of the mailbox.
pub(crate) mod cmd {
    pub(crate) const BOOT: u32 = 1;
    pub(crate) const STATUS_OK: u32 = 0;
}

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

        /// Heartbeat of the running firmware.
        pub(crate) HEARTBEAT(u32) @ 0x030 {
            31:0 value;
        }

        /// Device address where the host must place a firmware image, low half.
        pub(crate) FW_LOAD_ADDR_LO(u32) @ 0x01c {
            31:0 value;
        }

        /// Device address where the host must place a firmware image, high half.
        pub(crate) FW_LOAD_ADDR_HI(u32) @ 0x020 {
            31:0 value;
        }

        /// Largest firmware image the bootloader accepts.
        pub(crate) FW_MAX_SIZE(u32) @ 0x024 {
            31:0 value;
        }

        /// Interface major version the bootloader can boot.
        pub(crate) IF_VERSION_SUPPORTED(u32) @ 0x034 {
            31:16 major;
        }

        /// First device address free for host allocations, low half.
        pub(crate) USER_MEM_BASE_LO(u32) @ 0x038 {
            31:0 value;
        }

        /// First device address free for host allocations, high half.
        pub(crate) USER_MEM_BASE_HI(u32) @ 0x03c {
            31:0 value;
        }

        /// Command opcode.
        pub(crate) CMD_OPCODE(u32) @ 0x0b0 {
            31:0 value;
        }

        /// Bytes of argument in the command message.
        pub(crate) CMD_SIZE(u32) @ 0x0b4 {
            31:0 value;
        }

        /// Command message, 64 words of arguments in and results out.
        pub(crate) CMD_MSG(u32)[64] @ 0x0b8 {
            31:0 value;
        }

        /// Status of the last command.
        pub(crate) CMD_STATUS(u32) @ 0x1b8 {
            31:0 value;
        }

        /// Incremented when a command completes.
        pub(crate) CMD_SEQ(u32) @ 0x1bc {
            31:0 value;
        }

        /// Interface version of the running firmware.
        pub(crate) FW_IF_VERSION(u32) @ 0x204 {
            31:16 major;
            15:0 minor;
        }

        /// Executes the command in the slot.
        pub(crate) DOORBELL(u32) @ 0xf00 {
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

/// DesignWare eDMA v0 registers (BAR2, unrolled map).
///
/// The write (device to host) and read (host to device) halves of the
/// engine have the same registers at direction-specific offsets. Each group
/// of registers whose write/read spacing is the same shares a base family,
/// and the [`Wr`] and [`Rd`] markers give the base of each group, so the
/// engine code is written once over a [`Direction`].
pub(crate) mod edma {
    use kernel::io::{
        register,
        register::RegisterBase, //
    };

    /// Engine enable and doorbell.
    pub(crate) struct EngBase;
    /// Interrupt status, mask and clear.
    pub(crate) struct IntBase;
    /// IMWR (interrupt memory write) address and data.
    pub(crate) struct ImwrBase;
    /// Linked-list error enable.
    pub(crate) struct LlErrBase;
    /// Per-channel register blocks.
    pub(crate) struct ChBase;

    /// The write (device to host) half of the engine.
    pub(crate) struct Wr;
    /// The read (host to device) half of the engine.
    pub(crate) struct Rd;

    impl RegisterBase<EngBase> for Wr {
        const BASE: usize = 0x000;
    }
    impl RegisterBase<EngBase> for Rd {
        const BASE: usize = 0x020;
    }
    impl RegisterBase<IntBase> for Wr {
        const BASE: usize = 0x000;
    }
    impl RegisterBase<IntBase> for Rd {
        const BASE: usize = 0x054;
    }
    impl RegisterBase<ImwrBase> for Wr {
        const BASE: usize = 0x000;
    }
    impl RegisterBase<ImwrBase> for Rd {
        const BASE: usize = 0x06c;
    }
    impl RegisterBase<LlErrBase> for Wr {
        const BASE: usize = 0x000;
    }
    impl RegisterBase<LlErrBase> for Rd {
        const BASE: usize = 0x034;
    }
    impl RegisterBase<ChBase> for Wr {
        const BASE: usize = 0x200;
    }
    impl RegisterBase<ChBase> for Rd {
        const BASE: usize = 0x300;
    }

    /// One half of the engine.
    pub(crate) trait Direction:
        RegisterBase<EngBase>
        + RegisterBase<IntBase>
        + RegisterBase<ImwrBase>
        + RegisterBase<LlErrBase>
        + RegisterBase<ChBase>
    {
    }
    impl Direction for Wr {}
    impl Direction for Rd {}

    register! {
        /// Channel counts implemented by the engine.
        pub(crate) CTRL(u32) @ 0x008 {
            19:16 rd_channels;
            3:0 wr_channels;
        }

        /// Engine enable.
        pub(crate) ENGINE_EN(u32) @ EngBase + 0x00c {
            0:0 enable;
        }

        /// Doorbell: starts (or, with `stop`, halts) a channel.
        pub(crate) DOORBELL(u32) @ EngBase + 0x010 {
            31:31 stop;
            2:0 ch;
        }

        /// Interrupt status (done per channel in [7:0], abort in [23:16]).
        pub(crate) INT_STATUS(u32) @ IntBase + 0x04c {
            23:16 abort;
            7:0 done;
        }

        /// Interrupt mask (1 = masked); gates local (INTx) delivery only.
        pub(crate) INT_MASK(u32) @ IntBase + 0x054 {
            23:16 abort;
            7:0 done;
        }

        /// Interrupt clear (write 1 to clear).
        pub(crate) INT_CLEAR(u32) @ IntBase + 0x058 {
            23:16 abort;
            7:0 done;
        }

        /// Done IMWR address, low half.
        pub(crate) DONE_IMWR_LO(u32) @ ImwrBase + 0x060 {
            31:0 value;
        }

        /// Done IMWR address, high half.
        pub(crate) DONE_IMWR_HI(u32) @ ImwrBase + 0x064 {
            31:0 value;
        }

        /// Abort IMWR address, low half.
        pub(crate) ABORT_IMWR_LO(u32) @ ImwrBase + 0x068 {
            31:0 value;
        }

        /// Abort IMWR address, high half.
        pub(crate) ABORT_IMWR_HI(u32) @ ImwrBase + 0x06c {
            31:0 value;
        }

        /// IMWR data of a channel pair: even channel in [15:0], odd in [31:16].
        pub(crate) CH_IMWR_DATA(u32)[4] @ ImwrBase + 0x070 {
            31:16 odd;
            15:0 even;
        }

        /// Linked-list error enable, one bit per channel.
        pub(crate) LL_ERR_EN(u32) @ LlErrBase + 0x090 {
            7:0 ch;
        }

        /// Channel control.
        pub(crate) CH_CONTROL1(u32)[8, stride = 0x200] @ ChBase + 0x00 {
            16:12 func;
            9:9 lle;
            8:8 ccs;
            6:5 cs;
            4:4 rie;
            3:3 lie;
            2:2 llp;
            1:1 tcb;
            0:0 cb;
        }

        /// Bytes of a non-linked-list transfer.
        pub(crate) CH_TRANSFER_SIZE(u32)[8, stride = 0x200] @ ChBase + 0x08 {
            31:0 value;
        }

        /// Source address, low half.
        pub(crate) CH_SAR_LO(u32)[8, stride = 0x200] @ ChBase + 0x0c {
            31:0 value;
        }

        /// Source address, high half.
        pub(crate) CH_SAR_HI(u32)[8, stride = 0x200] @ ChBase + 0x10 {
            31:0 value;
        }

        /// Destination address, low half.
        pub(crate) CH_DAR_LO(u32)[8, stride = 0x200] @ ChBase + 0x14 {
            31:0 value;
        }

        /// Destination address, high half.
        pub(crate) CH_DAR_HI(u32)[8, stride = 0x200] @ ChBase + 0x18 {
            31:0 value;
        }

        /// Linked-list pointer, low half.
        pub(crate) CH_LLP_LO(u32)[8, stride = 0x200] @ ChBase + 0x1c {
            31:0 value;
        }

        /// Linked-list pointer, high half.
        pub(crate) CH_LLP_HI(u32)[8, stride = 0x200] @ ChBase + 0x20 {
            31:0 value;
        }
    }

    /// Channel status in [`CH_CONTROL1::cs`]: running.
    pub(crate) const CS_RUNNING: u32 = 1;
    /// Channel status in [`CH_CONTROL1::cs`]: stopped.
    pub(crate) const CS_STOPPED: u32 = 3;
}
