//! The bytes `qemu-img convert` makes up, made from the build instead.
//!
//! qemu-img stamps each new vmdk, vhd and vhdx with random identifiers and
//! the clock: the vmdk descriptor's `CID`; the vhd footer's time stamp and
//! UUID; the vhdx headers' sequence numbers, file- and data-write GUIDs, its virtual disk id
//! (page 83 data) and the GUID of the log entries it wrote while
//! converting. Everything else in these files follows from the raw disk.
//! These functions overwrite those fields with values derived from a seed
//! (the build's commit, arch and platform) and the build's time stamp, and
//! fix the checksums that cover them, so the same raw disk always gives
//! the same file. Each checks the format's signature first and names the
//! file when it is not what was expected.

use anyhow::{Context, Result, ensure};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::ext4::{le16, le32 as le_u32, le64 as le_u64};
use super::gpt::Guid;

fn open(path: &Path) -> Result<File> {
    File::options()
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))
}

fn read_at(f: &File, path: &Path, buf: &mut [u8], at: u64) -> Result<()> {
    f.read_exact_at(buf, at)
        .with_context(|| format!("reading {} at byte {at}", path.display()))
}

fn write_at(f: &File, path: &Path, buf: &[u8], at: u64) -> Result<()> {
    f.write_all_at(buf, at)
        .with_context(|| format!("writing {} at byte {at}", path.display()))
}

/// vmdk (sparse, streamOptimized included): the descriptor's `CID=`.
pub fn vmdk(path: &Path, seed: &str) -> Result<()> {
    let f = open(path)?;
    let mut hdr = [0u8; 512];
    read_at(&f, path, &mut hdr, 0)?;
    ensure!(
        &hdr[0..4] == b"KDMV",
        "{} is not a sparse vmdk",
        path.display()
    );
    let (desc_sector, desc_sectors) = (le_u64(&hdr, 28), le_u64(&hdr, 36));
    ensure!(
        desc_sector > 0 && (1..=2048).contains(&desc_sectors),
        "{}: the vmdk has no embedded descriptor",
        path.display()
    );
    let mut desc = vec![0u8; desc_sectors as usize * 512];
    read_at(&f, path, &mut desc, desc_sector * 512)?;
    // The text runs to the first NUL; the rest of the area is zeros.
    let text_len = desc.iter().position(|b| *b == 0).unwrap_or(desc.len());
    let text = std::str::from_utf8(&desc[..text_len])
        .with_context(|| format!("{}: the vmdk descriptor is not text", path.display()))?;
    let cid = &Guid::derived(&format!("{seed}/vmdk-cid")).0;
    // Never ffffffff, which means "no parent".
    let cid = u32::from_le_bytes([cid[0], cid[1], cid[2], cid[3]]) & 0x7fff_ffff;
    let mut found = false;
    let mut out = String::with_capacity(text.len() + 8);
    for line in text.split_inclusive('\n') {
        match line.strip_prefix("CID=") {
            Some(v) if !found && v.trim_end().chars().all(|c| c.is_ascii_hexdigit()) => {
                // qemu prints it without leading zeros.
                out.push_str(&format!("CID={cid:08x}\n"));
                found = true;
            }
            _ => out.push_str(line),
        }
    }
    ensure!(found, "{}: the vmdk descriptor has no CID", path.display());
    ensure!(
        out.len() < desc.len(),
        "{}: the vmdk descriptor does not fit its area",
        path.display()
    );
    let mut area = vec![0u8; desc.len()];
    area[..out.len()].copy_from_slice(out.as_bytes());
    write_at(&f, path, &area, desc_sector * 512)?;
    f.sync_all()
        .with_context(|| format!("syncing {}", path.display()))
}

/// Seconds between the Unix epoch and the VHD epoch (2000-01-01 UTC).
const VHD_EPOCH: i64 = 946_684_800;

