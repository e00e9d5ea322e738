// SPDX-License-Identifier: GPL-2.0

//! eDMA linked-list elements (`docs/hw-interface.md`, dw-edma v0 layout).
//!
//! A data element is 24 bytes: control, size, source (64-bit), destination
//! (64-bit). A link element sits in a 24-byte slot: control, reserved, next
//! list address (64-bit). Elements are stored little-endian as 32-bit words,
//! the width every other access to the card has.

use kernel::prelude::*;

use crate::{
    edma::{
        Dir,
        Segment, //
    },
    regs::Halves,
};

/// Bytes per element slot.
pub(crate) const ELEMENT_SIZE: usize = 24;
/// 32-bit words per element slot.
pub(crate) const ELEMENT_WORDS: usize = ELEMENT_SIZE / 4;

/// Cycle bit: the element belongs to the engine when it equals CCS.
pub(crate) const CTRL_CB: u32 = 1 << 0;
/// Toggle cycle bit (link elements): flip CCS when following the link.
pub(crate) const CTRL_TCB: u32 = 1 << 1;
/// Marks a link element.
pub(crate) const CTRL_LLP: u32 = 1 << 2;
/// Local interrupt (status latch, INTx) when this element completes.
pub(crate) const CTRL_LIE: u32 = 1 << 3;
/// Remote interrupt (IMWR) when this element completes.
pub(crate) const CTRL_RIE: u32 = 1 << 4;

fn put(words: &mut [u32], slot: usize, control: u32, size: u32, a: u64, b: u64) -> Result {
    let w = words
        .get_mut(slot * ELEMENT_WORDS..(slot + 1) * ELEMENT_WORDS)
        .ok_or(EINVAL)?;
    let (a, b) = (Halves::of(a), Halves::of(b));
    let v = [control, size, a.lo, a.hi, b.lo, b.hi];
    for (dst, src) in w.iter_mut().zip(v) {
        *dst = src.to_le();
    }
    Ok(())
}

/// Fills `words` with a data element per segment, all carrying cycle bit
/// `cycle` and the last one raising `irq`. Returns the number of slots used.
pub(crate) fn build_elements(
    words: &mut [u32],
    segs: &[Segment],
    dir: Dir,
    cycle: bool,
    irq: u32,
) -> Result<usize> {
    let cb = if cycle { CTRL_CB } else { 0 };
    for (i, s) in segs.iter().enumerate() {
        if s.len == 0 {
            return Err(EINVAL);
        }
        // The engine's address counters do not wrap.
        s.dev.checked_add(u64::from(s.len)).ok_or(EOVERFLOW)?;
        let ctl = cb | if i + 1 == segs.len() { irq } else { 0 };
        let (sar, dar) = match dir {
            Dir::Wr => (s.dev, s.addr),
            Dir::Rd => (s.addr, s.dev),
        };
        put(words, i, ctl, s.len, sar, dar)?;
    }
    Ok(segs.len())
}

/// The control word of the slot after a run of elements of cycle `cycle`:
/// the ring's link element (`link`: back to the ring's start, flipping CCS),
/// or a terminator the engine stops at. Both carry the opposite cycle bit, so
/// the engine never runs past the run into stale slots.
pub(crate) fn tail_control(cycle: bool, link: bool) -> u32 {
    let cb = if cycle { 0 } else { CTRL_CB };
    cb | if link { CTRL_LLP | CTRL_TCB } else { 0 }
}

/// Words 1..4 of the ring's link element (reserved, next list address low
/// and high): written once per ring, its control word (word 0) at each lap.
pub(crate) fn link_words(area: u64) -> [u32; 3] {
    let a = Halves::of(area);
    [0, a.lo.to_le(), a.hi.to_le()]
}

/// One slot as read back from L2 (debugfs), decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Element {
    Data {
        control: u32,
        size: u32,
        sar: u64,
        dar: u64,
    },
    Link {
        control: u32,
        next: u64,
    },
}

impl Element {
    pub(crate) fn decode(words: &[u32; ELEMENT_WORDS]) -> Self {
        let [control, size, a_lo, a_hi, b_lo, b_hi] = words.map(u32::from_le);
        let a = Halves { lo: a_lo, hi: a_hi }.join();
        if control & CTRL_LLP != 0 {
            Self::Link { control, next: a }
        } else {
            Self::Data {
                control,
                size,
                sar: a,
                dar: Halves { lo: b_lo, hi: b_hi }.join(),
            }
        }
    }
}

impl core::fmt::Display for Element {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let bit = |c: u32, b: u32| u8::from(c & b != 0);
        match *self {
            Self::Data {
                control,
                size,
                sar,
                dar,
            } => write!(
                f,
                "data cb={} lie={} rie={} size={} sar={:#x} dar={:#x}",
                bit(control, CTRL_CB),
                bit(control, CTRL_LIE),
                bit(control, CTRL_RIE),
                size,
                sar,
                dar
            ),
            Self::Link { control, next } => write!(
                f,
                "link cb={} tcb={} next={:#x}",
                bit(control, CTRL_CB),
                bit(control, CTRL_TCB),
                next
            ),
        }
    }
}

