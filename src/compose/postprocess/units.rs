//! `units` and `default-target`, as rpm-ostree's compose does them: each
//! unit of `units` is linked into `multi-user.target.wants` in the tree's
//! /etc (`/usr/lib/systemd/system/<unit>`, as `systemctl enable` would
//! write it), and `default-target` becomes the
//! `/usr/lib/systemd/system/default.target` link, in /usr so that
//! `systemctl preset-all` on first boot keeps it.

use std::path::Path;

use anyhow::{Context, Result, bail};

use super::{PostprocessReport, exists, remove_any};

/// Unit names as systemd accepts them: `name[@instance].type`.
fn check_unit_name(what: &str, unit: &str) -> Result<()> {
    const TYPES: &[&str] = &[
        "service",
        "socket",
        "target",
        "timer",
        "path",
        "mount",
        "automount",
        "swap",
        "slice",
        "scope",
        "device",
    ];
    let ok = unit.rsplit_once('.').is_some_and(|(stem, ty)| {
        TYPES.contains(&ty)
            && !stem.is_empty()
            && !stem.starts_with('@')
            && stem
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b":-_.\\@".contains(&b))
    });
    if !ok {
        bail!("{what}: {unit:?} is not a systemd unit name (name.service, name.target, ...)");
    }
    Ok(())
}

/// Where a unit file of `unit` is in the tree (a template instance is
/// served by its template), if anywhere.
fn find_unit(tree: &Path, unit: &str) -> Option<String> {
    let template = unit.split_once('@').and_then(|(p, rest)| {
        let ty = rest.rsplit_once('.')?.1;
        Some(format!("{p}@.{ty}"))
    });
    [
        "usr/lib/systemd/system",
        "etc/systemd/system",
        "usr/etc/systemd/system",
    ]
    .iter()
    .flat_map(|d| {
        [Some(unit.to_string()), template.clone()]
            .into_iter()
            .flatten()
            .map(move |u| format!("{d}/{u}"))
    })
    .find(|p| exists(&tree.join(p)))
}

/// Enable `units` in `tree` (before /etc moves to /usr/etc).
pub fn enable(tree: &Path, units: &[String], r: &mut PostprocessReport) -> Result<()> {
    if units.is_empty() {
        return Ok(());
    }
    let etc = if tree.join("etc").is_dir() {
        "etc"
    } else {
        "usr/etc"
    };
    let wants = tree
        .join(etc)
        .join("systemd/system/multi-user.target.wants");
    std::fs::create_dir_all(&wants).with_context(|| format!("creating {}", wants.display()))?;
    for unit in units {
        check_unit_name("treefile key units", unit)?;
        if find_unit(tree, unit).is_none() {
            bail!(
                "treefile key units: {unit} has no unit file in the tree (looked in /usr/lib/systemd/system and /etc/systemd/system)"
            );
        }
        let link = wants.join(unit);
        if exists(&link) {
            continue;
        }
        std::os::unix::fs::symlink(format!("/usr/lib/systemd/system/{unit}"), &link)
            .with_context(|| format!("linking {}", link.display()))?;
        r.units_enabled.push(unit.clone());
    }
    Ok(())
}

/// Point `/usr/lib/systemd/system/default.target` at `target`.
pub fn default_target(tree: &Path, target: &str) -> Result<()> {
    check_unit_name("treefile key default-target", target)?;
    if !target.ends_with(".target") {
        bail!("treefile key default-target: {target:?} is not a .target unit");
    }
    let dir = tree.join("usr/lib/systemd/system");
    if !dir.join(target).exists() {
        bail!("treefile key default-target: {target} has no unit file in /usr/lib/systemd/system");
    }
    let link = dir.join("default.target");
    remove_any(&link)?;
    std::os::unix::fs::symlink(target, &link).with_context(|| format!("linking {}", link.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_default_target() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path();
        let sys = t.join("usr/lib/systemd/system");
        std::fs::create_dir_all(&sys).unwrap();
        std::fs::create_dir_all(t.join("etc")).unwrap();
        for u in [
            "a.service",
            "getty@.service",
            "multi-user.target",
            "graphical.target",
        ] {
            std::fs::write(sys.join(u), "[Unit]\n").unwrap();
        }
        std::os::unix::fs::symlink("graphical.target", sys.join("default.target")).unwrap();
        let mut r = PostprocessReport::default();
        enable(
            t,
            &["a.service".into(), "getty@tty1.service".into()],
            &mut r,
        )
        .unwrap();
        let w = t.join("etc/systemd/system/multi-user.target.wants");
        assert_eq!(
            std::fs::read_link(w.join("a.service")).unwrap(),
            Path::new("/usr/lib/systemd/system/a.service")
        );
        assert!(exists(&w.join("getty@tty1.service")));
        assert_eq!(r.units_enabled, ["a.service", "getty@tty1.service"]);
        let e = enable(t, &["missing.service".into()], &mut r)
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.service has no unit file"), "{e}");
        assert!(enable(t, &["../x.service".into()], &mut r).is_err());
        default_target(t, "multi-user.target").unwrap();
        assert_eq!(
            std::fs::read_link(sys.join("default.target")).unwrap(),
            Path::new("multi-user.target")
        );
        assert!(default_target(t, "nope.target").is_err());
        assert!(default_target(t, "a.service").is_err());
    }
}
