// SPDX-License-Identifier: GPL-2.0

//! Register definitions of the card's DesignWare eDMA block at BAR0.
//!
//! BAR2 is memory (L2), not registers: its layout lives in `iface.rs`.
//!
//! Every register is a naturally aligned 32-bit location. Quantities wider
//! than 32 bits are split into `_LO`/`_HI` halves; the driver writes the low
//! half first and the high half second (see `docs/hw-interface.md`).

/// Size of BAR0, the DesignWare eDMA registers (known).
pub(crate) const BAR0_SIZE: usize = kernel::sizes::SZ_4K;
/// Size of BAR2, the window onto the card's L2 memory (known).
pub(crate) const BAR2_SIZE: usize = kernel::sizes::SZ_32M;
/// Device address of BAR2 offset 0: the start of L2 (known).
pub(crate) const L2_BASE: u64 = 0x0800_0000;

/// A 64-bit quantity as the two 32-bit words the card takes it in (`_LO`/`_HI`
/// registers, list elements, the interface structure), low word first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Halves {
    pub(crate) lo: u32,
    pub(crate) hi: u32,
}

impl Halves {
    pub(crate) const fn of(v: u64) -> Self {
        Self {
            // CAST: the low and the high 32 bits, by definition.
            lo: v as u32,
            hi: (v >> 32) as u32,
        }
    }

    pub(crate) const fn join(self) -> u64 {
        (self.hi as u64) << 32 | self.lo as u64
    }
}

/// DesignWare eDMA v0 registers (BAR0, unrolled map, 4 read and 4 write channels).
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
        pub(crate) CH_CONTROL1(u32)[4, stride = 0x200] @ ChBase + 0x00 {
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
        pub(crate) CH_TRANSFER_SIZE(u32)[4, stride = 0x200] @ ChBase + 0x08 {
            31:0 value;
        }

        /// Source address, low half.
        pub(crate) CH_SAR_LO(u32)[4, stride = 0x200] @ ChBase + 0x0c {
            31:0 value;
        }

        /// Source address, high half.
        pub(crate) CH_SAR_HI(u32)[4, stride = 0x200] @ ChBase + 0x10 {
            31:0 value;
        }

        /// Destination address, low half.
        pub(crate) CH_DAR_LO(u32)[4, stride = 0x200] @ ChBase + 0x14 {
            31:0 value;
        }

        /// Destination address, high half.
        pub(crate) CH_DAR_HI(u32)[4, stride = 0x200] @ ChBase + 0x18 {
            31:0 value;
        }

        /// Linked-list pointer, low half.
        pub(crate) CH_LLP_LO(u32)[4, stride = 0x200] @ ChBase + 0x1c {
            31:0 value;
        }

        /// Linked-list pointer, high half.
        pub(crate) CH_LLP_HI(u32)[4, stride = 0x200] @ ChBase + 0x20 {
            31:0 value;
        }
    }

    /// Channel status, [`CH_CONTROL1::cs`].
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) enum ChannelStatus {
        /// Never started since the engine was enabled.
        Init,
        Running,
        /// Halted on an error (abort).
        Halted,
        /// Finished, or stopped by the host.
        Stopped,
    }

    impl CH_CONTROL1 {
        pub(crate) fn status(self) -> ChannelStatus {
            match self.cs().get() {
                0 => ChannelStatus::Init,
                1 => ChannelStatus::Running,
                2 => ChannelStatus::Halted,
                _ => ChannelStatus::Stopped,
            }
        }
    }
}

#[cfg(metis_kunit)]
#[kernel::prelude::kunit_tests(metis_regs)]
mod tests {
    use super::Halves;

    #[test]
    fn halves_split_low_word_first_and_join_back() {
        let v = 0x0000_0001_0100_0000u64;
        let h = Halves::of(v);
        assert_eq!(h.lo, 0x0100_0000);
        assert_eq!(h.hi, 0x1);
        assert_eq!(h.join(), v);
        assert_eq!(Halves::of(u64::MAX).join(), u64::MAX);
        assert_eq!(Halves { lo: 0, hi: 0 }.join(), 0);
    }
}
