//! Turn a raw disk into each platform's artifact format, as coreos-assembler
//! ships it: qemu-img conversions (qcow2, vmdk, vhd, vhdx), GCP's sparse
//! tar.gz, the OVA (OVF descriptor rendered with tera + streamOptimized
//! vmdk), IBM Power Virtual Server's gzipped OVA (the raw disk and its OVF
//! descriptor) and KubeVirt's container disk (an OCI archive with the qcow2
//! under /disk/).

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use crate::util::cmd::CommandRunExt;

/// What a platform's artifact is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Raw,
    /// qcow2 compat 1.1; `compressed` uses qcow2's internal compression.
    Qcow2 {
        compressed: bool,
    },
    /// streamOptimized, adapter lsilogic, compat6 (AWS).
    Vmdk,
    /// vpc, fixed, force_size (Azure).
    Vhd,
    Vhdx,
    /// `disk.raw` in a sparse oldgnu tar, gzip -9 (GCP).
    GcpTarGz,
    /// OVF descriptor + streamOptimized vmdk in a ustar archive.
    Ova {
        virtualbox: bool,
    },
    /// OCI archive with the (compressed) qcow2 under /disk/ (KubeVirt).
    KubevirtOci,
    /// `disk.raw` then `coreos.ovf` in a pax tar, gzip -9 (PowerVS), as
    /// coreos-assembler's `cosalib/ibmcloud.py` makes it.
    PowervsOvaGz,
}

/// The capacity PowerVS's OVF declares for the boot volume (bytes, 120
/// GiB), as coreos-assembler's powervs template does: the volume PowerVS
/// creates on import, larger than the image.
pub const POWERVS_CAPACITY: u64 = 120 << 30;

fn qemu_img(what: &str, args: &[&str], src: &Path, dst: &Path) -> Result<()> {
    let mut cmd = Command::new("qemu-img");
    cmd.args(["convert", "-f", "raw"])
        .args(args)
        .arg(src)
        .arg(dst);
    cmd.run_capture(what)?;
    Ok(())
}

/// Values for the OVF templates.
#[derive(Clone, Debug)]
pub struct OvfInfo {
    pub name: String,
    pub version: String,
    pub arch: String,
    pub os_type: String,
    pub hw_version: u32,
    /// image.yaml `vmware-secure-boot`: UEFI Secure Boot on in the VM.
    pub secure_boot: bool,
}

fn tar_cmd(
    what: &str,
    dir: &Path,
    format: &str,
    files: &[&str],
    out: &Path,
    extra: &[&str],
    timestamp: i64,
) -> Result<()> {
    let mut cmd = Command::new("tar");
    cmd.arg(format!("--format={format}"))
        .arg(format!("--mtime=@{}", timestamp.max(0)))
        .args([
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "--no-recursion",
        ])
        .args(extra)
        .arg("-cf")
        .arg(out)
        .arg("-C")
        .arg(dir)
        .args(files);
    cmd.run_capture(what)?;
    Ok(())
}

