//! Build ids for development builds: `X.YYYYMMDD.dev.N`.
//!
//! X is the releasever; the date is the lockfile's `metadata.generated` (so
//! that rebuilding the same locked inputs keeps the date) or, unlocked, the
//! build date (UTC, `SOURCE_DATE_EPOCH` honoured); N is the next free number.
//!
//! Upstream, this comes from rpm-ostree's `automatic-version-prefix`
//! (`${releasever}.<date:%Y%m%d>.dev` in fedora-coreos-config) and
//! `util_next_version`: with a date tag the first version is `prefix.0`, and
//! the next one is the previous *commit's* number plus one. We start at 0 as
//! upstream does, but take one more than the highest N among all builds in
//! builds.json with the same prefix, so a pruned or rebuilt-from-scratch ref
//! never yields an id that already exists. A build id with an image-genver
//! suffix (`41.20240520.dev.2-1`) counts as N = 2.

use anyhow::{Context, Result, bail};

use super::builds::{BuildsJson, check_build_id};
use crate::util::time;

/// `YYYYMMDD` for the version: the lockfile's generation date when there is
/// one, else today.
pub fn version_date(lock_generated: Option<&str>) -> Result<String> {
    match lock_generated {
        Some(g) => {
            let secs = time::parse_rfc3339(g)
                .with_context(|| format!("reading the lockfile's metadata.generated {g:?}"))?;
            Ok(time::yyyymmdd(secs))
        }
        None => Ok(time::yyyymmdd(time::now_secs())),
    }
}

/// The N of `id` if it is `<prefix>.N` or `<prefix>.N-<genver>`.
fn dev_number(prefix: &str, id: &str) -> Option<u64> {
    let rest = id.strip_prefix(prefix)?.strip_prefix('.')?;
    let num = rest.split_once('-').map_or(rest, |(n, _)| n);
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    num.parse().ok()
}

/// `X.YYYYMMDD.dev.N` with N one more than the highest among `existing`
/// (0 when none has this prefix).
pub fn next_dev_version<'a>(
    releasever: &str,
    date: &str,
    existing: impl IntoIterator<Item = &'a str>,
) -> Result<String> {
    if releasever.is_empty()
        || releasever.contains(['/', '.'])
        || releasever.contains(char::is_whitespace)
    {
        bail!("invalid releasever {releasever:?} for a build version");
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        bail!("invalid version date {date:?}: expected YYYYMMDD");
    }
    let prefix = format!("{releasever}.{date}.dev");
    let next = existing
        .into_iter()
        .filter_map(|id| dev_number(&prefix, id))
        .max()
        .map_or(0, |n| n + 1);
    Ok(format!("{prefix}.{next}"))
}

/// The dev version for a new build in a store: `lock_generated` is the
/// lockfile's `metadata.generated`, if any.
pub fn dev_version_for(
    releasever: &str,
    lock_generated: Option<&str>,
    builds: &BuildsJson,
) -> Result<String> {
    let date = version_date(lock_generated)?;
    next_dev_version(
        releasever,
        &date,
        builds.builds.iter().map(|b| b.id.as_str()),
    )
}

/// Check a user's `--version`: usable as a directory name and an ostree
/// version, and not an existing build for `arch`.
pub fn validate_user_version(version: &str, builds: &BuildsJson, arch: &str) -> Result<()> {
    check_build_id(version).with_context(|| format!("--version {version:?}"))?;
    if version.len() > 128 {
        bail!("--version {version:?} is longer than 128 characters");
    }
    if builds.has_arch(version, arch) {
        bail!(
            "--version {version:?}: build {version} for {arch} already exists; \
             pick another version or prune that build"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbering_starts_at_zero_and_takes_the_highest() {
        assert_eq!(
            next_dev_version("41", "20240520", []).unwrap(),
            "41.20240520.dev.0"
        );
        let ids = [
            "41.20240520.dev.0",
            "41.20240520.dev.3-1",
            "41.20240520.dev.1",
            "41.20240519.dev.9",
            "40.20240520.dev.7",
            "41.20240520.dev.x",
        ];
        assert_eq!(
            next_dev_version("41", "20240520", ids).unwrap(),
            "41.20240520.dev.4"
        );
        assert_eq!(
            next_dev_version("41", "20240521", ids).unwrap(),
            "41.20240521.dev.0"
        );
        assert!(next_dev_version("4/1", "20240520", []).is_err());
        assert!(next_dev_version("41", "2024052", []).is_err());
    }

    #[test]
    fn dev_number_parsing() {
        assert_eq!(dev_number("1.2.dev", "1.2.dev.10"), Some(10));
        assert_eq!(dev_number("1.2.dev", "1.2.dev.10-2"), Some(10));
        assert_eq!(dev_number("1.2.dev", "1.2.dev10"), None);
        assert_eq!(dev_number("1.2.dev", "1.2.dev."), None);
        assert_eq!(dev_number("1.2.dev", "1.2.devel.1"), None);
    }
}
