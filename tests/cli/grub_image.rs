//! The boot loader from a tree, on fixtures made with the host's real
//! `grub-mkimage`: what a GRUB UEFI image says about itself (prefix,
//! embedded config, built-in modules), and the ESP, BIOS core and bootupd
//! state that the image stage makes from a tree's bootupd payload.

use std::path::Path;
use std::process::Command;

use cosa::image::{bootloader, grub};

/// `grub-mkimage -O x86_64-efi -p PREFIX [-c CFG] MODULES...` from the
/// host's modules (Debian's grub-efi-amd64-bin).
fn mkimage(out: &Path, prefix: &str, config: Option<&Path>, modules: &[&str]) {
    let dir = grub::host_modules("x86_64-efi").unwrap();
    let mut cmd = Command::new("grub-mkimage");
    cmd.args(["-O", "x86_64-efi", "-d"])
        .arg(dir)
        .arg("-o")
        .arg(out)
        .args(["-p", prefix]);
    if let Some(c) = config {
        cmd.arg("-c").arg(c);
    }
    let st = cmd.args(modules).status().unwrap();
    assert!(st.success(), "grub-mkimage failed");
}

const MODULES: &[&str] = &[
    "part_gpt",
    "ext2",
    "fat",
    "search",
    "search_label",
    "configfile",
    "normal",
    "linux",
    "test",
    "echo",
];

#[test]
fn a_grub_image_tells_its_prefix_config_and_modules() {
    let t = tempfile::tempdir().unwrap();
    let cfg = t.path().join("early.cfg");
    std::fs::write(&cfg, "echo hello\n").unwrap();
    let img = t.path().join("grubx64.efi");
    mkimage(&img, "/EFI/vendor", Some(&cfg), MODULES);
    let info = grub::read_image_info(&std::fs::read(&img).unwrap()).unwrap();
    assert_eq!(info.prefix.as_deref(), Some("/EFI/vendor"));
    assert_eq!(info.config.as_deref(), Some("echo hello\n"));
    for m in MODULES {
        assert!(info.modules.iter().any(|x| x == m), "{m}: {info:?}");
    }
    // Dependencies come along (ext2 needs fshelp).
    assert!(info.modules.iter().any(|x| x == "fshelp"), "{info:?}");
    let e =
        grub::read_image_info(b"MZ not a PE file at all, but long enough.......................")
            .unwrap_err();
    assert!(format!("{e:#}").contains("not a"), "{e:#}");
}

/// A tree with a bootupd EFI payload: shim stand-in, a GRUB with `modules`.
fn tree_with_payload(root: &Path, modules: &[&str]) {
    let efi = root.join("usr/lib/bootupd/updates/EFI");
    std::fs::create_dir_all(efi.join("BOOT")).unwrap();
    std::fs::create_dir_all(efi.join("vendor")).unwrap();
    std::fs::write(efi.join("BOOT/BOOTX64.EFI"), "shim stand-in").unwrap();
    std::fs::write(efi.join("vendor/mmx64.efi"), "mokmanager stand-in").unwrap();
    mkimage(
        &efi.join("vendor/grubx64.efi"),
        "/EFI/vendor",
        None,
        modules,
    );
}

#[test]
fn the_esp_and_bootupd_state_come_from_the_tree() {
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("tree");
    tree_with_payload(&tree, MODULES);
    let work = t.path().join("work");
    std::fs::create_dir(&work).unwrap();
    // No EFI.json: the compose step that writes it did not run.
    let e = bootloader::prepare(&tree, "x86_64", &work, None).unwrap_err();
    assert!(
        format!("{e:#}").contains("no usr/lib/bootupd/updates/EFI.json"),
        "{e:#}"
    );
    std::fs::write(
        tree.join("usr/lib/bootupd/updates/EFI.json"),
        r#"{"timestamp":"2025-01-02T03:04:05Z","version":"grub-1-1.x86_64,shim-2-1.x86_64","versions":[{"name":"grub","rpm_evr":"1-1"},{"name":"shim","rpm_evr":"2-1"}]}"#,
    )
    .unwrap();
    let p = bootloader::prepare(&tree, "x86_64", &work, None).unwrap();
    let esp = p.esp.as_deref().unwrap();
    let payload = tree.join("usr/lib/bootupd/updates/EFI");
    for f in ["BOOT/BOOTX64.EFI", "vendor/mmx64.efi", "vendor/grubx64.efi"] {
        assert_eq!(
            std::fs::read(esp.join("EFI").join(f)).unwrap(),
            std::fs::read(payload.join(f)).unwrap(),
            "{f}"
        );
    }
    // The stub goes where this GRUB looks: its prefix.
    let stub = std::fs::read_to_string(esp.join("EFI/vendor/grub.cfg")).unwrap();
    assert_eq!(stub, grub::EARLY_CFG);
    assert_eq!(p.record["grub-cfg-stub"], "/EFI/vendor/grub.cfg");
    assert_eq!(p.record["from"], "tree");
    // bootupd's state: EFI with the metadata and digests of the payload.
    let state = serde_json::to_value(p.state.as_ref().unwrap()).unwrap();
    assert_eq!(
        state["installed"]["EFI"]["meta"]["version"],
        "grub-1-1.x86_64,shim-2-1.x86_64"
    );
    let child = &state["installed"]["EFI"]["filetree"]["children"]["BOOT/BOOTX64.EFI"];
    assert_eq!(child["size"], 13);
    let (hex, _) = cosa::util::digest::file(&payload.join("BOOT/BOOTX64.EFI"), "sha512").unwrap();
    assert_eq!(child["sha512"], format!("sha512:{hex}"));
    // No BIOS modules in the tree: the host's, recorded as such.
    let (core, boot_img) = p.bios.as_ref().unwrap();
    assert!(std::fs::metadata(core).unwrap().len() > 512);
    assert_eq!(std::fs::metadata(boot_img).unwrap().len(), 512);
    assert_eq!(p.record["BIOS"]["from"], "host");
    assert!(state["installed"].get("BIOS").is_none());
}

