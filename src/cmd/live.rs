//! `cosa buildextend-live`: the live ISO, PXE kernel, initramfs and rootfs
//! of an existing build (src/image/live.rs), recorded in its meta.json under
//! images.live-iso, live-kernel, live-initramfs and live-rootfs.

use anyhow::{Context, Result};

use crate::cli::{GlobalOpts, LiveOpts};
use crate::config::workdir::Workdir;
use crate::image::{MadeImage, live};
use crate::store::lock::WorkdirLock;

pub fn buildextend_live(global: &GlobalOpts, opts: LiveOpts) -> Result<()> {
    let wd = Workdir::open(&global.workdir)?;
    let lock = WorkdirLock::acquire(&wd.root)?;
    let (id, arch) = super::resolve_part(
        &wd,
        opts.target.build.as_deref(),
        opts.target.arch.as_deref(),
    )?;
    let b = super::image::OpenBuild::open(&wd, &lock, &id, &arch)?;
    let keys: Vec<String> = live::KEYS.map(String::from).to_vec();
    let mut summary = String::new();
    b.replace(&keys, || {
        let made = live::build_live(&b.image_build())
            .with_context(|| format!("making the live media of build {id} ({arch})"))?;
        summary = format!(
            "Live media made in {:.1}s; ISO label {}, kernel arguments: {}",
            made.seconds,
            made.label,
            made.kargs.join(" ")
        );
        // As upstream: the ISO and PXE files are shipped as they are.
        Ok(made
            .files
            .iter()
            .map(|(key, file)| {
                // The ISO's boot loader: from the tree or the host, as disk
                // images record theirs.
                let mut extra = serde_json::Map::new();
                if key == "live-iso" {
                    extra.insert("bootloader".into(), made.bootloader.clone());
                }
                MadeImage {
                    platform: key.clone(),
                    file: file.clone(),
                    skip_compression: true,
                    extra,
                }
            })
            .collect())
    })?;
    eprintln!("{summary}");
    Ok(())
}
