//! Stream versions `X.YYYYMMDD.Z.N` (Fedora CoreOS style): `X` the release
//! version of the OS (`releasever`), `YYYYMMDD` the date the content was
//! snapshotted, `Z` the stream code (see [`super::streams`]) and `N` a
//! revision counter: the first free one among the existing builds and
//! published releases with the same `X.YYYYMMDD.Z`, starting at 0.

use std::sync::OnceLock;

use anyhow::{Context, Result, bail};
use regex::Regex;

use super::streams::{Stream, StreamType};
use crate::store::builds::BuildsJson;

/// A parsed stream version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct StreamVersion {
    pub releasever: u64,
    /// `YYYYMMDD` as a number (ordering is date order).
    pub date: u32,
    pub stream_code: u64,
    pub revision: u64,
}

impl std::fmt::Display for StreamVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}.{:08}.{}.{}",
            self.releasever, self.date, self.stream_code, self.revision
        )
    }
}

fn version_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^(\d+)\.(\d{8})\.(\d+)\.(\d+)$").expect("static regex"))
}

fn is_leap(y: u32) -> bool {
    (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400)
}

/// Check that `yyyymmdd` is eight digits naming a real calendar day.
pub fn validate_date(yyyymmdd: &str) -> Result<()> {
    if yyyymmdd.len() != 8 || !yyyymmdd.bytes().all(|b| b.is_ascii_digit()) {
        bail!("date {yyyymmdd:?} is not eight digits YYYYMMDD");
    }
    let y: u32 = yyyymmdd[0..4].parse().context("year")?;
    let m: u32 = yyyymmdd[4..6].parse().context("month")?;
    let d: u32 = yyyymmdd[6..8].parse().context("day")?;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => bail!("date {yyyymmdd}: month {m:02} does not exist"),
    };
    if d == 0 || d > days {
        bail!("date {yyyymmdd}: day {d:02} does not exist in {y:04}-{m:02} ({days} days)");
    }
    Ok(())
}

/// Parse and validate a stream version (`^\d+\.\d{8}\.\d+\.\d+$` and a real date).
pub fn parse(version: &str) -> Result<StreamVersion> {
    let caps = version_re().captures(version).with_context(|| {
        format!("version {version:?} is not of the form X.YYYYMMDD.Z.N (e.g. 39.20231101.3.0)")
    })?;
    let num = |i: usize, what: &str| -> Result<u64> {
        caps[i]
            .parse::<u64>()
            .with_context(|| format!("version {version}: {what} {:?} is too large", &caps[i]))
    };
    validate_date(&caps[2]).with_context(|| format!("version {version}"))?;
    let v = StreamVersion {
        releasever: num(1, "release version")?,
        date: caps[2].parse().context("date digits")?,
        stream_code: num(3, "stream code")?,
        revision: num(4, "revision")?,
    };
    // One spelling per version: `1.20260101.02.00` would sit beside
    // `1.20260101.2.0` in releases.json as another release.
    if v.to_string() != version {
        bail!("version {version:?} is not written canonically (no leading zeros): write {v}");
    }
    Ok(v)
}

/// Validate a stream version; see [`parse`].
pub fn validate(version: &str) -> Result<()> {
    parse(version).map(|_| ())
}

/// The next stream version for `releasever`, `date_yyyymmdd` and
/// `stream_code`: revision N is one more than the highest revision among
/// `existing_versions` (builds and published releases) with the same
/// `X.YYYYMMDD.Z`, or 0. Existing entries that are not stream versions
/// (e.g. dev builds `39.20231101.dev.0`) are ignored.
pub fn stream_version<S: AsRef<str>>(
    releasever: u64,
    date_yyyymmdd: &str,
    stream_code: u64,
    existing_versions: &[S],
) -> Result<String> {
    validate_date(date_yyyymmdd)?;
    let date: u32 = date_yyyymmdd.parse().context("date digits")?;
    let next = existing_versions
        .iter()
        .filter_map(|v| parse(v.as_ref()).ok())
        .filter(|v| v.releasever == releasever && v.date == date && v.stream_code == stream_code)
        .map(|v| v.revision + 1)
        .max()
        .unwrap_or(0);
    let v = StreamVersion {
        releasever,
        date,
        stream_code,
        revision: next,
    };
    Ok(v.to_string())
}

/// Refuse `version` if it is not a valid stream version or if it already
/// exists among `existing_versions` (a clash with a build or a release).
pub fn ensure_new<S: AsRef<str>>(version: &str, existing_versions: &[S]) -> Result<()> {
    validate(version)?;
    if existing_versions.iter().any(|v| v.as_ref() == version) {
        bail!("version {version} already exists (a build or a published release has it)");
    }
    Ok(())
}