#[test]
fn a_tree_grub_without_needed_modules_is_refused_and_no_payload_means_host_grub() {
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("tree");
    tree_with_payload(&tree, &["part_gpt", "fat", "normal"]);
    std::fs::write(
        tree.join("usr/lib/bootupd/updates/EFI.json"),
        r#"{"timestamp":"2025-01-02T03:04:05Z","version":"x"}"#,
    )
    .unwrap();
    let work = t.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let e = bootloader::prepare(&tree, "x86_64", &work, None).unwrap_err();
    let msg = format!("{e:#}");
    assert!(
        msg.contains("lacks built-in modules") && msg.contains("\"linux\""),
        "{msg}"
    );
    // A tree without a payload: the host's GRUB in EFI/BOOT, recorded.
    let bare = t.path().join("bare");
    std::fs::create_dir(&bare).unwrap();
    let work2 = t.path().join("work2");
    std::fs::create_dir(&work2).unwrap();
    let p = bootloader::prepare(&bare, "x86_64", &work2, None).unwrap();
    assert_eq!(p.record["from"], "host");
    assert!(p.state.is_none());
    let efi = std::fs::read(p.esp.unwrap().join("EFI/BOOT/BOOTX64.EFI")).unwrap();
    let info = grub::read_image_info(&efi).unwrap();
    assert_eq!(info.prefix.as_deref(), Some("/grub2"));
    assert_eq!(info.config.as_deref(), Some(grub::EARLY_CFG));
}

#[test]
fn a_configs_key_signs_cosas_own_grub_and_sbverify_checks_it() {
    let t = tempfile::tempdir().unwrap();
    let (key, cert) = (t.path().join("db.key"), t.path().join("db.crt"));
    let st = Command::new("openssl")
        .args([
            "req", "-new", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=cosa test db/"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    // image.yaml names them relative to itself.
    let cfg = t.path().join("config");
    std::fs::create_dir(&cfg).unwrap();
    std::fs::write(
        cfg.join("image.yaml"),
        "efi-signing-key: ../db.key\nefi-signing-cert: ../db.crt\n",
    )
    .unwrap();
    let image = cosa::config::image::ImageConfig::load(&cfg).unwrap();
    let signing = image.efi_signing.clone().unwrap();
    assert_eq!(signing.cert, cfg.join("../db.crt"));
    let bare = t.path().join("bare");
    std::fs::create_dir(&bare).unwrap();
    let work = t.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let p = bootloader::prepare(&bare, "x86_64", &work, Some(&signing)).unwrap();
    assert_eq!(p.record["signed"], true);
    let efi = p.esp.unwrap().join("EFI/BOOT/BOOTX64.EFI");
    let verify = |f: &Path| {
        Command::new("sbverify")
            .arg("--cert")
            .arg(&cert)
            .arg(f)
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(verify(&efi), "sbverify refuses the signed GRUB");
    // The signed image is still the GRUB it was.
    let info = grub::read_image_info(&std::fs::read(&efi).unwrap()).unwrap();
    assert_eq!(info.prefix.as_deref(), Some("/grub2"));
    // Without the key: unsigned, and sbverify says so.
    let work2 = t.path().join("work2");
    std::fs::create_dir(&work2).unwrap();
    let p = bootloader::prepare(&bare, "x86_64", &work2, None).unwrap();
    assert!(!verify(&p.esp.unwrap().join("EFI/BOOT/BOOTX64.EFI")));
    // Only one of the two is an error naming the file.
    std::fs::write(cfg.join("image.yaml"), "efi-signing-key: ../db.key\n").unwrap();
    let e = cosa::config::image::ImageConfig::load(&cfg).unwrap_err();
    assert!(
        format!("{e:#}").contains("names only one of efi-signing-key and efi-signing-cert"),
        "{e:#}"
    );
}