/// vhd (fixed): the footer's time stamp (the build's) and UUID.
pub fn vhd(path: &Path, seed: &str, timestamp: i64) -> Result<()> {
    let f = open(path)?;
    let len = f
        .metadata()
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    ensure!(len >= 512, "{} is too small for a vhd", path.display());
    let at = len - 512;
    let mut footer = [0u8; 512];
    read_at(&f, path, &mut footer, at)?;
    ensure!(
        &footer[0..8] == b"conectix",
        "{} has no vhd footer",
        path.display()
    );
    let secs = (timestamp - VHD_EPOCH).clamp(0, u32::MAX as i64) as u32;
    footer[24..28].copy_from_slice(&secs.to_be_bytes());
    footer[68..84].copy_from_slice(&Guid::derived(&format!("{seed}/vhd-uuid")).0);
    footer[64..68].fill(0);
    let sum: u32 = footer.iter().map(|b| *b as u32).sum();
    footer[64..68].copy_from_slice(&(!sum).to_be_bytes());
    write_at(&f, path, &footer, at)?;
    // A dynamic vhd keeps a copy of the footer at the start.
    let mut head = [0u8; 512];
    read_at(&f, path, &mut head, 0)?;
    if &head[0..8] == b"conectix" && at != 0 {
        write_at(&f, path, &footer, 0)?;
    }
    f.sync_all()
        .with_context(|| format!("syncing {}", path.display()))
}

const KIB: u64 = 1024;
const VHDX_HEADERS: [u64; 2] = [64 * KIB, 128 * KIB];
const VHDX_REGION_TABLE: u64 = 192 * KIB;
const VHDX_METADATA_REGION: &str = "8b7ca206-4790-4b9a-b8fe-575f050f886e";
const VHDX_PAGE83: &str = "beca12ab-b2e6-4523-93ef-c309e000c746";

/// The 32-byte entry whose first 16 bytes are GUID `id`, of the `count`
/// entries at `start` of a vhdx region or metadata table (both 64 KiB).
fn vhdx_entry<'a>(
    table: &'a [u8],
    start: usize,
    count: usize,
    id: &str,
) -> Result<Option<&'a [u8]>> {
    let id = Guid::parse(id)?;
    let fits = (table.len() - start) / 32;
    Ok((0..count.min(fits))
        .map(|i| &table[start + i * 32..start + (i + 1) * 32])
        .find(|e| e[0..16] == id.0))
}

fn crc32c_with_zeroed(buf: &mut [u8], at: usize) -> u32 {
    buf[at..at + 4].fill(0);
    crc32c::crc32c(buf)
}