/// Convert `raw` into `out` in `format`. `work` is scratch space; `raw` may
/// be consumed (moved). What qemu-img makes up (ids, its clock) is derived
/// from `seed` and `timestamp` instead ([`super::fixup`]).
pub fn convert(
    format: Format,
    raw: &Path,
    out: &Path,
    work: &Path,
    ovf: &OvfInfo,
    seed: &str,
    timestamp: i64,
) -> Result<()> {
    match format {
        Format::Raw => fs::rename(raw, out)
            .with_context(|| format!("moving {} to {}", raw.display(), out.display())),
        Format::Qcow2 { compressed } => {
            let mut args = vec!["-O", "qcow2", "-o", "compat=1.1"];
            if compressed {
                args.push("-c");
            }
            qemu_img("converting to qcow2 (qemu-img convert)", &args, raw, out)
        }
        Format::Vmdk => {
            qemu_img(
                "converting to vmdk (qemu-img convert)",
                &[
                    "-O",
                    "vmdk",
                    "-o",
                    "adapter_type=lsilogic,subformat=streamOptimized,compat6",
                ],
                raw,
                out,
            )?;
            super::fixup::vmdk(out, seed)
        }
        Format::Vhd => {
            qemu_img(
                "converting to vhd (qemu-img convert)",
                &["-O", "vpc", "-o", "subformat=fixed,force_size"],
                raw,
                out,
            )?;
            super::fixup::vhd(out, seed, timestamp)
        }
        Format::Vhdx => {
            qemu_img(
                "converting to vhdx (qemu-img convert)",
                &["-O", "vhdx", "-o", "subformat=dynamic"],
                raw,
                out,
            )?;
            super::fixup::vhdx(out, seed)
        }
        Format::GcpTarGz => {
            let dir = work.join("gcp");
            fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            fs::rename(raw, dir.join("disk.raw"))
                .with_context(|| format!("moving {} into {}", raw.display(), dir.display()))?;
            tar_cmd(
                "making the GCP tarball (tar -S | gzip -9)",
                &dir,
                "oldgnu",
                &["disk.raw"],
                out,
                &["--sparse", "--use-compress-program=gzip -9n"],
                timestamp,
            )
        }
        Format::Ova { virtualbox } => {
            let dir = work.join(if virtualbox { "ova-vbox" } else { "ova-vmware" });
            fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let vmdk = dir.join("disk.vmdk");
            qemu_img(
                "converting to a streamOptimized vmdk (qemu-img convert)",
                &[
                    "-O",
                    "vmdk",
                    "-o",
                    "adapter_type=lsilogic,subformat=streamOptimized,compat6",
                ],
                raw,
                &vmdk,
            )?;
            super::fixup::vmdk(&vmdk, seed)?;
            let capacity = fs::metadata(raw)
                .with_context(|| format!("reading {}", raw.display()))?
                .len();
            let vmdk_size = fs::metadata(&vmdk)?.len();
            let descriptor = render_ovf(virtualbox, ovf, "disk.vmdk", vmdk_size, capacity)?;
            let ovf_name = format!("{}.ovf", ovf.name);
            fs::write(dir.join(&ovf_name), descriptor)
                .with_context(|| format!("writing {ovf_name}"))?;
            // The OVF descriptor must come first in an OVA.
            tar_cmd(
                "making the OVA (tar --format=ustar)",
                &dir,
                "ustar",
                &[&ovf_name, "disk.vmdk"],
                out,
                &[],
                timestamp,
            )
        }
        Format::KubevirtOci => kubevirt_ociarchive(raw, out, work, ovf, timestamp),
        Format::PowervsOvaGz => {
            let dir = work.join("powervs");
            fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let disk = dir.join("disk.raw");
            fs::rename(raw, &disk)
                .with_context(|| format!("moving {} into {}", raw.display(), dir.display()))?;
            let size = fs::metadata(&disk)
                .with_context(|| format!("reading {}", disk.display()))?
                .len();
            fs::write(
                dir.join("coreos.ovf"),
                render_powervs_ovf(ovf, "disk.raw", size)?,
            )
            .context("writing coreos.ovf")?;
            // Not sparse: upstream's tarfile stores the disk whole.
            tar_cmd(
                "making the PowerVS OVA (tar --format=posix | gzip -9)",
                &dir,
                "posix",
                &["disk.raw", "coreos.ovf"],
                out,
                &[
                    "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime",
                    "--use-compress-program=gzip -9n",
                ],
                timestamp,
            )
        }
    }
}

/// Unpack `disk.raw` from a PowerVS OVA (`ova.gz`) into `dest`, sparse:
/// blocks of zeros become holes, so the 10 GiB disk costs what its content
/// costs.
pub fn unpack_powervs_disk(ova: &Path, dest: &Path) -> Result<()> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let f = fs::File::open(ova).with_context(|| format!("opening {}", ova.display()))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(f));
    for e in archive
        .entries()
        .with_context(|| format!("reading {}", ova.display()))?
    {
        let mut e = e.with_context(|| format!("reading {}", ova.display()))?;
        if e.path()?.as_os_str() != "disk.raw" {
            continue;
        }
        let len = e.size();
        let mut out =
            fs::File::create(dest).with_context(|| format!("creating {}", dest.display()))?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = e
                .read(&mut buf)
                .with_context(|| format!("reading disk.raw from {}", ova.display()))?;
            if n == 0 {
                break;
            }
            if buf[..n].iter().all(|b| *b == 0) {
                out.seek(SeekFrom::Current(n as i64))?;
            } else {
                out.write_all(&buf[..n])
                    .with_context(|| format!("writing {}", dest.display()))?;
            }
        }
        out.set_len(len)
            .with_context(|| format!("sizing {}", dest.display()))?;
        return Ok(());
    }
    anyhow::bail!("{} has no disk.raw: not a PowerVS OVA", ova.display())
}

