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
    Ok(time::yyyymmdd(version_secs(lock_generated)?))
}

/// The time a version's date comes from: the lockfile's generation time
/// when there is one, else now (`SOURCE_DATE_EPOCH` honoured).
pub fn version_secs(lock_generated: Option<&str>) -> Result<i64> {
    match lock_generated {
        Some(g) => time::parse_rfc3339(g)
            .with_context(|| format!("reading the lockfile's metadata.generated {g:?}")),
        None => Ok(time::now_secs()),
    }
}

/// The version of a new build from the treefile's
/// `automatic-version-prefix` and `automatic-version-suffix` (default `.`).
pub fn auto_version_for(
    prefix: &str,
    suffix: Option<&str>,
    lock_generated: Option<&str>,
    builds: &BuildsJson,
) -> Result<String> {
    let suffix = match suffix {
        None => '.',
        Some(s) if s.len() == 1 && s.is_ascii() => s.chars().next().unwrap_or('.'),
        Some(s) => bail!("automatic-version-suffix {s:?} must be one ASCII character"),
    };
    let (rendered, dated) = render_version_prefix(prefix, version_secs(lock_generated)?)?;
    let v = next_auto_version(
        &rendered,
        suffix,
        dated,
        builds.builds.iter().map(|b| b.id.as_str()),
    );
    check_build_id(&v).with_context(|| {
        format!("automatic-version-prefix {prefix:?} gives version {v:?}, which is not a usable build id")
    })?;
    Ok(v)
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

/// rpm-ostree's `automatic-version-prefix` rendered at `secs`: every
/// `<date:FORMAT>` becomes the UTC date in that strftime format. Returns the
/// prefix and whether it had a date tag.
pub fn render_version_prefix(prefix: &str, secs: i64) -> Result<(String, bool)> {
    let mut out = String::new();
    let mut rest = prefix;
    let mut dated = false;
    while let Some(i) = rest.find("<date:") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 6..];
        let end = after.find('>').with_context(|| {
            format!("automatic-version-prefix {prefix:?}: <date: is not closed by >")
        })?;
        out.push_str(
            &time::strftime_utc(&after[..end], secs)
                .with_context(|| format!("automatic-version-prefix {prefix:?}"))?,
        );
        dated = true;
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok((out, dated))
}

/// The next version after `existing` for a rendered prefix, as rpm-ostree's
/// `util_next_version` does with the previous version, but over every
/// existing build: without a date tag the first version is the prefix
/// itself, with one it is `<prefix><suffix>0`; after that one more than the
/// highest number found after `<prefix><suffix>` (its leading digits, so
/// `41.20240520.dev.2-1` counts as 2).
pub fn next_auto_version<'a>(
    prefix: &str,
    suffix: char,
    dated: bool,
    existing: impl IntoIterator<Item = &'a str>,
) -> String {
    let with_sep = format!("{prefix}{suffix}");
    let highest = existing
        .into_iter()
        .filter_map(|id| {
            if id == prefix {
                return Some(0);
            }
            let rest = id.strip_prefix(&with_sep)?;
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            Some(digits.parse::<u64>().unwrap_or(0))
        })
        .max();
    match highest {
        None if !dated => prefix.to_string(),
        None => format!("{with_sep}0"),
        Some(n) => format!("{with_sep}{}", n + 1),
    }
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
    fn automatic_version_prefix_as_rpm_ostree() {
        // 2024-05-20T01:02:03Z
        let t = 1_716_166_923;
        let (p, dated) = render_version_prefix("41.<date:%Y%m%d>.dev", t).unwrap();
        assert_eq!((p.as_str(), dated), ("41.20240520.dev", true));
        assert_eq!(next_auto_version(&p, '.', dated, []), "41.20240520.dev.0");
        assert_eq!(
            next_auto_version(
                &p,
                '.',
                dated,
                [
                    "41.20240520.dev.0",
                    "41.20240520.dev.2-1",
                    "41.20240519.dev.7"
                ]
            ),
            "41.20240520.dev.3"
        );
        let (p, dated) = render_version_prefix("10", t).unwrap();
        assert!(!dated);
        for v in [&[][..], &["xyz", "9", "10001", "101.1"][..]] {
            assert_eq!(next_auto_version(&p, '.', dated, v.iter().copied()), "10");
        }
        assert_eq!(next_auto_version("10", '.', false, ["10"]), "10.1");
        assert_eq!(next_auto_version("10", '.', false, ["10.1.5"]), "10.2");
        assert_eq!(next_auto_version("10.1", '.', false, ["10.1.2x"]), "10.1.3");
        assert_eq!(next_auto_version("10", '-', false, ["10-1"]), "10-2");
        assert_eq!(
            render_version_prefix("a.<date: %y-%j %H:%M:%S %%>", t)
                .unwrap()
                .0,
            "a. 24-141 01:02:03 %"
        );
        assert!(render_version_prefix("1.<date:%Q>", t).is_err());
        assert!(render_version_prefix("1.<date:%Y", t).is_err());
    }

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
