//! Small helpers shared by every room: logging, atomic file writes, running
//! external programs, progress output, architecture names.

pub mod cmd;
pub mod cpio;
pub mod digest;
pub mod progress;
pub mod scratch;
pub mod time;

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};

/// Set up tracing on stderr; `-v` gives debug, `-vv` trace; RUST_LOG overrides.
pub fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .try_init();
}

/// Write `data` to `path` through a temp file in the same directory and a
/// rename: readers see the old file or the new one, never half of one.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a temp file in {}", dir.display()))?;
    tmp.write_all(data)
        .and_then(|_| tmp.as_file().sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("renaming into {}", path.display()))?;
    Ok(())
}

/// Serialize `value` as pretty JSON (with a final newline) and write it atomically.
pub fn write_json_atomic<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut data = serde_json::to_vec_pretty(value)?;
    data.push(b'\n');
    write_atomic(path, &data)
}

/// The host's architecture in rpm's naming (`x86_64`, `aarch64`, `s390x`, `ppc64le`).
/// The HTTP client of cosa's downloads and fetches: cosa's user agent,
/// 30 s to connect, 120 s without a byte read.
pub fn http_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent(concat!("cosa/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(std::time::Duration::from_secs(30))
        .read_timeout(std::time::Duration::from_secs(120))
        .build()
        .context("creating the HTTP client")
}

pub fn host_arch() -> &'static str {
    std::env::consts::ARCH
        .replace("powerpc64", "ppc64le")
        .leak()
}

/// The arches whose packages install on `basearch` (noarch plus its own).
/// No multilib unless asked for: i686 is not compatible with x86_64 here.
pub fn compatible_arches(basearch: &str) -> Vec<&'static str> {
    match basearch {
        "x86_64" => vec!["x86_64", "noarch"],
        "aarch64" => vec!["aarch64", "noarch"],
        "s390x" => vec!["s390x", "noarch"],
        "ppc64le" => vec!["ppc64le", "noarch"],
        _ => vec!["noarch"],
    }
}

/// Validate an `--arch` value, or take the host's.
pub fn target_arch(arch: Option<&str>) -> Result<String> {
    let a = arch.unwrap_or_else(|| host_arch());
    match a {
        "x86_64" | "aarch64" | "s390x" | "ppc64le" => Ok(a.to_string()),
        other => {
            bail!("unsupported architecture {other:?}: use one of x86_64, aarch64, s390x, ppc64le")
        }
    }
}