/// PowerVS's OVF descriptor for the raw disk `disk_file` of `disk_size`
/// bytes: image `<name>-<version>`, architecture, one boot volume.
pub fn render_powervs_ovf(o: &OvfInfo, disk_file: &str, disk_size: u64) -> Result<String> {
    let mut ctx = tera::Context::new();
    ctx.insert("image", &format!("{}-{}", o.name, o.version));
    ctx.insert("description", &format!("{} {}", o.name, o.version));
    ctx.insert("arch", &o.arch);
    ctx.insert("disk_file", disk_file);
    ctx.insert("disk_file_size", &disk_size);
    ctx.insert("capacity", &POWERVS_CAPACITY.max(disk_size));
    tera::Tera::one_off(include_str!("templates/powervs.ovf"), &ctx, true)
        .context("rendering the PowerVS OVF descriptor")
}

/// The OVF descriptor for VMware or VirtualBox.
pub fn render_ovf(
    virtualbox: bool,
    o: &OvfInfo,
    disk_file: &str,
    disk_file_size: u64,
    capacity: u64,
) -> Result<String> {
    let template = if virtualbox {
        include_str!("templates/virtualbox.ovf")
    } else {
        include_str!("templates/vmware.ovf")
    };
    let mut ctx = tera::Context::new();
    ctx.insert("name", &o.name);
    ctx.insert("version", &o.version);
    ctx.insert("arch", &o.arch);
    ctx.insert("os_type", &o.os_type);
    ctx.insert("os_cim_id", &101); // "Linux 64-Bit" in the CIM OS list
    ctx.insert("hw_version", &o.hw_version);
    ctx.insert("secure_boot", &o.secure_boot);
    ctx.insert("cpus", &2);
    ctx.insert("memory_mib", &4096);
    ctx.insert("disk_file", disk_file);
    ctx.insert("disk_file_size", &disk_file_size);
    ctx.insert("capacity", &capacity);
    ctx.insert("populated", &disk_file_size);
    tera::Tera::one_off(template, &ctx, true).context("rendering the OVF descriptor")
}

fn blob(dir: &Path, data: &[u8]) -> Result<(String, u64)> {
    let digest = crate::util::digest::sha256_hex(data);
    let p = dir.join("blobs/sha256").join(&digest);
    fs::write(&p, data).with_context(|| format!("writing {}", p.display()))?;
    Ok((format!("sha256:{digest}"), data.len() as u64))
}

