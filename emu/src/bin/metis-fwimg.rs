//! `metis-fwimg`: builds (valid or deliberately broken) Metis firmware images
//! and prints image headers.

use metis_emu::fw_image::{self, Break, BuildSpec, Header, HEADER_SIZE};
use metis_emu::options::{parse_size, parse_u64};
use std::process::exit;

const USAGE: &str = "usage:
  metis-fwimg build --out FILE [--if-major N] [--if-minor N] [--fw MAJ.MIN.PATCH]
                    [--payload-size SIZE] [--seed N] [--load-addr ADDR (default 0x101000000)]
                    [--break bad-magic|bad-header-crc|bad-payload-crc|truncated|oversize|bad-if-major|bad-load-addr]
  metis-fwimg info FILE";

fn parse_fw(s: &str) -> Result<(u8, u8, u16), String> {
    let p: Vec<&str> = s.split('.').collect();
    if p.len() != 3 {
        return Err(format!("--fw '{s}': expected MAJOR.MINOR.PATCH"));
    }
    let e = |_| format!("--fw '{s}': bad number");
    Ok((
        p[0].parse().map_err(e)?,
        p[1].parse().map_err(e)?,
        p[2].parse().map_err(e)?,
    ))
}

fn build(args: &[String]) -> Result<(), String> {
    let mut spec = BuildSpec::default();
    let mut out = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{a} needs a value"))
        };
        match a.as_str() {
            "--out" => out = Some(val()?),
            "--if-major" => spec.if_major = parse_u64(&val()?)? as u16,
            "--if-minor" => spec.if_minor = parse_u64(&val()?)? as u16,
            "--fw" => spec.fw = parse_fw(&val()?)?,
            "--payload-size" => {
                let n = parse_size(&val()?)?;
                spec.payload_size = u32::try_from(n).map_err(|_| "--payload-size too large")?;
            }
            "--seed" => spec.seed = parse_u64(&val()?)?,
            "--load-addr" => spec.load_addr = parse_u64(&val()?)?,
            "--break" => spec.brk = Some(val()?.parse::<Break>()?),
            _ => return Err(format!("unknown argument '{a}'")),
        }
    }
    let out = out.ok_or("--out is required")?;
    let img = fw_image::build(&spec);
    std::fs::write(&out, &img).map_err(|e| format!("{out}: {e}"))?;
    eprintln!("metis-fwimg: wrote {out} ({} bytes)", img.len());
    Ok(())
}

fn info(args: &[String]) -> Result<(), String> {
    let f = args.first().ok_or("info needs a FILE")?;
    let b = std::fs::read(f).map_err(|e| format!("{f}: {e}"))?;
    if b.len() < HEADER_SIZE {
        return Err(format!("{f}: shorter than a header"));
    }
    let h = Header::parse(b[..HEADER_SIZE].try_into().unwrap());
    let payload = &b[HEADER_SIZE..];
    println!(
        "{}",
        serde_json::json!({
            "file_size": b.len(),
            "magic": format!("{:#x}", h.magic),
            "magic_ok": h.magic == fw_image::MAGIC,
            "header_version": h.header_version,
            "header_size": h.header_size,
            "if_version": format!("{}.{}", h.if_major, h.if_minor),
            "fw_version": format!("{}.{}.{}", h.fw_major, h.fw_minor, h.fw_patch),
            "payload_size": h.payload_size,
            "flags": h.flags,
            "load_addr": format!("{:#x}", h.load_addr),
            "payload_crc": format!("{:#x}", h.payload_crc),
            "payload_crc_ok": payload.len() >= h.payload_size as usize
                && fw_image::crc32(&payload[..h.payload_size as usize]) == h.payload_crc,
            "header_crc_ok": h.header_crc == fw_image::crc32(&b[..fw_image::HEADER_CRC_SPAN]),
        })
    );
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.first().map(String::as_str) {
        Some("build") => build(&args[1..]),
        Some("info") => info(&args[1..]),
        Some("-h") | Some("--help") => {
            println!("{USAGE}");
            return;
        }
        _ => Err(USAGE.to_string()),
    };
    if let Err(e) = r {
        eprintln!("metis-fwimg: {e}");
        exit(2);
    }
}
