//! `metisctl status`: every card's sysfs attributes, one block per card.
//! Needs neither root nor the device node, so it also works while another
//! process holds the card or the node's permissions keep the user out.

use crate::size::format_human;
use crate::table::format_pairs;
use metis::sysfs::{Card, Status};
use serde_json::{json, Value};

/// The node as printed: `/dev/metisN`, or `none`.
fn node_text(card: &Card) -> String {
    card.node_path()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "none".into())
}

fn bytes(n: u64) -> String {
    format!("{n} ({})", format_human(n))
}

/// One card as `key value` lines, the attributes in the driver's order.
pub fn text(card: &Card, s: &Status) -> String {
    format_pairs(&[
        ("bdf", card.bdf.clone()),
        ("node", node_text(card)),
        ("driver_version", s.driver_version.clone()),
        ("firmware_version", s.firmware_version.clone()),
        ("interface_version", s.interface_version.clone()),
        ("firmware_state", s.firmware_state.clone()),
        ("firmware_owner", s.firmware_owner.clone()),
        ("irq_mode", s.irq_mode.clone()),
        ("irq_vectors", s.irq_vectors.to_string()),
        ("iommu_mode", s.iommu_mode.clone()),
        ("reset_count", s.reset_count.to_string()),
        ("last_reset_reason", s.last_reset_reason.clone()),
        ("mem_size", bytes(s.mem_size)),
        ("mem_free", bytes(s.mem_free)),
        ("bytes_to_device", bytes(s.bytes_to_device)),
        ("bytes_from_device", bytes(s.bytes_from_device)),
        (
            "dma_channels",
            format!(
                "{} wr (device to host), {} rd (host to device)",
                s.wr_channels, s.rd_channels
            ),
        ),
    ])
}

/// Every card's block, separated by an empty line.
pub fn text_all(cards: &[(Card, Status)]) -> String {
    cards
        .iter()
        .map(|(c, s)| text(c, s))
        .collect::<Vec<_>>()
        .join("\n")
}

/// One card as a JSON object: the attribute names as keys, numbers as
/// numbers, text verbatim (`none` included); `node` is null without a node.
pub fn to_json(card: &Card, s: &Status) -> Value {
    json!({
        "bdf": card.bdf,
        "node": card.node_path().map(|p| p.display().to_string()),
        "driver_version": s.driver_version,
        "firmware_version": s.firmware_version,
        "interface_version": s.interface_version,
        "firmware_state": s.firmware_state,
        "firmware_owner": s.firmware_owner,
        "irq_mode": s.irq_mode,
        "irq_vectors": s.irq_vectors,
        "iommu_mode": s.iommu_mode,
        "reset_count": s.reset_count,
        "last_reset_reason": s.last_reset_reason,
        "mem_size": s.mem_size,
        "mem_free": s.mem_free,
        "bytes_to_device": s.bytes_to_device,
        "bytes_from_device": s.bytes_from_device,
        "dma_channels": { "wr": s.wr_channels, "rd": s.rd_channels },
    })
}

/// Every card: a JSON array.
pub fn to_json_all(cards: &[(Card, Status)]) -> Value {
    Value::Array(cards.iter().map(|(c, s)| to_json(c, s)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn sample() -> (Card, Status) {
        let card = Card {
            bdf: "0000:01:00.0".into(),
            dir: PathBuf::from("/sys/bus/pci/devices/0000:01:00.0"),
            node: Some("metis0".into()),
        };
        let s = Status {
            driver_version: "0.1.0".into(),
            firmware_version: "1.2.3".into(),
            interface_version: "1.0".into(),
            firmware_state: "ready".into(),
            firmware_owner: "kernel".into(),
            irq_mode: "msi".into(),
            irq_vectors: 13,
            iommu_mode: "none".into(),
            reset_count: 1,
            last_reset_reason: "recovery: DMA timeout".into(),
            mem_size: 1 << 30,
            mem_free: 1 << 29,
            bytes_to_device: 4096,
            bytes_from_device: 100,
            wr_channels: 4,
            rd_channels: 2,
        };
        (card, s)
    }

    #[test]
    fn text_block_is_aligned_and_complete() {
        let (c, s) = sample();
        assert_eq!(
            text(&c, &s),
            "\
bdf                0000:01:00.0
node               /dev/metis0
driver_version     0.1.0
firmware_version   1.2.3
interface_version  1.0
firmware_state     ready
firmware_owner     kernel
irq_mode           msi
irq_vectors        13
iommu_mode         none
reset_count        1
last_reset_reason  recovery: DMA timeout
mem_size           1073741824 (1.00 GiB)
mem_free           536870912 (512.00 MiB)
bytes_to_device    4096 (4.00 KiB)
bytes_from_device  100 (100 B)
dma_channels       4 wr (device to host), 2 rd (host to device)
"
        );
        let nodeless = Card { node: None, ..c };
        assert!(text(&nodeless, &s).contains("\nnode               none\n"));
        let two = text_all(&[sample(), sample()]);
        assert_eq!(two.matches("bdf ").count(), 2);
        assert!(two.contains("(host to device)\n\nbdf "), "{two}");
    }

    #[test]
    fn json_keeps_numbers_numbers() {
        let (c, s) = sample();
        let j = to_json(&c, &s);
        assert_eq!(j.as_object().unwrap().len(), 17);
        assert_eq!(j["bdf"], "0000:01:00.0");
        assert_eq!(j["node"], "/dev/metis0");
        assert_eq!(j["mem_size"], 1u64 << 30);
        assert_eq!(j["irq_vectors"], 13);
        assert_eq!(j["reset_count"], 1);
        assert_eq!(j["dma_channels"], json!({"wr": 4, "rd": 2}));
        assert_eq!(j["last_reset_reason"], "recovery: DMA timeout");
        assert_eq!(j["firmware_version"], "1.2.3");
        let j = to_json(&Card { node: None, ..c }, &s);
        assert!(j["node"].is_null());
        assert_eq!(to_json_all(&[sample()]).as_array().unwrap().len(), 1);
    }
}
