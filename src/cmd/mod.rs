//! One function per verb; each takes the global options and its own.

pub mod build;
pub mod buildfetch;
pub mod builds;
pub mod buildupload;
pub mod compose;
pub mod compress;
pub mod fetch;
pub mod image;
pub mod init;
pub mod kola;
pub mod live;
pub mod push_container;
pub mod rebuild_verify;
pub mod release;
pub mod sign;

use anyhow::{Result, bail, ensure};

use crate::config::workdir::Workdir;
use crate::store::builds::BuildsJson;

/// The build id and arch that `--build`/`--arch` name (default: the latest
/// build, the host's arch), checked to be a part of builds.json.
pub(crate) fn resolve_part(
    wd: &Workdir,
    build: Option<&str>,
    arch: Option<&str>,
) -> Result<(String, String)> {
    let builds_dir = wd.builds_dir();
    if !builds_dir.join(crate::store::builds::BUILDS_JSON).exists() {
        bail!(
            "no builds yet in {}: run `cosa build`",
            builds_dir.display()
        );
    }
    let builds = BuildsJson::load(&builds_dir)?;
    let arch = crate::util::target_arch(arch)?;
    let id = builds.resolve(build)?;
    ensure!(
        builds.has_arch(&id, &arch),
        "build {id} has no {arch} part; `cosa list` shows the builds and their arches"
    );
    Ok((id, arch))
}
