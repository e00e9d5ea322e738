//! `metisctl stats`: each card's per-channel DMA totals since probe, from
//! debugfs (root only).

use crate::cards::label;
use crate::table::{format_table, Align};
use metis::debugfs::{engine_name, ChannelStats};
use metis::sysfs::Card;
use serde_json::{json, Value};

const HEADERS: [(&str, Align); 11] = [
    ("dir", Align::Left),
    ("ch", Align::Right),
    ("jobs", Align::Right),
    ("bytes", Align::Right),
    ("errors", Align::Right),
    ("timeouts", Align::Right),
    ("interrupted", Align::Right),
    ("aborted", Align::Right),
    ("lost_irqs", Align::Right),
    ("max_us", Align::Right),
    ("mean_us", Align::Right),
];

/// One card: a heading, then a table with a row per channel.
pub fn text(card: &Card, channels: &[ChannelStats]) -> String {
    let rows: Vec<Vec<String>> = channels
        .iter()
        .map(|c| {
            vec![
                engine_name(c.dir).to_string(),
                c.channel.to_string(),
                c.jobs.to_string(),
                c.bytes.to_string(),
                c.errors.to_string(),
                c.timeouts.to_string(),
                c.interrupted.to_string(),
                c.aborted.to_string(),
                c.lost_irqs.to_string(),
                c.max_us.to_string(),
                c.mean_us.to_string(),
            ]
        })
        .collect();
    format!(
        "{}: DMA channels since probe (wr: device to host, rd: host to device)\n{}",
        label(card),
        format_table(&HEADERS, &rows)
    )
}

/// Every card, separated by an empty line.
pub fn text_all(cards: &[(Card, Vec<ChannelStats>)]) -> String {
    cards
        .iter()
        .map(|(c, s)| text(c, s))
        .collect::<Vec<_>>()
        .join("\n")
}

/// One channel as JSON.
pub fn channel_json(c: &ChannelStats) -> Value {
    json!({
        "dir": engine_name(c.dir),
        "channel": c.channel,
        "jobs": c.jobs,
        "bytes": c.bytes,
        "errors": c.errors,
        "timeouts": c.timeouts,
        "interrupted": c.interrupted,
        "aborted": c.aborted,
        "lost_irqs": c.lost_irqs,
        "max_us": c.max_us,
        "mean_us": c.mean_us,
    })
}

/// Every card: `[{"bdf", "node", "channels": [...]}]`.
pub fn to_json_all(cards: &[(Card, Vec<ChannelStats>)]) -> Value {
    Value::Array(
        cards
            .iter()
            .map(|(c, s)| {
                json!({
                    "bdf": c.bdf,
                    "node": c.node_path().map(|p| p.display().to_string()),
                    "channels": s.iter().map(channel_json).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use metis::Direction;
    use std::path::PathBuf;

    fn sample() -> (Card, Vec<ChannelStats>) {
        let ch = |dir, channel, jobs, bytes| ChannelStats {
            dir,
            channel,
            jobs,
            bytes,
            errors: 0,
            timeouts: 1,
            interrupted: 0,
            aborted: 0,
            lost_irqs: 2,
            max_us: 150,
            mean_us: 40,
        };
        (
            Card {
                bdf: "0000:01:00.0".into(),
                dir: PathBuf::from("/sys/bus/pci/devices/0000:01:00.0"),
                node: Some("metis0".into()),
            },
            vec![
                ch(Direction::FromDevice, 0, 12, 49152),
                ch(Direction::ToDevice, 0, 3, 4096),
            ],
        )
    }

    #[test]
    fn table_per_card() {
        let (c, s) = sample();
        assert_eq!(
            text(&c, &s),
            "\
0000:01:00.0 (/dev/metis0): DMA channels since probe (wr: device to host, rd: host to device)
dir  ch  jobs  bytes  errors  timeouts  interrupted  aborted  lost_irqs  max_us  mean_us
---  --  ----  -----  ------  --------  -----------  -------  ---------  ------  -------
wr    0    12  49152       0         1            0        0          2     150       40
rd    0     3   4096       0         1            0        0          2     150       40
"
        );
        let all = text_all(&[sample(), sample()]);
        assert_eq!(all.matches("DMA channels since probe").count(), 2);
        assert!(all.contains("40\n\n0000:01:00.0"), "{all}");
    }

    #[test]
    fn json_per_card() {
        let j = to_json_all(&[sample()]);
        assert_eq!(j[0]["bdf"], "0000:01:00.0");
        assert_eq!(j[0]["node"], "/dev/metis0");
        let ch = &j[0]["channels"];
        assert_eq!(ch.as_array().unwrap().len(), 2);
        assert_eq!(ch[0]["dir"], "wr");
        assert_eq!(ch[1]["dir"], "rd");
        assert_eq!(ch[0]["bytes"], 49152);
        assert_eq!(ch[0]["lost_irqs"], 2);
        assert_eq!(ch[0].as_object().unwrap().len(), 11);
    }
}
