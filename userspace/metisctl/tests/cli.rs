//! Runs the metisctl binary: exit codes and messages that need no device.

use std::process::{Command, Output};

fn metisctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_metisctl"))
        .args(args)
        .env_remove("METIS_DEVICE")
        .output()
        .expect("run metisctl")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn help_exits_zero() {
    let o = metisctl(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8_lossy(&o.stdout);
    for sub in ["info", "fw", "dma", "cmd", "reset", "--device", "--json"] {
        assert!(out.contains(sub), "{sub} missing from help:\n{out}");
    }
    let o = metisctl(&["fw", "load", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("METIS_RESET_RELOAD_FIRMWARE"));
}

#[test]
fn usage_errors_exit_two() {
    for args in [
        &["dma", "bench", "--sizes", "4Q"][..],
        &["dma", "bench", "--sizes", "2G"],
        &["bogus"],
        &[],
    ] {
        let o = metisctl(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn missing_device_exits_one_with_errno() {
    let o = metisctl(&["--device", "/nonexistent/metis7", "info"]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("/nonexistent/metis7") && e.contains("ENOENT"),
        "{e}"
    );
}

#[test]
fn foreign_device_exits_one_with_enotty() {
    let o = metisctl(&["--device", "/dev/null", "--json", "info"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("ENOTTY"), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
}

#[test]
fn dmabuf_is_reported_unsupported() {
    let o = metisctl(&["--device", "/dev/null", "dma", "bench", "--dmabuf"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("not supported by this driver version"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn fw_changed_is_documented_and_reaches_the_driver() {
    let o = metisctl(&["fw", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("changed") && out.contains("runtime-owned card"),
        "{out}"
    );
    let o = metisctl(&["fw", "changed", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("re-reads the firmware's areas and registers its interrupt table"),
        "{out}"
    );
    // /dev/null is no metis device: the ioctl itself is what fails.
    let o = metisctl(&["--device", "/dev/null", "fw", "changed"]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("firmware change failed: ENOTTY"), "{e}");
    assert!(o.stdout.is_empty());
}
