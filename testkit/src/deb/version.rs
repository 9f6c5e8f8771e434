//! Debian versions (`[epoch:]upstream[-revision]`) and their rpm form.
//!
//! Mapping to rpm's Epoch / Version / Release:
//!
//! - Epoch: Debian's epoch (absent = 0, as in Debian; rpm treats an absent
//!   epoch as 0 too).
//! - Version: the upstream version with `-` (allowed by Debian when a
//!   revision follows) and `:` (allowed when an epoch precedes) mapped to
//!   `_`, which rpm forbids neither. No Debian version contains `_`, so the
//!   mapping is one-to-one. rpm treats every non-alphanumeric character
//!   other than `~` and `^` as a separator, so `-`, `:`, `.`, `+` and `_`
//!   all compare alike there (see the accepted disagreements below).
//! - Release: the Debian revision; a native package (no revision) gets
//!   `0`. dpkg compares an absent revision equal to `0`, so this keeps the
//!   order.
//! - `~` keeps its meaning: rpm also sorts `~` before everything, even the
//!   end of the string.
//!
//! Versioned relations use the same mapping and always carry the release
//! (`0` when the Debian version has none): rpm ignores the release of a
//! package when a dependency names none, so `>> 1.2` would otherwise not be
//! satisfied by `1.2-1`, and `<= 1.2` would be by `1.2-1`, both unlike dpkg.
//!
//! Accepted ordering disagreements between dpkg and rpm (checked by the
//! tests, so a change in either shows):
//!
//! - Separators: dpkg orders non-alphanumerics by character (`~` < end <
//!   letters < `+` < `-` < `.` < `:`), rpm skips runs of them, so
//!   `1.0+1` < `1.0.1` for dpkg but they are equal for rpm; likewise
//!   `1+a` vs `1.a`, and `1.0` vs `1.0.` / `1.0+` (dpkg: less, rpm:
//!   equal).
//! - A letter run against a separator: dpkg puts letters before
//!   non-letters (`1.0a` < `1.0.a`); rpm skips the `.` and compares `a`
//!   with `a` (equal).
//! - Leading zeros: both compare digit runs numerically, so they agree.
//! - Letters vs. the end: dpkg `1.0a` > `1.0`, rpm also (a trailing
//!   segment wins); agree.

use anyhow::{Context, Result, bail};

/// A parsed Debian version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebVersion {
    pub epoch: u32,
    pub upstream: String,
    pub revision: Option<String>,
}

/// rpm's epoch, version and release of a Debian version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpmEvr {
    pub epoch: u32,
    pub version: String,
    pub release: String,
}

impl RpmEvr {
    /// `[E:]V-R`, the form a versioned dependency carries (the epoch only
    /// when not 0).
    pub fn dep_string(&self) -> String {
        if self.epoch == 0 {
            format!("{}-{}", self.version, self.release)
        } else {
            format!("{}:{}-{}", self.epoch, self.version, self.release)
        }
    }
}

impl DebVersion {
    /// Parse a version as dpkg does (`lib/dpkg/parsehelp.c`): the epoch is
    /// what precedes the first `:`, the revision what follows the last `-`.
    pub fn parse(s: &str) -> Result<DebVersion> {
        let s = s.trim();
        if s.is_empty() || s.contains(char::is_whitespace) {
            bail!("bad Debian version {s:?}: empty or contains blanks");
        }
        let (epoch, rest) = match s.split_once(':') {
            Some((e, rest)) => {
                let e = e
                    .parse::<u32>()
                    .with_context(|| format!("bad epoch in Debian version {s:?}"))?;
                (e, rest)
            }
            None => (0, s),
        };
        let (upstream, revision) = match rest.rsplit_once('-') {
            Some((u, r)) => (u, Some(r)),
            None => (rest, None),
        };
        if !upstream.starts_with(|c: char| c.is_ascii_digit()) {
            bail!("bad Debian version {s:?}: the upstream version must start with a digit");
        }
        let ok_up = |c: char| c.is_ascii_alphanumeric() || ".+~-:".contains(c);
        if let Some(c) = upstream.chars().find(|&c| !ok_up(c)) {
            bail!("bad Debian version {s:?}: {c:?} in the upstream version");
        }
        if let Some(r) = revision {
            let ok_rev = |c: char| c.is_ascii_alphanumeric() || ".+~".contains(c);
            if r.is_empty() {
                bail!("bad Debian version {s:?}: empty revision");
            }
            if let Some(c) = r.chars().find(|&c| !ok_rev(c)) {
                bail!("bad Debian version {s:?}: {c:?} in the revision");
            }
        }
        Ok(DebVersion {
            epoch,
            upstream: upstream.to_string(),
            revision: revision.map(str::to_string),
        })
    }

    /// The rpm form (see the module documentation).
    pub fn to_rpm(&self) -> RpmEvr {
        RpmEvr {
            epoch: self.epoch,
            version: self.upstream.replace(['-', ':'], "_"),
            release: self.revision.clone().unwrap_or_else(|| "0".to_string()),
        }
    }
}

/// Parse and map in one go.
pub fn rpm_evr(deb_version: &str) -> Result<RpmEvr> {
    Ok(DebVersion::parse(deb_version)?.to_rpm())
}

