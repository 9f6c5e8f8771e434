//! Helpers shared by the postprocess_* integration tests: a small composed
//! tree built directly in a temp dir (Debian's busybox-static as its shell),
//! a listing of a tree for exact comparisons, default options.
#![allow(dead_code)]

use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use cosa::compose::postprocess::{PostprocessOptions, PostprocessReport, postprocess};
use cosa::config::treefile::Treefile;

pub const KVER: &str = "6.1.0-test-amd64";

pub fn write(root: &Path, rel: &str, data: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, data).unwrap();
}

pub fn mode(root: &Path, rel: &str, m: u32) {
    std::fs::set_permissions(root.join(rel), std::fs::Permissions::from_mode(m)).unwrap();
}

pub fn link(root: &Path, rel: &str, target: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    symlink(target, p).unwrap();
}

pub fn mkdir(root: &Path, rel: &str) {
    std::fs::create_dir_all(root.join(rel)).unwrap();
}

pub fn read(root: &Path, rel: &str) -> String {
    std::fs::read_to_string(root.join(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
}

/// A composed tree as `cosa compose rootfs` leaves it: /etc with users and
/// groups, os-release, busybox as /bin/sh, a kernel with its initramfs in
/// /usr/lib/modules, some /var content and /boot bootloader data.
pub fn base_tree(dir: &Path) -> PathBuf {
    // Modes below assume the usual umask.
    unsafe { libc::umask(0o022) };
    let t = dir.join("root");
    mkdir(&t, "usr/bin");
    mkdir(&t, "usr/share");
    let bb = std::fs::read("/bin/busybox").expect("apt-get install busybox-static");
    std::fs::write(t.join("usr/bin/busybox"), bb).unwrap();
    mode(&t, "usr/bin/busybox", 0o755);
    link(&t, "usr/bin/sh", "busybox");
    link(&t, "bin", "usr/bin");
    link(&t, "sbin", "usr/bin");
    link(&t, "lib", "usr/lib");
    write(
        &t,
        "etc/passwd",
        "root:x:0:0:root:/root:/bin/sh\nbin:x:1:1:bin:/bin:/sbin/nologin\nsvc:x:990:991::/var/lib/svc:/sbin/nologin\n",
    );
    write(
        &t,
        "etc/group",
        "root:x:0:\nbin:x:1:\nwheel:x:10:\nsvc:x:991:\n",
    );
    write(
        &t,
        "etc/nsswitch.conf",
        "passwd:     files sss systemd\ngroup:      files sss systemd\nhosts:      files dns\n",
    );
    write(&t, "etc/passwd-", "stale backup\n");
    write(
        &t,
        "etc/default/useradd",
        "GROUP=100\nHOME=/home\nSHELL=/bin/bash\n",
    );
    write(
        &t,
        "usr/lib/os-release",
        "NAME=\"Sample OS\"\nVERSION=\"40 (Core)\"\nID=sample\n\nVERSION_ID=40\nPRETTY_NAME=\"Sample OS 40 (Core)\"\n",
    );
    link(&t, "etc/os-release", "../usr/lib/os-release");
    write(
        &t,
        &format!("usr/lib/modules/{KVER}/vmlinuz"),
        "kernel image",
    );
    write(
        &t,
        &format!("usr/lib/modules/{KVER}/initramfs.img"),
        "initramfs",
    );
    write(&t, &format!("usr/lib/modules/{KVER}/modules.dep"), "");
    write(&t, "boot/grub2/grub.cfg", "# grub\n");
    mkdir(&t, "boot/loader/entries");
    mkdir(&t, "var/lib/svc");
    mode(&t, "var/lib/svc", 0o750);
    std::os::unix::fs::chown(t.join("var/lib/svc"), Some(990), Some(991)).unwrap();
    mkdir(&t, "var/cache/app");
    write(&t, "var/log/app.log", "log line\n");
    write(&t, "var/lib/systemd/random-seed", "seed");
    link(&t, "var/run", "../run");
    link(&t, "var/lock", "../run/lock");
    mkdir(&t, "var/spool/with space");
    write(&t, "opt/vendor/tool", "x");
    mkdir(&t, "home");
    mkdir(&t, "usr/local/bin");
    t
}

/// A treefile with nothing set, like a manifest with only `ref`.
pub fn treefile() -> Treefile {
    Treefile {
        recommends: true,
        documentation: true,
        ..Default::default()
    }
}

pub fn set(tf: &mut Treefile, key: &str, v: serde_json::Value) {
    tf.other.insert(key.to_string(), v);
}

pub fn opts() -> PostprocessOptions {
    PostprocessOptions {
        version: Some("40.20240501.dev.0".into()),
        previous_passwd: None,
        previous_group: None,
        bootable: true,
        run_scripts: true,
        basearch: cosa::util::host_arch().to_string(),
        initramfs: None,
        source_date_epoch: None,
    }
}

pub fn run(tree: &Path, tf: &Treefile, o: &PostprocessOptions) -> PostprocessReport {
    postprocess(tree, tf, o).unwrap_or_else(|e| panic!("postprocess: {e:#}"))
}

pub fn err(tree: &Path, tf: &Treefile, o: &PostprocessOptions) -> String {
    match postprocess(tree, tf, o) {
        Ok(r) => panic!("postprocess succeeded: {r:?}"),
        Err(e) => format!("{e:#}"),
    }
}

/// One line per entry at depth `depth` or less below `rel`: `d path mode`,
/// `f path mode`, `l path -> target`; sorted.
pub fn listing(root: &Path, rel: &str, depth: usize) -> Vec<String> {
    let mut out = Vec::new();
    walk(root, Path::new(rel), depth, &mut out);
    out.sort();
    out
}

fn walk(root: &Path, rel: &Path, depth: usize, out: &mut Vec<String>) {
    if depth == 0 {
        return;
    }
    for e in std::fs::read_dir(root.join(rel)).unwrap() {
        let e = e.unwrap();
        let r = rel.join(e.file_name());
        let md = std::fs::symlink_metadata(e.path()).unwrap();
        let name = r.display().to_string();
        if md.is_symlink() {
            out.push(format!(
                "l {name} -> {}",
                std::fs::read_link(e.path()).unwrap().display()
            ));
        } else if md.is_dir() {
            out.push(format!("d {name} {:o}", md.mode() & 0o7777));
            walk(root, &r, depth - 1, out);
        } else {
            out.push(format!("f {name} {:o}", md.mode() & 0o7777));
        }
    }
}
