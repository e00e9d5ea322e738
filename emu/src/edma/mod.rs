//! DesignWare eDMA v0, unrolled register map (dw-edma-and-peers.md §1.3-1.8).

pub mod engine;
pub mod ll;
pub mod regs;
pub mod worker;

pub use regs::Edma;

/// Channel direction in eDMA terms, seen from the card.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Write channels: device memory -> host (SAR device, DAR host).
    Wr = 0,
    /// Read channels: host -> device memory (SAR host, DAR device).
    Rd = 1,
}

impl Dir {
    pub fn name(self) -> &'static str {
        match self {
            Dir::Wr => "wr",
            Dir::Rd => "rd",
        }
    }
    pub fn parse(s: &str) -> Option<Dir> {
        match s {
            "wr" => Some(Dir::Wr),
            "rd" => Some(Dir::Rd),
            _ => None,
        }
    }
}