/// Compare two rpm EVRs as rpm does (epoch, then version, then release
/// with `rpmvercmp`).
pub fn rpm_evr_cmp(a: &RpmEvr, b: &RpmEvr) -> std::cmp::Ordering {
    use cosa::rpm::vercmp::rpmvercmp;
    a.epoch
        .cmp(&b.epoch)
        .then_with(|| rpmvercmp(&a.version, &b.version))
        .then_with(|| rpmvercmp(&a.release, &b.release))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering;

    fn evr(s: &str) -> (u32, String, String) {
        let e = rpm_evr(s).unwrap();
        (e.epoch, e.version, e.release)
    }

    #[test]
    fn deb_versions_map_to_rpm_evrs() {
        assert_eq!(
            evr("2.36-9+deb12u4"),
            (0, "2.36".into(), "9+deb12u4".into())
        );
        assert_eq!(
            evr("1:9.2p1-2+deb12u3"),
            (1, "9.2p1".into(), "2+deb12u3".into())
        );
        // Native: release 0.
        assert_eq!(evr("1.12"), (0, "1.12".into(), "0".into()));
        assert_eq!(evr("3.2.0~rc1"), (0, "3.2.0~rc1".into(), "0".into()));
        // `-` inside the upstream version (a revision follows).
        assert_eq!(evr("1.0-rc1-3"), (0, "1.0_rc1".into(), "3".into()));
        // `:` inside the upstream version (an epoch precedes).
        assert_eq!(evr("2:1.2:3-4"), (2, "1.2_3".into(), "4".into()));
        assert_eq!(evr("1.2.3-0~exp1"), (0, "1.2.3".into(), "0~exp1".into()));
        assert_eq!(rpm_evr("1:2.3").unwrap().dep_string(), "1:2.3-0");
        assert_eq!(rpm_evr("2.3-4").unwrap().dep_string(), "2.3-4");
    }

    #[test]
    fn bad_versions_are_refused() {
        for bad in ["", "a1.0", "x:1.0", "1.0-", "1.0-r_1", "1 0", "1.0_1", "-1"] {
            assert!(DebVersion::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    /// dpkg's answer for `a` vs `b`.
    fn dpkg_cmp(a: &str, b: &str) -> Ordering {
        let rel = |op: &str| {
            std::process::Command::new("dpkg")
                .args(["--compare-versions", a, op, b])
                .status()
                .expect("running dpkg --compare-versions")
                .success()
        };
        if rel("lt") {
            Ordering::Less
        } else if rel("eq") {
            Ordering::Equal
        } else {
            assert!(rel("gt"), "dpkg finds no order for {a} and {b}");
            Ordering::Greater
        }
    }

    /// Real version pairs (bookworm packages and their updates, and the
    /// corner cases of both algorithms): the mapped rpm EVRs compare as
    /// dpkg compares the Debian versions, except the accepted
    /// disagreements listed in the module documentation.
    #[test]
    fn ordering_agrees_with_dpkg() {
        let agree = [
            ("2.36-9+deb12u4", "2.36-9+deb12u10"),
            ("2.36-9", "2.36-9+deb12u4"),
            ("1:9.2p1-2+deb12u3", "1:9.2p1-2+deb12u5"),
            ("1:9.2p1-2", "9.3p1-1"),
            ("252.30-1~deb12u2", "252.31-1~deb12u1"),
            ("252.17-1~deb12u1", "252.17-1"),
            ("3.0.15-1~deb12u1", "3.0.16-1~deb12u1"),
            ("6.1.0-18", "6.1.0-18+b1"),
            ("1.2.13.dfsg-1", "1:1.2.13.dfsg-1"),
            ("1.0~rc1-1", "1.0-1"),
            ("1.0~rc1", "1.0~rc2"),
            ("1.0~~", "1.0~"),
            ("1.0", "1.0-0"),
            ("1.0", "1.0-1"),
            ("1.0-0~exp1", "1.0"),
            ("1.0", "1.0a"),
            ("1.0a", "1.0.1"),
            ("1.0", "1.0.0"),
            ("1.01", "1.1"),
            ("1.0+dfsg", "1.0.1"),
            ("2.38.1-5+deb12u1", "2.38.1-5+deb12u3"),
            ("4.0.2-3", "2:4.0.2-3"),
            ("1.0-rc1-3", "1.0-rc2-1"),
            ("0.20.2-1", "0.20.10-1"),
            ("1.5.2-6+deb12u1", "1.5.2-6+deb12u2"),
            ("12.2.0-14", "12.2.0-14+deb12u1"),
            ("1.0+b1", "1.0+b2"),
            ("1.0", "1.0+b1"),
            ("9.2p1", "9.2p2"),
        ];
        let disagree = [
            ("1.0+1", "1.0.1"),
            ("1+a", "1.a"),
            ("1.0", "1.0+"),
            ("1.0a", "1.0.a"),
            ("1.0-1+b1", "1.0-1.b1"),
        ];
        let rpm = |a: &str, b: &str| rpm_evr_cmp(&rpm_evr(a).unwrap(), &rpm_evr(b).unwrap());
        for (a, b) in agree {
            for (x, y) in [(a, b), (b, a), (a, a)] {
                assert_eq!(
                    rpm(x, y),
                    dpkg_cmp(x, y),
                    "rpm and dpkg order {x} vs {y} apart"
                );
            }
        }
        for (a, b) in disagree {
            assert_ne!(
                rpm(a, b),
                dpkg_cmp(a, b),
                "{a} vs {b}: listed as a disagreement, but rpm and dpkg agree"
            );
            assert_eq!(rpm(a, b), Ordering::Equal, "{a} vs {b}");
        }
    }
}
