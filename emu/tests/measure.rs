//! Measurement: per-channel counters, MMIO by class and width, the
//! persistent walker per channel, and the `snapshot`, `mark`, `link` and
//! `quiet` control commands a benchmark brackets its cells with.

mod common;
use common::*;
use metis_emu::control::handle;
use metis_emu::dma::memfd;
use metis_emu::edma::ll::*;
use metis_emu::edma::regs::*;
use metis_emu::edma::Dir;
use std::time::Duration;

/// One write-channel job of one element that interrupts, on channel `ch`.
fn job(r: &Rig, ch: usize, len: u32, host: u64) {
    let list = LL_WR + 0x1000 * ch as u64;
    // Each job is a fresh list from slot 0 with CCS 1; the element after it
    // has CB 0 and ends the walk.
    assert!(r.dev.mem_write(
        list,
        &Element::data(CTRL_CB | CTRL_LIE | CTRL_RIE, len, DEV_DATA, host)
    ));
    assert!(r.dev.mem_write(list + 24, &[0u8; 24]));
    r.setup_channel(Dir::Wr, ch, 8 + ch as u32, list);
    r.doorbell(Dir::Wr, ch);
    wait_until("job done", || r.int_status(Dir::Wr) & done_bit(ch) != 0);
    r.wait_stopped(Dir::Wr, ch);
    r.ew(INT_CLEAR.at(Dir::Wr), done_bit(ch));
}

fn n(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn a_channel_keeps_one_walker_across_jobs() {
    let mut r = Rig::metis();
    r.enable_msi(32);
    for _ in 0..20 {
        job(&r, 1, 4096, IOVA + 0x20_0000);
    }
    let sh = r.dev.shared();
    assert_eq!(sh.workers.started(Dir::Wr, 1), 1);
    assert_eq!(sh.workers.started(Dir::Wr, 0), 0);
    let s = handle(&r.dev, "snapshot");
    let c = &s["channels"]["wr1"];
    assert_eq!(n(&c["doorbells"]), 20);
    assert_eq!(n(&c["runs"]), 20);
    assert_eq!(n(&c["elements"]), 20);
    assert_eq!(n(&c["bytes"]), 20 * 4096);
    // The element and the empty one after it, per job.
    assert_eq!(n(&c["list_bytes"]), 20 * 48);
    assert!(n(&c["busy_ns"]) > 0);
    // An idle walker ends, and the next doorbell starts one again.
    std::thread::sleep(metis_emu::edma::worker::IDLE_EXIT + Duration::from_millis(500));
    job(&r, 1, 4096, IOVA + 0x20_0000);
    assert_eq!(sh.workers.started(Dir::Wr, 1), 2);
    assert_eq!(r.dev.total_faults(), 0);
}

#[test]
fn mmio_is_counted_by_class_and_width() {
    let r = Rig::metis();
    let before = handle(&r.dev, "snapshot");
    r.er(INT_STATUS.at(Dir::Wr));
    r.ew(INT_CLEAR.at(Dir::Wr), 0);
    r.ew(INT_CLEAR.at(Dir::Rd), 0);
    r.dev.mmio_read(2, 0x100, 8);
    r.dev.mmio_write(2, 0x100, 2, 7);
    let s = handle(&r.dev, "snapshot");
    let e = &s["mmio_classes"]["edma"];
    assert_eq!((n(&e["reads"]), n(&e["writes"])), (1, 2));
    assert_eq!(n(&e["widths"]["4"]), 3);
    let b = &s["mmio_classes"]["bar2"];
    assert_eq!((n(&b["reads"]), n(&b["writes"])), (1, 1));
    assert_eq!((n(&b["widths"]["8"]), n(&b["widths"]["2"])), (1, 1));
    // A snapshot resets nothing and moves the card's clock on.
    assert!(n(&s["t_ns"]) > n(&before["t_ns"]));
    let again = handle(&r.dev, "snapshot");
    assert_eq!(again["mmio_classes"], s["mmio_classes"]);
}

#[test]
fn the_link_can_be_slowed_at_run_time() {
    let mut r = Rig::metis();
    r.enable_msi(32);
    let v = handle(&r.dev, "link unlimited");
    assert_eq!(v["ok"], true, "{v}");
    job(&r, 0, 1 << 20, IOVA + 0x40_0000);
    let s = handle(&r.dev, "snapshot");
    assert_eq!(s["link"]["spec"], "unlimited");
    assert_eq!(n(&s["link"]["wire_ns"]["upstream"]), 0);
    assert_eq!(handle(&r.dev, "link gen1x1")["was"], "unlimited");
    let t = std::time::Instant::now();
    job(&r, 0, 1 << 20, IOVA + 0x40_0000);
    // 1 MiB upstream at Gen1 x1: 4.6 ms of wire, which the job cannot beat.
    assert!(
        t.elapsed() >= Duration::from_micros(4500),
        "{:?}",
        t.elapsed()
    );
    let s = handle(&r.dev, "snapshot");
    assert_eq!(s["link"]["spec"], "gen1x1");
    let wire = n(&s["link"]["wire_ns"]["upstream"]);
    assert!((4_500_000..4_700_000).contains(&wire), "{wire}");
    assert_eq!(n(&s["link"]["wire_ns"]["downstream"]), 0);
    let pps = s["link"]["payload_bytes_per_sec"].as_f64().unwrap();
    assert!((pps - 250e6 * 256.0 / 280.0).abs() < 1.0, "{pps}");
    assert_eq!(handle(&r.dev, "link gen9x1")["ok"], false);
    assert_eq!(handle(&r.dev, "link")["ok"], false);
    // reset-stats zeroes the booked wire time with the counters.
    handle(&r.dev, "reset-stats");
    assert_eq!(
        n(&handle(&r.dev, "snapshot")["link"]["wire_ns"]["upstream"]),
        0
    );
}

#[test]
fn marks_tag_the_log_and_quiet_keeps_per_access_events_out() {
    let r = Rig::metis();
    let m = handle(&r.dev, "mark cell 4K to qd1");
    assert_eq!(m["ok"], true);
    let marks = r.events_of("mark");
    assert_eq!(marks.len(), 1);
    assert_eq!(marks[0]["label"], "cell 4K to qd1");
    assert_eq!(marks[0]["seq"], m["seq"]);
    assert_eq!(handle(&r.dev, "mark")["ok"], false);

    let maps = |r: &Rig| r.events_of("dma_map").len();
    let before = maps(&r);
    assert_eq!(handle(&r.dev, "quiet on")["quiet"], true);
    let page = memfd(4096).unwrap();
    r.dev
        .dma_map(true, true, 0, 0x1_0000_0000, 4096, Some(page))
        .unwrap();
    assert_eq!(maps(&r), before, "a quiet card logs no DMA map");
    let s = handle(&r.dev, "snapshot");
    assert_eq!(s["quiet"], true);
    // The counters go on: a map and its bytes.
    assert_eq!(n(&s["dma_maps"]), 2);
    assert_eq!(n(&s["dma_map_bytes"]), GUEST_SIZE + 4096);
    handle(&r.dev, "quiet off");
    r.dev.dma_unmap(0x1_0000_0000, 4096, false);
    assert_eq!(r.events_of("dma_unmap").len(), 1);
    assert_eq!(n(&handle(&r.dev, "snapshot")["dma_unmap_bytes"]), 4096);
    assert_eq!(handle(&r.dev, "quiet maybe")["ok"], false);
}
