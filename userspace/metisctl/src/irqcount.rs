//! Interrupts a card has taken so far, from `/proc/interrupts` and the
//! card's PCI device in sysfs: what the benchmark divides by its jobs.

use std::path::Path;

/// The interrupt numbers of the PCI device at `pci_dir`: its MSI/MSI-X
/// vectors (`msi_irqs/`), or its INTx line (`irq`) when it has none.
pub fn card_irqs(pci_dir: &Path) -> Vec<u32> {
    let mut v: Vec<u32> = std::fs::read_dir(pci_dir.join("msi_irqs"))
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    if v.is_empty() {
        if let Some(n) = std::fs::read_to_string(pci_dir.join("irq"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .filter(|n| *n != 0)
        {
            v.push(n);
        }
    }
    v.sort_unstable();
    v
}

/// The sum over every CPU of the counts of `irqs` in a `/proc/interrupts` text.
pub fn count(proc_interrupts: &str, irqs: &[u32]) -> u64 {
    let mut lines = proc_interrupts.lines();
    let cpus = lines
        .next()
        .map(|h| h.split_whitespace().count())
        .unwrap_or(0);
    lines
        .filter_map(|l| {
            let (num, rest) = l.trim_start().split_once(':')?;
            let n: u32 = num.parse().ok()?;
            irqs.contains(&n).then(|| {
                rest.split_whitespace()
                    .take(cpus)
                    .filter_map(|c| c.parse::<u64>().ok())
                    .sum::<u64>()
            })
        })
        .sum()
}

/// Interrupts taken so far by the card whose PCI device is `pci_dir`;
/// `None` when its interrupts cannot be found (polling, no sysfs).
pub fn taken(pci_dir: &Path) -> Option<u64> {
    let irqs = card_irqs(pci_dir);
    if irqs.is_empty() {
        return None;
    }
    let text = std::fs::read_to_string("/proc/interrupts").ok()?;
    Some(count(&text, &irqs))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "           CPU0       CPU1
  0:         45          0   IO-APIC   2-edge      timer
 24:        100         23   PCI-MSI 524288-edge      metis
 25:          7          0   PCI-MSI 524289-edge      metis
 26:          5          5   PCI-MSI 1048576-edge      nvme0q0
NMI:          0          0   Non-maskable interrupts
";

    #[test]
    fn sums_the_cards_vectors_over_cpus() {
        assert_eq!(count(SAMPLE, &[24]), 123);
        assert_eq!(count(SAMPLE, &[24, 25]), 130);
        assert_eq!(count(SAMPLE, &[27]), 0);
        // Named lines (NMI) and other devices do not count.
        assert_eq!(count(SAMPLE, &[]), 0);
    }

    #[test]
    fn vectors_from_msi_irqs_else_the_intx_line() {
        let d = std::env::temp_dir().join(format!("metisctl-irq-{}", std::process::id()));
        std::fs::create_dir_all(d.join("msi_irqs")).unwrap();
        std::fs::write(d.join("irq"), "11\n").unwrap();
        assert_eq!(card_irqs(&d), vec![11]);
        std::fs::write(d.join("msi_irqs/25"), "msi\n").unwrap();
        std::fs::write(d.join("msi_irqs/24"), "msi\n").unwrap();
        assert_eq!(card_irqs(&d), vec![24, 25]);
        std::fs::remove_dir_all(&d).unwrap();
        assert!(card_irqs(&d).is_empty());
    }
}
