//! Helpers shared by the install_* integration tests: build fixture RPMs
//! and turn them into (PackageMeta, path) pairs for `install`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use crate::fixture::PkgSpec;
use cosa::compose::install::{InstallOptions, ScriptPolicy};
use cosa::rpm::PackageMeta;

pub fn meta(spec: &PkgSpec) -> PackageMeta {
    PackageMeta {
        name: spec.name.clone(),
        epoch: spec.epoch,
        version: spec.version.clone(),
        release: spec.release.clone(),
        arch: spec.arch.clone(),
        ..Default::default()
    }
}

/// Build every spec into `dir`.
pub fn build(dir: &Path, specs: &[PkgSpec]) -> Vec<(PackageMeta, PathBuf)> {
    std::fs::create_dir_all(dir).unwrap();
    specs
        .iter()
        .map(|s| (meta(s), s.build(dir).unwrap()))
        .collect()
}

pub fn opts() -> InstallOptions {
    InstallOptions {
        documentation: true,
        remove_from_packages: vec![],
        scripts: ScriptPolicy::Run,
        basearch: cosa::util::host_arch().to_string(),
        previous_ids: None,
        install_langs: None,
        sysusers: cosa::compose::sysusers::Sysusers::ComposeAuto,
    }
}

pub fn run(cmd: &str) -> String {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{cmd} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
