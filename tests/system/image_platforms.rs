//! Every platform image of one build (`cosa osbuild --all`): each artifact
//! has upstream's format (checked with qemu-img, tar, skopeo), its boot
//! partition carries the platform's id and console kargs, meta.json stays
//! valid, and the cloud formats QEMU can read boot (aws vmdk, azure vhd, gcp
//! disk.raw from the tarball, vmware vmdk from the OVA).

use crate::common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const MIB: u64 = 1024 * 1024;

fn qemu_info(path: &Path) -> serde_json::Value {
    serde_json::from_str(&sh(
        "qemu-img info",
        Command::new("qemu-img")
            .args(["info", "--output=json"])
            .arg(path),
    ))
    .unwrap()
}

/// The BLS options on the boot partition of a disk QEMU can read.
fn bls_options(disk: &Path, fmt: &str, t: &Path) -> String {
    let raw = t.join("bls.raw");
    let _ = std::fs::remove_file(&raw);
    sh(
        "qemu-img convert",
        Command::new("qemu-img")
            .args(["convert", "-f", fmt, "-O", "raw"])
            .arg(disk)
            .arg(&raw),
    );
    let out = sh(
        "debugfs cat",
        Command::new("debugfs")
            .arg("-R")
            .arg("cat /loader/entries/ostree-1-cosa-sample.conf")
            .arg(format!("{}?offset={}", raw.display(), 129 * MIB)),
    );
    std::fs::remove_file(&raw).unwrap();
    out.lines()
        .find_map(|l| l.strip_prefix("options "))
        .unwrap_or_else(|| panic!("no options in {out}"))
        .to_string()
}