#[cfg(metis_kunit)]
#[kernel::prelude::kunit_tests(metis_ll)]
mod tests {
    use super::*;

    fn seg(addr: u64, len: u32, dev: u64) -> Segment {
        Segment { addr, len, dev }
    }

    #[test]
    fn read_run_layout() -> Result {
        let mut w = [0u32; 2 * ELEMENT_WORDS];
        let segs = [
            seg(0x1_0000_1000, 0x800, 0x2000_0000),
            seg(0x2000, 0x100, 0x2000_0800),
        ];
        let n = build_elements(&mut w, &segs, Dir::Rd, true, CTRL_LIE | CTRL_RIE)?;
        assert_eq!(n, 2);
        // First element: CB only, host source, device destination.
        assert_eq!(&w[0..6], &[CTRL_CB, 0x800, 0x1000, 0x1, 0x2000_0000, 0]);
        // Last data element raises the interrupt.
        assert_eq!(
            &w[6..12],
            &[
                CTRL_CB | CTRL_LIE | CTRL_RIE,
                0x100,
                0x2000,
                0,
                0x2000_0800,
                0
            ]
        );
        Ok(())
    }

    #[test]
    fn batch_segments_keep_their_own_device_addresses() -> Result {
        // Two jobs of a batch: device ranges apart, and the second one's below the first.
        let mut w = [0u32; 2 * ELEMENT_WORDS];
        let segs = [seg(0x1000, 0x40, 0x9000), seg(0x5000, 0x80, 0x100)];
        build_elements(&mut w, &segs, Dir::Wr, true, CTRL_LIE)?;
        assert_eq!(&w[0..6], &[CTRL_CB, 0x40, 0x9000, 0, 0x1000, 0]);
        assert_eq!(&w[6..12], &[CTRL_CB | CTRL_LIE, 0x80, 0x100, 0, 0x5000, 0]);
        Ok(())
    }

    #[test]
    fn write_run_swaps_addresses_and_cycle() -> Result {
        let mut w = [0u32; ELEMENT_WORDS];
        let n = build_elements(&mut w, &[seg(0xabc0, 4, 0x100)], Dir::Wr, false, CTRL_LIE)?;
        assert_eq!(n, 1);
        assert_eq!(&w[0..6], &[CTRL_LIE, 4, 0x100, 0, 0xabc0, 0]);
        Ok(())
    }

    #[test]
    fn tails_carry_the_opposite_cycle_bit() {
        assert_eq!(tail_control(true, true), CTRL_LLP | CTRL_TCB);
        assert_eq!(tail_control(false, true), CTRL_LLP | CTRL_TCB | CTRL_CB);
        // A terminator is a data slot the engine does not own: no interrupt, no link.
        assert_eq!(tail_control(true, false), 0);
        assert_eq!(tail_control(false, false), CTRL_CB);
    }

    #[test]
    fn elements_decode_as_built() -> Result {
        let mut w = [0u32; 2 * ELEMENT_WORDS];
        build_elements(
            &mut w,
            &[seg(0x1_0000_1000, 0x800, 0x2000_0000)],
            Dir::Rd,
            true,
            CTRL_LIE,
        )?;
        w[ELEMENT_WORDS] = tail_control(true, true);
        for (i, v) in link_words(0x4_0000).into_iter().enumerate() {
            w[ELEMENT_WORDS + 1 + i] = v;
        }
        let first: [u32; ELEMENT_WORDS] = core::array::from_fn(|i| w[i]);
        let link: [u32; ELEMENT_WORDS] = core::array::from_fn(|i| w[ELEMENT_WORDS + i]);
        assert_eq!(
            Element::decode(&first),
            Element::Data {
                control: CTRL_CB | CTRL_LIE,
                size: 0x800,
                sar: 0x1_0000_1000,
                dar: 0x2000_0000
            }
        );
        assert_eq!(
            Element::decode(&link),
            Element::Link {
                control: CTRL_LLP | CTRL_TCB,
                next: 0x4_0000
            }
        );
        Ok(())
    }

    #[test]
    fn rejects_bad_input() {
        let mut w = [0u32; ELEMENT_WORDS];
        // No room for a second element.
        assert_eq!(
            build_elements(&mut w, &[seg(0, 4, 0), seg(8, 4, 4)], Dir::Rd, true, 0),
            Err(EINVAL)
        );
        assert_eq!(
            build_elements(&mut w, &[seg(0, 4, u64::MAX - 2)], Dir::Rd, true, 0),
            Err(EOVERFLOW)
        );
        assert_eq!(
            build_elements(&mut w, &[seg(0, 0, 0)], Dir::Rd, true, 0),
            Err(EINVAL)
        );
    }
}