fn oci_arch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// KubeVirt's containerDisk: an OCI image whose one layer holds
/// `disk/<name>.qcow2` (owned by uid/gid 107, as KubeVirt expects).
fn kubevirt_ociarchive(
    raw: &Path,
    out: &Path,
    work: &Path,
    o: &OvfInfo,
    timestamp: i64,
) -> Result<()> {
    let dir = work.join("kubevirt");
    let layer_dir = dir.join("layer");
    let disk_dir = layer_dir.join("disk");
    fs::create_dir_all(&disk_dir).with_context(|| format!("creating {}", disk_dir.display()))?;
    let qcow = disk_dir.join(format!("{}.qcow2", o.name));
    qemu_img(
        "converting to a compressed qcow2 (qemu-img convert)",
        &["-O", "qcow2", "-o", "compat=1.1", "-c"],
        raw,
        &qcow,
    )?;
    let layout = dir.join("oci");
    fs::create_dir_all(layout.join("blobs/sha256"))
        .with_context(|| format!("creating {}", layout.display()))?;
    let layer_tar = dir.join("layer.tar");
    let mut cmd = Command::new("tar");
    cmd.arg("--format=posix")
        .arg("--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime")
        .arg(format!("--mtime=@{}", timestamp.max(0)))
        .args([
            "--owner=107",
            "--group=107",
            "--numeric-owner",
            "--sort=name",
        ])
        .arg("-cf")
        .arg(&layer_tar)
        .arg("-C")
        .arg(&layer_dir)
        .arg("disk");
    cmd.run_capture("making the container disk layer (tar)")?;
    let (layer_sha, layer_size) = crate::util::digest::sha256_file(&layer_tar)?;
    fs::rename(&layer_tar, layout.join("blobs/sha256").join(&layer_sha))
        .context("moving the layer into the OCI layout")?;
    let created = crate::util::time::format_rfc3339(timestamp);
    let config = serde_json::json!({
        "architecture": oci_arch(&o.arch),
        "os": "linux",
        "created": created,
        "config": {"Labels": {"org.opencontainers.image.version": o.version}},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{layer_sha}")]},
        "history": [{"created": created, "created_by": "cosa buildextend-kubevirt"}],
    });
    let (config_digest, config_size) = blob(&layout, &serde_json::to_vec(&config)?)?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_size,
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": format!("sha256:{layer_sha}"),
            "size": layer_size,
        }],
        "annotations": {"org.opencontainers.image.version": o.version},
    });
    let (manifest_digest, manifest_size) = blob(&layout, &serde_json::to_vec(&manifest)?)?;
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest_size,
            "annotations": {"org.opencontainers.image.ref.name": o.version},
        }],
    });
    fs::write(layout.join("index.json"), serde_json::to_vec(&index)?)
        .context("writing index.json")?;
    fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .context("writing oci-layout")?;
    let mut cmd = Command::new("tar");
    cmd.arg("--format=posix")
        .arg("--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime")
        .arg(format!("--mtime=@{}", timestamp.max(0)))
        .args(["--owner=0", "--group=0", "--numeric-owner", "--sort=name"])
        .arg("-cf")
        .arg(out)
        .arg("-C")
        .arg(&layout)
        .args(["oci-layout", "index.json", "blobs"]);
    cmd.run_capture("making the OCI archive (tar)")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_powervs_disk_unpacks_sparse() {
        use std::os::unix::fs::MetadataExt;
        let t = tempfile::tempdir().unwrap();
        let mut disk = vec![0u8; 8 << 20];
        disk[4096..4100].copy_from_slice(b"GRUB");
        let ova = t.path().join("x.ova.gz");
        let gz = flate2::write::GzEncoder::new(
            fs::File::create(&ova).unwrap(),
            flate2::Compression::fast(),
        );
        let mut b = tar::Builder::new(gz);
        for (name, data) in [("disk.raw", &disk[..]), ("coreos.ovf", b"<ovf/>")] {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, name, data).unwrap();
        }
        b.into_inner().unwrap().finish().unwrap();
        let raw = t.path().join("disk.raw");
        unpack_powervs_disk(&ova, &raw).unwrap();
        assert_eq!(fs::read(&raw).unwrap(), disk);
        assert!(fs::metadata(&raw).unwrap().blocks() * 512 < 4 << 20);
        let e = unpack_powervs_disk(&raw, &t.path().join("y")).unwrap_err();
        assert!(format!("{e:#}").contains("reading"), "{e:#}");
    }

    #[test]
    fn ovf_renders_with_the_disk_facts() {
        let o = OvfInfo {
            name: "cosa-sample".into(),
            version: "1.2".into(),
            arch: "x86_64".into(),
            os_type: "rhel9_64Guest".into(),
            hw_version: 13,
            secure_boot: true,
        };
        let v = render_ovf(false, &o, "disk.vmdk", 123, 456).unwrap();
        assert!(
            v.contains(r#"ovf:href="disk.vmdk" ovf:id="file1" ovf:size="123""#),
            "{v}"
        );
        assert!(v.contains(r#"ovf:capacity="456""#));
        assert!(v.contains("vmx-13") && v.contains(r#"vmw:osType="rhel9_64Guest""#));
        let vb = render_ovf(true, &o, "disk.vmdk", 1, 2).unwrap();
        assert!(vb.contains("virtualbox-2.2"));
        let p = render_powervs_ovf(
            &OvfInfo {
                arch: "ppc64le".into(),
                ..o
            },
            "disk.raw",
            789,
        )
        .unwrap();
        assert!(
            p.contains(r#"<ovf:File href="disk.raw" id="file1" size="789"/>"#),
            "{p}"
        );
        assert!(p.contains(r#"capacity="128849018880""#), "{p}");
        assert!(p.contains("<ovf:Name>cosa-sample-1.2</ovf:Name>"), "{p}");
        assert!(p.contains(">ppc64le</ibmpvc:architecture>"), "{p}");
    }
}