#[test]
fn every_platform_has_upstreams_format_and_the_cloud_ones_boot() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("sample-repo");
    cosa_testkit::sample::make_sample_repo(&repo, "x86_64").unwrap();
    let wd = t.path().join("wd");
    let manifests = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests");
    run(cosa(&wd).args(["init", "--transient"]).arg(manifests), true);
    run(
        cosa(&wd)
            .env("DNF_VAR_cosa_sample_repo", &repo)
            .args(["build", "ostree"]),
        true,
    );
    let e = stderr(&run(cosa(&wd).args(["osbuild", "--all"]), true));
    // One base disk per geometry: the 10 GiB cloud disk, ibmcloud's 100 GiB,
    // metal and metal4k.
    assert_eq!(e.matches("Made the base disk for").count(), 4, "{e}");
    let bj: serde_json::Value =
        serde_json::from_slice(&std::fs::read(wd.join("builds/builds.json")).unwrap()).unwrap();
    let id = bj["builds"][0]["id"].as_str().unwrap().to_string();
    let dir = wd.join(format!("builds/{id}/x86_64"));
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("meta.json")).unwrap()).unwrap();
    cosa::store::meta::validate(&meta).unwrap();
    let img = |p: &str| -> PathBuf { dir.join(meta["images"][p]["path"].as_str().unwrap()) };
    for p in cosa::image::platforms_for_arch("x86_64") {
        let a = &meta["images"][p];
        let t = cosa::image::target(p).unwrap();
        assert_eq!(
            a["path"],
            format!("cosa-sample-{id}-{p}.x86_64.{}", t.ext),
            "{p}"
        );
        let (sha, size) = cosa::util::digest::sha256_file(&img(p)).unwrap();
        assert_eq!(
            (a["sha256"].as_str().unwrap(), a["size"].as_u64().unwrap()),
            (sha.as_str(), size),
            "{p}"
        );
        let skip = matches!(p, "nutanix" | "gcp" | "kubevirt");
        assert_eq!(
            a.get("skip-compression")
                .and_then(|v| v.as_bool())
                .unwrap_or(false),
            skip,
            "{p}"
        );
    }

    // Formats, as upstream ships them.
    let gib10 = 10 * 1024 * MIB;
    for p in [
        "qemu",
        "openstack",
        "aliyun",
        "digitalocean",
        "exoscale",
        "oraclecloud",
        "proxmoxve",
        "ibmcloud",
        "nutanix",
    ] {
        let i = qemu_info(&img(p));
        assert_eq!(i["format"], "qcow2", "{p}");
        assert_eq!(i["format-specific"]["data"]["compat"], "1.1", "{p}");
        let want = if p == "ibmcloud" {
            100 * 1024 * MIB
        } else {
            gib10
        };
        assert_eq!(i["virtual-size"], want, "{p}");
        sh(
            "qemu-img check",
            Command::new("qemu-img").arg("check").arg(img(p)),
        );
    }
    let check = sh(
        "qemu-img check",
        Command::new("qemu-img").arg("check").arg(img("nutanix")),
    );
    assert!(
        !check.contains(" 0.00% compressed"),
        "nutanix is internally compressed: {check}"
    );
    let aws = qemu_info(&img("aws"));
    assert_eq!(aws["format"], "vmdk");
    assert_eq!(
        aws["format-specific"]["data"]["create-type"], "streamOptimized",
        "{aws}"
    );
    let desc = String::from_utf8_lossy(&std::fs::read(img("aws")).unwrap()[512..2048]).into_owned();
    assert!(desc.contains("ddb.adapterType = \"lsilogic\""), "{desc}");
    assert!(
        desc.contains("ddb.virtualHWVersion = \"6\""),
        "compat6: {desc}"
    );
    for p in ["azure", "azurestack"] {
        // A fixed VHD has its footer ("conectix") only at the end, so
        // qemu-img must be told the format.
        let i: serde_json::Value = serde_json::from_str(&sh(
            "qemu-img info -f vpc",
            Command::new("qemu-img")
                .args(["info", "-f", "vpc", "--output=json"])
                .arg(img(p)),
        ))
        .unwrap();
        let data = std::fs::read(img(p)).unwrap();
        assert_eq!(
            &data[data.len() - 512..data.len() - 504],
            b"conectix",
            "{p}"
        );
        assert_eq!(
            &data[data.len() - 512 + 60..data.len() - 512 + 64],
            &[0, 0, 0, 2],
            "{p}: disk type fixed"
        );
        // Fixed VHD: the raw disk (a whole number of MiB) plus a 512-byte footer.
        let len = std::fs::metadata(img(p)).unwrap().len();
        assert_eq!((len - 512) % MIB, 0, "{p} size {len}");
        assert_eq!(i["virtual-size"], gib10, "{p}");
    }
    assert_eq!(qemu_info(&img("hyperv"))["format"], "vhdx");
    for p in ["metal", "applehv", "hetzner", "vultr"] {
        assert_eq!(qemu_info(&img(p))["format"], "raw", "{p}");
        let v = sh("sgdisk -v", Command::new("sgdisk").arg("-v").arg(img(p)));
        assert!(v.contains("No problems found"), "{p}: {v}");
    }
    // GCP: disk.raw in a sparse oldgnu tar, gzip.
    let listing = sh(
        "tar -tvzf",
        Command::new("tar").arg("-tvzf").arg(img("gcp")),
    );
    assert_eq!(listing.lines().count(), 1, "{listing}");
    assert!(listing.trim_end().ends_with(" disk.raw"), "{listing}");
    assert!(listing.contains(&gib10.to_string()), "{listing}");
    let head = std::fs::read(img("gcp")).unwrap();
    assert_eq!(&head[..2], &[0x1f, 0x8b], "gzip");
    // OVA: the OVF descriptor first, then the streamOptimized disk.
    for (p, family) in [("vmware", "vmx-13"), ("virtualbox", "virtualbox-2.2")] {
        let listing = sh("tar -tf", Command::new("tar").arg("-tf").arg(img(p)));
        let names: Vec<&str> = listing.lines().collect();
        assert_eq!(names, ["cosa-sample.ovf", "disk.vmdk"], "{p}");
        let ovf = sh(
            "tar -xOf",
            Command::new("tar")
                .arg("-xOf")
                .arg(img(p))
                .arg("cosa-sample.ovf"),
        );
        assert!(
            ovf.contains(family) && ovf.contains(&format!("ovf:capacity=\"{gib10}\"")),
            "{ovf}"
        );
        let mut reader = quick_xml::Reader::from_str(&ovf);
        loop {
            match reader.read_event() {
                Ok(quick_xml::events::Event::Eof) => break,
                Ok(_) => {}
                Err(e) => panic!("{p}: the OVF is not well-formed XML: {e}"),
            }
        }
    }
    // KubeVirt: an OCI archive with the qcow2 under /disk/.
    let inspect: serde_json::Value = serde_json::from_str(&sh(
        "skopeo inspect",
        Command::new("skopeo")
            .arg("inspect")
            .arg(format!("oci-archive:{}", img("kubevirt").display())),
    ))
    .unwrap();
    assert_eq!(inspect["Architecture"], "amd64", "{inspect}");
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 1, "{inspect}");

    // Every platform's disk: a valid GPT (sgdisk -v on its raw form) and a
    // boot partition naming the platform, with its console kargs.
    for p in cosa::image::platforms_for_arch("x86_64") {
        let x = t.path().join(format!("x-{p}"));
        std::fs::create_dir_all(&x).unwrap();
        let (disk, fmt) = match p {
            "gcp" => {
                sh(
                    "tar",
                    Command::new("tar")
                        .arg("-xSzf")
                        .arg(img(p))
                        .arg("-C")
                        .arg(&x),
                );
                (x.join("disk.raw"), "raw")
            }
            "vmware" | "virtualbox" => {
                sh(
                    "tar",
                    Command::new("tar").arg("-xf").arg(img(p)).arg("-C").arg(&x),
                );
                (x.join("disk.vmdk"), "vmdk")
            }
            "kubevirt" => {
                sh(
                    "tar",
                    Command::new("tar").arg("-xf").arg(img(p)).arg("-C").arg(&x),
                );
                let index: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(x.join("index.json")).unwrap()).unwrap();
                let blob = |d: &serde_json::Value| {
                    x.join("blobs/sha256")
                        .join(d.as_str().unwrap().strip_prefix("sha256:").unwrap())
                };
                let manifest: serde_json::Value = serde_json::from_slice(
                    &std::fs::read(blob(&index["manifests"][0]["digest"])).unwrap(),
                )
                .unwrap();
                let layer = blob(&manifest["layers"][0]["digest"]);
                let listing = sh("tar -tvf", Command::new("tar").arg("-tvf").arg(&layer));
                assert!(
                    listing.contains("107/107") && listing.contains("disk/cosa-sample.qcow2"),
                    "{listing}"
                );
                sh(
                    "tar",
                    Command::new("tar").arg("-xf").arg(&layer).arg("-C").arg(&x),
                );
                (x.join("disk/cosa-sample.qcow2"), "qcow2")
            }
            _ => {
                let t = cosa::image::target(p).unwrap();
                (img(p), t.qemu_format().unwrap())
            }
        };
        if p == "metal4k" {
            continue; // 4096-byte sectors: checked in tests/image_boot.rs
        }
        let raw = x.join("check.raw");
        sh(
            "qemu-img convert",
            Command::new("qemu-img")
                .args(["convert", "-f", fmt, "-O", "raw"])
                .arg(&disk)
                .arg(&raw),
        );
        let v = sh("sgdisk -v", Command::new("sgdisk").arg("-v").arg(&raw));
        assert!(v.contains("No problems found"), "{p}: {v}");
        std::fs::remove_file(&raw).unwrap();
        let o = bls_options(&disk, fmt, t.path());
        let id = cosa::image::target(p).unwrap().ignition_id();
        assert!(
            o.split(' ')
                .any(|k| k == format!("ignition.platform.id={id}")),
            "{p}: {o}"
        );
        assert!(
            o.contains("console=ttyS0,115200n8"),
            "{p}: platforms.yaml kargs: {o}"
        );
        assert!(
            o.contains("mitigations=auto,nosmt") && o.contains("ostree=/ostree/boot.1/"),
            "{p}: {o}"
        );
        std::fs::remove_dir_all(&x).unwrap();
    }

    // Boot the cloud formats QEMU reads.
    for p in ["aws", "azure", "gcp", "vmware"] {
        let out = run(
            cosa(&wd).args(["kola", "run", "basic", "--platform", p, "--timeout", "180"]),
            true,
        );
        let s = String::from_utf8_lossy(&out.stdout);
        assert!(
            s.contains(&format!("PASS: basic ({p} uefi) booted {id}")),
            "{s}"
        );
    }
}