/// The version of a `cosa build --stream`: `X.YYYYMMDD.Z.N` with X the
/// manifest's `releasever`, Y the lockfile's `metadata.generated` date
/// (`generated`; today for a mechanical stream or without one), Z the
/// stream's code and N the next free revision among `builds` and the
/// stream's `released` versions. An `explicit` version (`--version`) is
/// validated instead: form, real date, the stream's code, the releasever,
/// and no clash with a build of `arch` or a released version.
pub fn build_version(
    stream: &Stream,
    released: &[String],
    explicit: Option<&str>,
    releasever: &str,
    generated: Option<&str>,
    builds: &BuildsJson,
    arch: &str,
) -> Result<String> {
    let x: u64 = releasever.parse().with_context(|| {
        format!("releasever {releasever:?} is not a number, as stream versions X.YYYYMMDD.Z.N need")
    })?;
    if let Some(v) = explicit {
        let sv = parse(v).with_context(|| format!("--version {v:?}"))?;
        if sv.stream_code != stream.code {
            bail!(
                "--version {v}: stream code {} is not the code of stream {} ({})",
                sv.stream_code,
                stream.name,
                stream.code
            );
        }
        if sv.releasever != x {
            bail!(
                "--version {v}: release version {} is not the manifest's releasever {x}",
                sv.releasever
            );
        }
        if builds.has_arch(v, arch) {
            bail!("--version {v}: build {v} for {arch} already exists");
        }
        if released.iter().any(|r| r == v) {
            bail!(
                "--version {v}: {v} is already released on stream {}",
                stream.name
            );
        }
        return Ok(v.to_string());
    }
    let generated = generated.filter(|_| stream.kind != StreamType::Mechanical);
    let date = crate::store::version::version_date(generated)?;
    let mut existing: Vec<&str> = builds.builds.iter().map(|b| b.id.as_str()).collect();
    existing.extend(released.iter().map(String::as_str));
    stream_version(x, &date, stream.code, &existing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_versions_parse() {
        assert_eq!(
            parse("1.20260101.2.0").unwrap().to_string(),
            "1.20260101.2.0"
        );
        for bad in ["1.20260101.02.00", "01.20260101.2.0", "1.20260101.2.00"] {
            let e = format!("{:#}", parse(bad).unwrap_err());
            assert!(
                e.contains("canonically") && e.contains("1.20260101.2.0"),
                "{bad}: {e}"
            );
        }
        assert!(ensure_new("1.20260101.02.00", &["x"]).is_err());
    }

    #[test]
    fn leap_years() {
        assert!(validate_date("20240229").is_ok());
        assert!(validate_date("20000229").is_ok());
        assert!(validate_date("19000229").is_err());
        assert!(validate_date("20231301").is_err());
        assert!(validate_date("20231100").is_err());
    }

    #[test]
    fn display_pads_date() {
        let v = parse("39.20231101.3.12").unwrap();
        assert_eq!(v.revision, 12);
        assert_eq!(v.to_string(), "39.20231101.3.12");
    }

    #[test]
    fn build_version_rule() {
        use crate::store::builds::BuildEntry;
        let stream = |kind| Stream {
            name: "testing".into(),
            code: 2,
            kind,
            promoted_from: None,
            bake_days: 0,
            publish: String::new(),
            required_arches: vec![],
            publish_dir: None,
        };
        let prod = stream(StreamType::Production);
        let builds = BuildsJson {
            schema_version: "1.0.0".into(),
            builds: vec![BuildEntry {
                id: "41.20260301.2.0".into(),
                arches: vec!["x86_64".into()],
                extra: Default::default(),
            }],
            timestamp: None,
            tags: None,
            extra: Default::default(),
        };
        let released = vec!["41.20260301.2.1".to_string()];
        let generated = Some("2026-03-01T08:00:00Z");
        let v = |explicit, rv, kind: &Stream| {
            build_version(kind, &released, explicit, rv, generated, &builds, "x86_64")
        };
        // The next revision after the builds and the released versions.
        assert_eq!(v(None, "41", &prod).unwrap(), "41.20260301.2.2");
        // A mechanical stream ignores the lockfile's date: today.
        let today = crate::store::version::version_date(None).unwrap();
        let mech = v(None, "41", &stream(StreamType::Mechanical)).unwrap();
        assert!(mech.starts_with(&format!("41.{today}.2.")), "{mech}");
        assert!(v(None, "fc41", &prod).is_err());
        // --version is checked, not generated.
        assert_eq!(
            v(Some("41.20260302.2.0"), "41", &prod).unwrap(),
            "41.20260302.2.0"
        );
        for (bad, why) in [
            ("41.20260302.3.0", "stream code 3"),
            ("40.20260302.2.0", "releasever 41"),
            ("41.20260301.2.0", "already exists"),
            ("41.20260301.2.1", "already released"),
            ("41.20260231.2.0", "--version"),
        ] {
            let e = format!("{:#}", v(Some(bad), "41", &prod).unwrap_err());
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
