//! The SELinux policy store moves from /var into /etc, as rpm-ostree's
//! `postprocess_selinux_policy_store_location` does it: an OSTree commit
//! carries no /var, yet `semodule` needs the store on the deployed system
//! (ostree runs `semodule -N --rebuild-if-modules-changed` in every new
//! deployment after merging /etc). When the policy package left its store
//! in `/var/lib/selinux/<SELINUXTYPE>` (Fedora's and Debian's do), the
//! store's contents go to `/usr/etc/selinux/<SELINUXTYPE>/` and
//! `semanage.conf` gets `store-root=/etc/selinux`. The tmpfiles line
//! `L /var/lib/selinux - - - - ../../etc/selinux` (see
//! [`super::tmpfiles`]) points the old path at the new place.

use std::path::Path;

use anyhow::{Context, Result};

use super::{PostprocessReport, exists};

pub const SEMANAGE_CONF: &str = "usr/etc/selinux/semanage.conf";
const STORE_ROOT: &str = "\nstore-root=/etc/selinux\n";

/// `SELINUXTYPE` of `usr/etc/selinux/config`, if the tree has a policy.
fn policy_name(tree: &Path) -> Result<Option<String>> {
    let config = tree.join("usr/etc/selinux/config");
    if !config.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&config)
        .with_context(|| format!("reading {}", config.display()))?;
    Ok(text.lines().find_map(|l| {
        l.trim()
            .strip_prefix("SELINUXTYPE=")
            .map(|v| v.trim().trim_matches('"').to_string())
            .filter(|v| !v.is_empty() && !v.contains('/'))
    }))
}

/// Move the policy store out of /var (after /etc became /usr/etc and
/// before /var turns into tmpfiles.d lines). Returns whether it moved.
pub fn move_store(tree: &Path, r: &mut PostprocessReport) -> Result<bool> {
    let Some(name) = policy_name(tree)? else {
        return Ok(false);
    };
    let var_store = tree.join("var/lib/selinux").join(&name);
    if !var_store.join("active/modules").is_dir() {
        return Ok(false);
    }
    // semanage.conf: where semodule finds the store from now on.
    let conf = tree.join(SEMANAGE_CONF);
    if exists(&conf) {
        let text = std::fs::read_to_string(&conf)
            .with_context(|| format!("reading {}", conf.display()))?;
        if !text.contains(STORE_ROOT) {
            std::fs::write(&conf, format!("{text}{STORE_ROOT}"))
                .with_context(|| format!("writing {}", conf.display()))?;
        }
    } else {
        r.warn(format!(
            "the SELinux policy store moved from /var/lib/selinux/{name} to /etc/selinux/{name}, \
             but the tree has no /etc/selinux/semanage.conf to say so (store-root): semodule on \
             the deployed system will not find it"
        ));
    }
    let etc_store = tree.join("usr/etc/selinux").join(&name);
    std::fs::create_dir_all(&etc_store)
        .with_context(|| format!("creating {}", etc_store.display()))?;
    let mut entries: Vec<_> = std::fs::read_dir(&var_store)
        .with_context(|| format!("reading {}", var_store.display()))?
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("reading {}", var_store.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let to = etc_store.join(e.file_name());
        anyhow::ensure!(
            !exists(&to),
            "the SELinux policy store's {} is in both /var/lib/selinux/{name} and \
             /etc/selinux/{name}: which one is the store?",
            e.file_name().to_string_lossy()
        );
        std::fs::rename(e.path(), &to)
            .with_context(|| format!("moving {} to {}", e.path().display(), to.display()))?;
    }
    r.moved(
        &format!("var/lib/selinux/{name}"),
        &format!("usr/etc/selinux/{name}"),
    );
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree_with_store(conf: bool) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let etc = t.path().join("usr/etc/selinux");
        std::fs::create_dir_all(etc.join("targeted/contexts")).unwrap();
        std::fs::write(
            etc.join("config"),
            "SELINUX=enforcing\nSELINUXTYPE=targeted\n",
        )
        .unwrap();
        if conf {
            std::fs::write(etc.join("semanage.conf"), "expand-check=0").unwrap();
        }
        let store = t.path().join("var/lib/selinux/targeted");
        std::fs::create_dir_all(store.join("active/modules/100/base")).unwrap();
        std::fs::write(store.join("active/modules/100/base/cil"), "x").unwrap();
        std::fs::write(store.join("semanage.read.LOCK"), "").unwrap();
        t
    }

    #[test]
    fn the_store_moves_into_etc_and_semanage_conf_says_so() {
        let t = tree_with_store(true);
        let mut r = PostprocessReport::default();
        assert!(move_store(t.path(), &mut r).unwrap());
        let etc = t.path().join("usr/etc/selinux/targeted");
        assert_eq!(
            std::fs::read_to_string(etc.join("active/modules/100/base/cil")).unwrap(),
            "x"
        );
        assert!(etc.join("semanage.read.LOCK").is_file());
        assert!(etc.join("contexts").is_dir());
        let store = t.path().join("var/lib/selinux/targeted");
        assert_eq!(std::fs::read_dir(&store).unwrap().count(), 0);
        let conf = std::fs::read_to_string(t.path().join(SEMANAGE_CONF)).unwrap();
        assert_eq!(conf, "expand-check=0\nstore-root=/etc/selinux\n");
        // Twice is harmless: nothing left in /var, semanage.conf unchanged.
        assert!(!move_store(t.path(), &mut r).unwrap());
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    }

    #[test]
    fn without_semanage_conf_it_warns_and_without_a_store_nothing_moves() {
        let t = tree_with_store(false);
        let mut r = PostprocessReport::default();
        assert!(move_store(t.path(), &mut r).unwrap());
        assert!(r.warnings[0].contains("semanage.conf"), "{:?}", r.warnings);
        let bare = tempfile::tempdir().unwrap();
        assert!(!move_store(bare.path(), &mut PostprocessReport::default()).unwrap());
    }

    #[test]
    fn a_store_in_both_places_is_refused() {
        let t = tree_with_store(true);
        std::fs::create_dir_all(t.path().join("usr/etc/selinux/targeted/active")).unwrap();
        let e = move_store(t.path(), &mut PostprocessReport::default()).unwrap_err();
        assert!(format!("{e:#}").contains("both"), "{e:#}");
    }
}
