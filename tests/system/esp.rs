//! Checks of a disk image's boot loader against the commit it was made
//! from: the ESP's files (read with mtools) byte-identical to the commit's
//! `/usr/lib/bootupd/updates/EFI/` (read with `ostree cat`), plus the
//! grub.cfg stub; bootupd's state file on the boot partition (read with
//! debugfs) naming those files with their SHA-512 and the update metadata.

use crate::common::{commit_files, fat_files, sh_bytes};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const MIB: u64 = 1024 * 1024;

/// `ostree cat` of a file of `commit` in the working directory's repo.
pub fn ostree_cat(wd: &Path, commit: &str, path: &str) -> Vec<u8> {
    sh_bytes(
        "ostree cat",
        Command::new("ostree")
            .arg(format!("--repo={}", wd.join("tmp/repo").display()))
            .arg("cat")
            .arg(commit)
            .arg(path),
    )
}

/// Files of the ESP (at 2 MiB of `raw`, 512-byte sectors), as `EFI/...`.
fn esp_files(raw: &Path) -> Vec<String> {
    fat_files(&format!("{}@@{}", raw.display(), 2 * MIB))
}

fn esp_read(raw: &Path, path: &str, scratch: &Path) -> Vec<u8> {
    let dest = scratch.join("esp-file");
    let _ = std::fs::remove_file(&dest);
    sh_bytes(
        "mcopy",
        Command::new("mcopy")
            .env("MTOOLS_SKIP_CHECK", "1")
            .arg("-i")
            .arg(format!("{}@@{}", raw.display(), 2 * MIB))
            .arg(format!("::/{path}"))
            .arg(&dest),
    );
    std::fs::read(&dest).unwrap()
}

/// Whether a PE image carries an Authenticode signature (a non-empty
/// certificate table, data directory 4 of the PE32+ optional header).
pub fn pe_signed(pe: &[u8]) -> bool {
    let u32_at = |o: usize| u32::from_le_bytes(pe[o..o + 4].try_into().unwrap()) as usize;
    let off = u32_at(0x3c);
    assert_eq!(&pe[off..off + 4], b"PE\0\0", "not a PE image");
    let opt = off + 24;
    assert_eq!(
        u16::from_le_bytes([pe[opt], pe[opt + 1]]),
        0x20b,
        "not PE32+"
    );
    u32_at(opt + 112 + 4 * 8 + 4) > 0
}

/// The ESP of `raw` holds exactly the commit's bootupd EFI payload (each
/// file byte-identical to `ostree cat`'s) plus the grub.cfg stub at
/// `stub`, and the payload's shim and GRUB are signed. Returns the
/// payload's file names (relative to `EFI/`).
pub fn assert_esp_is_the_commits(
    wd: &Path,
    commit: &str,
    raw: &Path,
    stub: &str,
    scratch: &Path,
) -> Vec<String> {
    let payload = commit_files(wd, commit, "/usr/lib/bootupd/updates/EFI");
    assert!(!payload.is_empty(), "the commit has no bootupd EFI payload");
    let mut want: Vec<String> = payload.iter().map(|f| format!("EFI/{f}")).collect();
    want.push(stub.trim_start_matches('/').to_string());
    want.sort();
    assert_eq!(esp_files(raw), want, "the ESP's files");
    for f in &payload {
        let ours = esp_read(raw, &format!("EFI/{f}"), scratch);
        let theirs = ostree_cat(wd, commit, &format!("/usr/lib/bootupd/updates/EFI/{f}"));
        assert!(ours == theirs, "ESP EFI/{f} differs from the commit's");
        if f.to_ascii_lowercase().ends_with(".efi") {
            assert!(pe_signed(&ours), "EFI/{f} is not signed");
        }
    }
    let cfg = String::from_utf8(esp_read(raw, stub.trim_start_matches('/'), scratch)).unwrap();
    assert!(
        cfg.contains("search --no-floppy --label boot") && cfg.contains("grub2/grub.cfg"),
        "{cfg}"
    );
    payload
}

/// bootupd's state file (from the dumped boot partition `boot`): EFI
/// installed with the commit's EFI.json as metadata and a file tree of the
/// payload with SHA-512 digests; BIOS (when `bios`) with BIOS.json.
pub fn assert_bootupd_state(wd: &Path, commit: &str, boot: &Path, payload: &[String], bios: bool) {
    use sha2::Digest;
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(boot.join("bootupd-state.json")).unwrap()).unwrap();
    let efi_json: serde_json::Value =
        serde_json::from_slice(&ostree_cat(wd, commit, "/usr/lib/bootupd/updates/EFI.json"))
            .unwrap();
    assert_eq!(state["installed"]["EFI"]["meta"], efi_json, "{state}");
    let names: Vec<&str> = efi_json["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"shim-signed"), "{efi_json}");
    assert!(
        names.iter().any(|n| n.starts_with("grub-efi-")),
        "{efi_json}"
    );
    let children: BTreeMap<String, serde_json::Value> =
        serde_json::from_value(state["installed"]["EFI"]["filetree"]["children"].clone()).unwrap();
    assert_eq!(
        children.keys().cloned().collect::<Vec<_>>(),
        {
            let mut p = payload.to_vec();
            p.sort();
            p
        },
        "{state}"
    );
    for (f, m) in &children {
        let data = ostree_cat(wd, commit, &format!("/usr/lib/bootupd/updates/EFI/{f}"));
        assert_eq!(m["size"], data.len() as u64, "{f}");
        assert_eq!(
            m["sha512"],
            format!("sha512:{}", hex::encode(sha2::Sha512::digest(&data))),
            "{f}"
        );
    }
    assert_eq!(state["pending"], serde_json::Value::Null);
    if bios {
        let bios_json: serde_json::Value = serde_json::from_slice(&ostree_cat(
            wd,
            commit,
            "/usr/lib/bootupd/updates/BIOS.json",
        ))
        .unwrap();
        assert_eq!(state["installed"]["BIOS"]["meta"], bios_json, "{state}");
        assert!(
            bios_json["version"]
                .as_str()
                .unwrap()
                .starts_with("grub-pc-bin-")
        );
    } else {
        assert!(state["installed"].get("BIOS").is_none(), "{state}");
    }
}
