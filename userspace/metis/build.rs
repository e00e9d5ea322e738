//! Generates the Rust ABI of the metis driver from `uapi/linux/metis.h`.
//!
//! Two things come out of the header, both written to `OUT_DIR`:
//!
//! * `bindings.rs`: bindgen's translation of every `metis_*` struct and enum
//!   and every `METIS_*` object-like macro, with bindgen's layout asserts.
//! * The ioctl request numbers. bindgen cannot translate function-like macros
//!   such as `_IOWR(...)`, so the build wraps every `#define METIS_IOCTL_X
//!   _IO...(...)` line of the header into a C enumerator
//!   (`__metis_req_METIS_IOCTL_X = METIS_IOCTL_X`). clang evaluates it with the
//!   target's own `<asm/ioctl.h>` and struct layout, and bindgen emits the
//!   value. `src/sys.rs` cross-checks these numbers at compile time against
//!   the generic Linux encoding computed in Rust from the struct sizes.
//!
//! Environment:
//! * `METIS_UAPI_HEADER`: path of `metis.h` (default: `../../uapi/linux/metis.h`
//!   relative to this crate).
//! * `LIBCLANG_PATH`: where libclang lives, as usual for bindgen.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;

fn main() {
    if let Err(e) = run() {
        eprintln!("metis build script: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let out = PathBuf::from(env::var("OUT_DIR").map_err(|e| e.to_string())?);

    println!("cargo:rerun-if-env-changed=METIS_UAPI_HEADER");
    let header = match env::var_os("METIS_UAPI_HEADER") {
        Some(p) => PathBuf::from(p),
        None => manifest.join("../../uapi/linux/metis.h"),
    };
    let header = header
        .canonicalize()
        .map_err(|e| format!("cannot find the uapi header {}: {e}", header.display()))?;
    println!("cargo:rerun-if-changed={}", header.display());
    println!(
        "cargo:rustc-env=METIS_UAPI_HEADER_PATH={}",
        header.display()
    );

    let text = fs::read_to_string(&header)
        .map_err(|e| format!("cannot read {}: {e}", header.display()))?;
    let requests = ioctl_macros(&text);
    if requests.is_empty() {
        return Err(format!(
            "no METIS_IOCTL_* request macros in {}",
            header.display()
        ));
    }

    // The wrapper includes the header by absolute path, so the system's
    // <linux/ioctl.h> and <linux/types.h> are what it pulls in, then turns the
    // request macros into enumerators clang has to evaluate.
    let mut wrapper = String::new();
    let _ = writeln!(wrapper, "#include \"{}\"", header.display());
    wrapper.push_str("enum __metis_ioctl_requests {\n");
    for name in &requests {
        let _ = writeln!(wrapper, "\t__metis_req_{name} = {name},");
    }
    wrapper.push_str("};\n");
    let wrapper_path = out.join("metis_wrapper.h");
    fs::write(&wrapper_path, &wrapper)
        .map_err(|e| format!("cannot write {}: {e}", wrapper_path.display()))?;

    let bindings = bindgen::Builder::default()
        .header(wrapper_path.to_string_lossy())
        .allowlist_type("metis_.*")
        .allowlist_var("METIS_.*")
        .allowlist_var("__metis_req_.*")
        .allowlist_type("__metis_ioctl_requests")
        .prepend_enum_name(false)
        .derive_default(true)
        .derive_debug(true)
        .derive_copy(true)
        .derive_eq(true)
        .derive_hash(false)
        .impl_debug(true)
        .layout_tests(true)
        .generate_comments(true)
        .use_core()
        .ctypes_prefix("::core::ffi")
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .map_err(|e| format!("bindgen failed on {}: {e}", header.display()))?;
    bindings
        .write_to_file(out.join("bindings.rs"))
        .map_err(|e| format!("cannot write bindings: {e}"))?;

    // The list of request macros, for the tests and for `sys::ALL_IOCTLS`.
    let mut list = String::from(
        "/// Every ioctl request macro of the header: (name, value clang computed).\n\
         pub const ALL_IOCTLS: &[(&str, u32)] = &[\n",
    );
    for name in &requests {
        let _ = writeln!(list, "    (\"{name}\", __metis_req_{name} as u32),");
    }
    list.push_str("];\n");
    fs::write(out.join("ioctl_list.rs"), list)
        .map_err(|e| format!("cannot write ioctl list: {e}"))?;
    Ok(())
}

/// Names of the `#define METIS_IOCTL_X _IO*(...)` request macros in `text`.
fn ioctl_macros(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| {
            let rest = line.trim_start().strip_prefix('#')?.trim_start();
            let rest = rest.strip_prefix("define")?;
            let mut it = rest.split_whitespace();
            let name = it.next()?;
            let body = it.next()?;
            let is_request = name.starts_with("METIS_IOCTL_")
                && !name.contains('(')
                && ["_IO(", "_IOR(", "_IOW(", "_IOWR("]
                    .iter()
                    .any(|m| body.starts_with(m));
            is_request.then(|| name.to_string())
        })
        .collect()
}