/// vhdx: both headers' sequence numbers and file- and data-write GUIDs
/// (checksums fixed), the
/// virtual disk id, and the inactive log's stale entries (zeroed: a header
/// whose log GUID is zero has an empty log, so readers never look at
/// them).
pub fn vhdx(path: &Path, seed: &str) -> Result<()> {
    let f = open(path)?;
    let mut ident = [0u8; 8];
    read_at(&f, path, &mut ident, 0)?;
    ensure!(&ident == b"vhdxfile", "{} is not a vhdx", path.display());
    let file_write = Guid::derived(&format!("{seed}/vhdx-file-write"));
    let data_write = Guid::derived(&format!("{seed}/vhdx-data-write"));
    let mut headers = Vec::new();
    for at in VHDX_HEADERS {
        let mut h = vec![0u8; 4096];
        read_at(&f, path, &mut h, at)?;
        ensure!(
            &h[0..4] == b"head",
            "{}: no vhdx header at {at}",
            path.display()
        );
        ensure!(
            h[48..64].iter().all(|b| *b == 0),
            "{}: the vhdx log is not empty (its header at {at} has a log GUID)",
            path.display()
        );
        headers.push((at, h));
    }
    // Sequence numbers start from a random value: 2 for the current
    // header (the higher), 1 for the other.
    let current = if le_u64(&headers[0].1, 8) >= le_u64(&headers[1].1, 8) {
        0
    } else {
        1
    };
    let mut log = None;
    for (i, (at, h)) in headers.iter_mut().enumerate() {
        let seq: u64 = if i == current { 2 } else { 1 };
        h[8..16].copy_from_slice(&seq.to_le_bytes());
        h[16..32].copy_from_slice(&file_write.0);
        h[32..48].copy_from_slice(&data_write.0);
        let crc = crc32c_with_zeroed(h, 4);
        h[4..8].copy_from_slice(&crc.to_le_bytes());
        write_at(&f, path, h, *at)?;
        log = Some((le_u64(h, 72), le_u32(h, 68) as u64));
    }
    if let Some((offset, length)) = log
        && length > 0
    {
        ensure!(
            offset >= 1024 * KIB && length <= 1 << 30,
            "{}: implausible vhdx log at {offset} ({length} bytes)",
            path.display()
        );
        let zeros = vec![0u8; 64 * KIB as usize];
        let mut done = 0;
        while done < length {
            let n = (length - done).min(zeros.len() as u64) as usize;
            write_at(&f, path, &zeros[..n], offset + done)?;
            done += n as u64;
        }
    }
    // The virtual disk id, in the metadata region's page 83 item.
    let mut rt = vec![0u8; 64 * KIB as usize];
    read_at(&f, path, &mut rt, VHDX_REGION_TABLE)?;
    ensure!(
        &rt[0..4] == b"regi",
        "{}: no vhdx region table",
        path.display()
    );
    let meta = vhdx_entry(&rt, 16, le_u32(&rt, 8) as usize, VHDX_METADATA_REGION)?
        .map(|e| le_u64(e, 16))
        .with_context(|| format!("{}: no vhdx metadata region", path.display()))?;
    let mut table = vec![0u8; 64 * KIB as usize];
    read_at(&f, path, &mut table, meta)?;
    ensure!(
        &table[0..8] == b"metadata",
        "{}: no vhdx metadata table at {meta}",
        path.display()
    );
    let item = vhdx_entry(&table, 32, le16(&table, 10) as usize, VHDX_PAGE83)?
        .with_context(|| format!("{}: the vhdx has no virtual disk id", path.display()))?;
    let (offs, len) = (le_u32(item, 16) as u64, le_u32(item, 20));
    ensure!(
        len == 16,
        "{}: vhdx virtual disk id of {len} bytes",
        path.display()
    );
    write_at(
        &f,
        path,
        &Guid::derived(&format!("{seed}/vhdx-disk-id")).0,
        meta + offs,
    )?;
    f.sync_all()
        .with_context(|| format!("syncing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn convert(raw: &Path, out: &Path, fmt: &str, opts: &str) {
        let st = Command::new("qemu-img")
            .args(["convert", "-f", "raw", "-O", fmt, "-o", opts])
            .arg(raw)
            .arg(out)
            .status()
            .unwrap();
        assert!(st.success());
    }

    fn check(path: &Path, fmt: &str) {
        let out = Command::new("qemu-img")
            .args(["check", "-f", fmt])
            .arg(path)
            .output()
            .unwrap();
        // vpc has no check; "not supported" is fine, corruption is not.
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() || text.contains("does not support checks"),
            "qemu-img check {fmt}: {text}"
        );
        let info = Command::new("qemu-img")
            .args(["info", "-f", fmt])
            .arg(path)
            .output()
            .unwrap();
        assert!(info.status.success(), "qemu-img info {fmt}");
    }

    /// Two conversions of one raw disk differ in what qemu-img makes up;
    /// after the fixup they are identical, still open in qemu-img, and
    /// convert back to the same raw bytes.
    #[test]
    fn conversions_become_identical_and_stay_valid() {
        let t = tempfile::tempdir().unwrap();
        let raw = t.path().join("disk.raw");
        let mut data = vec![0u8; 8 << 20];
        for (i, b) in data.iter_mut().enumerate().step_by(4099) {
            *b = (i % 251) as u8 + 1;
        }
        std::fs::write(&raw, &data).unwrap();
        for (fmt, opts, ext) in [
            (
                "vmdk",
                "adapter_type=lsilogic,subformat=streamOptimized,compat6",
                "vmdk",
            ),
            ("vpc", "subformat=fixed,force_size", "vhd"),
            ("vhdx", "subformat=dynamic", "vhdx"),
        ] {
            let mut files = Vec::new();
            for n in 0..2 {
                // One name: the vmdk descriptor holds it.
                let dir = t.path().join(format!("{ext}-{n}"));
                std::fs::create_dir_all(&dir).unwrap();
                let out = dir.join(format!("disk.{ext}"));
                convert(&raw, &out, fmt, opts);
                files.push(out);
                // vhd's time stamp has one-second resolution.
                std::thread::sleep(std::time::Duration::from_millis(1100));
            }
            assert_ne!(
                std::fs::read(&files[0]).unwrap(),
                std::fs::read(&files[1]).unwrap(),
                "{fmt}: qemu-img made two identical files; nothing to test"
            );
            for p in &files {
                match ext {
                    "vmdk" => vmdk(p, "seed").unwrap(),
                    "vhd" => vhd(p, "seed", 1_700_000_000).unwrap(),
                    _ => vhdx(p, "seed").unwrap(),
                }
                check(p, fmt);
            }
            let (a, b) = (
                std::fs::read(&files[0]).unwrap(),
                std::fs::read(&files[1]).unwrap(),
            );
            let differ: Vec<usize> = (0..a.len().min(b.len()))
                .filter(|&i| a[i] != b[i])
                .take(16)
                .collect();
            assert!(
                a.len() == b.len() && differ.is_empty(),
                "{fmt}: still different after the fixup, at bytes {differ:x?}"
            );
            let back = t.path().join(format!("back-{ext}.raw"));
            let st = Command::new("qemu-img")
                .args(["convert", "-f", fmt, "-O", "raw"])
                .arg(&files[0])
                .arg(&back)
                .status()
                .unwrap();
            assert!(st.success());
            let back = std::fs::read(&back).unwrap();
            assert_eq!(&back[..data.len()], &data[..], "{fmt}: content changed");
        }
    }

    /// qemu prints the CID without leading zeros: a shorter one becomes
    /// eight digits and the file stays valid.
    #[test]
    fn a_short_vmdk_cid_is_rewritten_whole() {
        let t = tempfile::tempdir().unwrap();
        let raw = t.path().join("disk.raw");
        std::fs::write(&raw, vec![7u8; 1 << 20]).unwrap();
        let out = t.path().join("disk.vmdk");
        convert(&raw, &out, "vmdk", "subformat=streamOptimized");
        let mut bytes = std::fs::read(&out).unwrap();
        let at = bytes.windows(5).position(|w| w == b"\nCID=").unwrap() + 5;
        let end = at + bytes[at..].iter().position(|b| *b == b'\n').unwrap();
        // "CID=abc\n", the rest of the descriptor moved up, zero padded.
        let desc_end = at + bytes[at..].iter().position(|b| *b == 0).unwrap();
        let mut text: Vec<u8> = b"abc".to_vec();
        text.extend_from_slice(&bytes[end..desc_end]);
        text.resize(desc_end - at, 0);
        bytes[at..desc_end].copy_from_slice(&text);
        std::fs::write(&out, &bytes).unwrap();
        vmdk(&out, "seed").unwrap();
        let s = String::from_utf8_lossy(&std::fs::read(&out).unwrap()).to_string();
        let line = s.lines().find(|l| l.starts_with("CID=")).unwrap();
        assert_eq!(line.len(), 12, "{line}");
        check(&out, "vmdk");
    }

    #[test]
    fn wrong_format_is_an_error_naming_the_file() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("plain.bin");
        std::fs::write(&p, vec![0u8; 4096]).unwrap();
        for e in [
            vmdk(&p, "s").unwrap_err(),
            vhd(&p, "s", 0).unwrap_err(),
            vhdx(&p, "s").unwrap_err(),
        ] {
            assert!(format!("{e:#}").contains("plain.bin"), "{e:#}");
        }
    }
}
