//! SELinux labels: cosa's file-contexts lookup against libselinux's
//! (`matchpathcon -N -f FILE_CONTEXTS -m TYPE PATH...`, selinux-utils) for
//! every path and file type, on hand-written file_contexts that exercise
//! each rule and on Debian's real reference policy; duplicates and bad
//! entries against libselinux's validation (`selabel_lookup -v`); and a
//! labelled commit read back with `ostree ls -X` and checked by `ostree fsck`.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use cosa::compose::selinux::{FileContexts, Labeller};
use cosa::ostree::{CommitOptions, Repo};

/// matchpathcon's `-m` names with the `S_IFMT` bits cosa is given.
const TYPES: &[(&str, u32)] = &[
    ("file", libc::S_IFREG),
    ("dir", libc::S_IFDIR),
    ("lnk_file", libc::S_IFLNK),
    ("chr_file", libc::S_IFCHR),
    ("blk_file", libc::S_IFBLK),
    ("sock_file", libc::S_IFSOCK),
    ("pipe", libc::S_IFIFO),
];

/// libselinux's labels for `paths` as files of type `ty`, in order
/// (`<<none>>` where there is none), in batches.
fn matchpathcon(fc: &Path, ty: &str, paths: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(paths.len());
    for chunk in paths.chunks(4000) {
        let o = Command::new("matchpathcon")
            .args(["-N", "-n", "-m", ty, "-f"])
            .arg(fc)
            .args(chunk)
            .output()
            .expect("running matchpathcon (apt-get install selinux-utils)");
        assert!(
            o.status.success(),
            "matchpathcon failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let text = String::from_utf8(o.stdout).unwrap();
        out.extend(text.lines().map(str::to_string));
    }
    assert_eq!(out.len(), paths.len(), "one matchpathcon line per path");
    out
}

/// Compare every path and type; returns the number of lookups.
fn compare(fc_path: &Path, paths: &[String]) -> usize {
    let fc = FileContexts::load(fc_path).unwrap();
    let mut mismatches = Vec::new();
    let mut ours_time = std::time::Duration::ZERO;
    let mut theirs_time = std::time::Duration::ZERO;
    for (ty, mode) in TYPES {
        let t = Instant::now();
        let theirs = matchpathcon(fc_path, ty, paths);
        theirs_time += t.elapsed();
        let t = Instant::now();
        let ours: Vec<&str> = paths
            .iter()
            .map(|p| fc.lookup(p, *mode | 0o644).unwrap_or("<<none>>"))
            .collect();
        ours_time += t.elapsed();
        for ((p, a), b) in paths.iter().zip(&ours).zip(&theirs) {
            if a != b {
                mismatches.push(format!("{p} ({ty}): cosa {a}, matchpathcon {b}"));
            }
        }
    }
    eprintln!(
        "{}: {} specs, {} paths x {} types: cosa {:.2}s, matchpathcon {:.2}s",
        fc_path.display(),
        fc.len(),
        paths.len(),
        TYPES.len(),
        ours_time.as_secs_f64(),
        theirs_time.as_secs_f64()
    );
    assert!(
        mismatches.is_empty(),
        "{} mismatches, first: {:#?}",
        mismatches.len(),
        &mismatches[..mismatches.len().min(20)]
    );
    paths.len() * TYPES.len()
}

/// Paths that hit the specs of a file_contexts text: each spec's literal
/// head (the text before its first meta character, unescaped), that head's
/// directory, and children and siblings of it.
fn paths_from_specs(text: &str) -> Vec<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let Some(re) = line.split_whitespace().next() else {
            continue;
        };
        if !re.starts_with('/') {
            continue;
        }
        let mut head = String::new();
        let mut chars = re.chars();
        while let Some(c) = chars.next() {
            match c {
                '.' | '^' | '$' | '?' | '*' | '+' | '|' | '[' | '(' | '{' => break,
                '\\' => match chars.next() {
                    Some(n) if n.is_ascii_punctuation() => head.push(n),
                    _ => break,
                },
                c => head.push(c),
            }
        }
        if head.is_empty() {
            continue;
        }
        let dir = match head.rfind('/') {
            Some(0) | None => "/".to_string(),
            Some(i) => head[..i].to_string(),
        };
        for p in [
            head.clone(),
            format!("{head}/"),
            format!("{head}x"),
            format!("{head}.d/conf"),
            format!("{head}/a/b.so.1"),
            format!("{head}/bin/tool"),
            format!("{head}-1.2/lib/x.py"),
            format!("{dir}/.hidden"),
            format!("{dir}//other"),
        ] {
            out.insert(p);
        }
    }
    out.into_iter().collect()
}

/// Hand-written contexts that exercise each rule of libselinux's lookup.
const HAND_FC: &str = r#"# comment line, then a blank one

/.*                 system_u:object_r:default_t:s0
/usr(/.*)?          system_u:object_r:usr_t:s0
/usr/bin(/.*)?      system_u:object_r:bin_t:s0
/usr/bin/.*\.sh  --  system_u:object_r:script_t:s0
/usr/bin/tool       system_u:object_r:exact_t:s0
/usr/bin(/.*)?  -l   system_u:object_r:link_t:s0
/usr/lib/[^/]+\.so(\.[0-9]+)*  --  system_u:object_r:lib_t:s0
/usr/lib/tool       -d  system_u:object_r:tooldir_t:s0
/usr/lib/tool       --  system_u:object_r:toolfile_t:s0
/dev/null        -c  system_u:object_r:null_device_t:s0
/dev/sd[a-z]*    -b  system_u:object_r:fixed_disk_device_t:s0
/run/.*             <<none>>
/run/app\.sock   -s  system_u:object_r:app_sock_t:s0
/run/app\.fifo   -p  system_u:object_r:app_fifo_t:s0
/run/keep(/.*)?     system_u:object_r:keep_t:s0
/tmp/.*             <<none>>
/tmp                -d  system_u:object_r:tmp_t:s0
/etc(/.*)?          system_u:object_r:etc_t:s0
/etc/a{2,3}b        system_u:object_r:brace_t:s0
/etc/x{y}           system_u:object_r:literal_brace_t:s0
/etc/[]]z           system_u:object_r:bracket_t:s0
/etc/.*\.conf$      system_u:object_r:conf_t:s0
/etc/shadow.*    --  system_u:object_r:shadow_t:s0
/etc/shadow         system_u:object_r:shadow_exact_t:s0
/etc/ssh/moduli  --  system_u:object_r:moduli_t:s0    extra fields are ignored
/srv/a|/opt/b       system_u:object_r:alternation_t:s0
/(srv|opt)/c        system_u:object_r:group_t:s0
/opt(/.*)?          system_u:object_r:opt_t:s0
/opt/same           system_u:object_r:first_t:s0
/opt/same           system_u:object_r:second_t:s0
/data/lib(/.*)?     system_u:object_r:data_lib_t:s0
"#;

const HAND_HOMEDIRS: &str = "/home/[^/]+(/.*)?\tunconfined_u:object_r:user_home_t:s0\n/home/[^/]+/\\.ssh(/.*)?\tunconfined_u:object_r:ssh_home_t:s0\n/home\t-d\tsystem_u:object_r:home_root_t:s0\n/opt/same\tsystem_u:object_r:homedirs_t:s0\n";

const HAND_LOCAL: &str = "/opt/local(/.*)?\tsystem_u:object_r:local_t:s0\n/usr/bin/tool\tsystem_u:object_r:local_exact_t:s0\n/usr(/.*)?\tsystem_u:object_r:local_usr_t:s0\n";

/// Later lines win: libselinux prepends each substitution.
const HAND_SUBS: &str = "# local aliases\n/srv/data /data\n/srv/data /opt\n/lib /usr/lib\n";
const HAND_SUBS_DIST: &str = "/var/run /run\n/data /usr\n/usr/lib64 /usr/lib\n";

fn write_hand(dir: &Path) -> std::path::PathBuf {
    let fc = dir.join("file_contexts");
    fs::write(&fc, HAND_FC).unwrap();
    fs::write(dir.join("file_contexts.homedirs"), HAND_HOMEDIRS).unwrap();
    fs::write(dir.join("file_contexts.local"), HAND_LOCAL).unwrap();
    fs::write(dir.join("file_contexts.subs"), HAND_SUBS).unwrap();
    fs::write(dir.join("file_contexts.subs_dist"), HAND_SUBS_DIST).unwrap();
    fc
}

const HAND_PATHS: &[&str] = &[
    "/",
    "/usr",
    "/usr/",
    "/usr//bin",
    "/usr/bin",
    "/usr/bin/tool",
    "/usr/bin/tool2",
    "/usr/bin/run.sh",
    "/usr/bin/sub/x.sh",
    "/usr/lib/libc.so.6",
    "/usr/lib/libc.so",
    "/usr/lib/x/libc.so",
    "/usr/lib/tool",
    "/usr/lib64/libz.so.1",
    "/lib/libz.so.1",
    "/lib",
    "/libexec/x",
    "/dev/null",
    "/dev/sda",
    "/dev/sda1",
    "/run",
    "/run/x",
    "/run/app.sock",
    "/run/app.fifo",
    "/run/keep/x",
    "/var/run/keep/y",
    "/var/run/other",
    "/var/runner",
    "/tmp",
    "/tmp/x",
    "/etc",
    "/etc/aab",
    "/etc/aaab",
    "/etc/aaaab",
    "/etc/x{y}",
    "/etc/]z",
    "/etc/a.conf",
    "/etc/a.conf\n",
    "/etc/a.conf/x",
    "/etc/shadow",
    "/etc/shadow-",
    "/etc/ssh/moduli",
    "/srv/a",
    "/opt/b",
    "/srv/c",
    "/opt/c",
    "/opt/same",
    "/opt/local/bin/x",
    "/srv/data",
    "/srv/data/lib/x",
    "/srv/datax",
    "/data/lib/y",
    "/data/bin/z",
    "/home",
    "/home/alice",
    "/home/alice/.ssh/id",
    "/home/alice/notes",
    "/x//y/",
];

#[test]
fn hand_written_rules_match_matchpathcon() {
    let t = tempfile::tempdir().unwrap();
    let fc = write_hand(t.path());
    let paths: Vec<String> = HAND_PATHS.iter().map(|s| s.to_string()).collect();
    compare(&fc, &paths);
    // The cases are live: the rules they exercise give different answers.
    let f = FileContexts::load(&fc).unwrap();
    let reg = libc::S_IFREG;
    assert_eq!(
        f.lookup("/usr/bin/tool", reg),
        Some("system_u:object_r:local_exact_t:s0")
    );
    assert_eq!(
        f.lookup("/usr/lib/tool", libc::S_IFDIR),
        Some("system_u:object_r:tooldir_t:s0")
    );
    assert_eq!(f.lookup("/run/x", reg), None);
    assert_eq!(
        f.lookup("/opt/same", reg),
        Some("system_u:object_r:homedirs_t:s0")
    );
    assert_eq!(
        f.lookup("/srv/data/lib/x", reg),
        Some("system_u:object_r:opt_t:s0")
    );
    assert_eq!(f.lookup("/opt/b", reg), Some("system_u:object_r:opt_t:s0"));
}

#[test]
fn hand_written_rules_on_generated_paths_match_matchpathcon() {
    let t = tempfile::tempdir().unwrap();
    let fc = write_hand(t.path());
    let text = format!("{HAND_FC}{HAND_HOMEDIRS}{HAND_LOCAL}");
    let mut paths = paths_from_specs(&text);
    for s in HAND_SUBS.lines().chain(HAND_SUBS_DIST.lines()) {
        if let Some(src) = s.split_whitespace().next().filter(|s| s.starts_with('/')) {
            paths.extend([
                src.to_string(),
                format!("{src}/lib/x.so"),
                format!("{src}x"),
            ]);
        }
    }
    assert!(paths.len() > 200, "{}", paths.len());
    compare(&fc, &paths);
}

/// libselinux with validation (`selabel_lookup -v`) rejects a file with
/// duplicates exactly when cosa reports some. Contexts are `<<none>>`, which
/// libselinux does not check against a loaded policy (this host has none).
#[test]
fn duplicates_match_libselinux_validation() {
    let t = tempfile::tempdir().unwrap();
    let cases = [
        ("/a <<none>>\n/a -d <<none>>\n", true),
        ("/a -- <<none>>\n/a -d <<none>>\n", false),
        ("/a(/.*)? <<none>>\n/b <<none>>\n/a(/.*)? <<none>>\n", true),
        ("/a <<none>>\n/a/ <<none>>\n", false),
        ("/a -l <<none>>\n/b <<none>>\n/a -l <<none>>\n", true),
    ];
    for (i, (text, dup)) in cases.iter().enumerate() {
        let fc = t.path().join(format!("fc{i}"));
        fs::write(&fc, text).unwrap();
        let o = Command::new("selabel_lookup")
            .args(["-b", "file", "-v", "-k", "/zzz", "-f"])
            .arg(&fc)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.contains("Multiple"), *dup, "case {i}: {err}");
        let ours = FileContexts::load(&fc).unwrap().duplicates();
        assert_eq!(!ours.is_empty(), *dup, "case {i}: {ours:?}");
    }
}

/// An entry libselinux refuses is refused, naming the file and line.
#[test]
fn bad_entries_are_refused_like_libselinux() {
    let t = tempfile::tempdir().unwrap();
    for (text, what) in [
        ("/ok <<none>>\n/a(/.* <<none>>\n", "invalid regex"),
        ("/ok <<none>>\n/a -x <<none>>\n", "invalid file type"),
        ("/ok <<none>>\n/a\n", "missing fields"),
    ] {
        let fc = t.path().join("fc");
        fs::write(&fc, text).unwrap();
        let o = Command::new("selabel_lookup")
            .args(["-b", "file", "-v", "-k", "/ok", "-f"])
            .arg(&fc)
            .output()
            .unwrap();
        let theirs = String::from_utf8_lossy(&o.stderr);
        assert!(theirs.contains("line 2"), "{theirs}");
        let e = format!("{:#}", FileContexts::load(&fc).unwrap_err());
        assert!(
            e.contains(&format!("{}:2", fc.display())) && e.contains(what),
            "{e}"
        );
    }
}

/// Debian's reference policy (built once with semodule into the sample
/// cache, see `cosa_testkit::sample::selinux`): every path derived from its specs,
/// as every file type, gets libselinux's label.
#[test]
fn debian_policy_matches_matchpathcon() {
    let built = cosa_testkit::sample::selinux::debian_policy().unwrap();
    let files = built.join("etc/selinux/default/contexts/files");
    let fc = files.join("file_contexts");
    let mut text = fs::read_to_string(&fc).unwrap();
    text.push_str(&fs::read_to_string(files.join("file_contexts.homedirs")).unwrap());
    let mut paths = paths_from_specs(&text);
    for s in fs::read_to_string(files.join("file_contexts.subs_dist"))
        .unwrap()
        .lines()
    {
        if let Some(src) = s.split_whitespace().next().filter(|s| s.starts_with('/')) {
            paths.extend([
                src.to_string(),
                format!("{src}/x/libfoo.so.1"),
                format!("{src}/bin/sh"),
            ]);
        }
    }
    let t = Instant::now();
    let loaded = FileContexts::load(&fc).unwrap();
    eprintln!(
        "loaded {} specs ({} stems) in {:.3}s",
        loaded.len(),
        loaded.stem_count(),
        t.elapsed().as_secs_f64()
    );
    assert!(loaded.len() > 5000, "{}", loaded.len());
    assert!(paths.len() > 20000, "{}", paths.len());
    let n = compare(&fc, &paths);
    eprintln!("{n} lookups agree");
}

/// A commit labelled from the policy in its own `usr/etc/selinux`: every
/// file, directory and symlink carries libselinux's label for its path
/// (`/usr/etc` as `/etc` with label version 1), and `ostree fsck` passes.
#[test]
fn labelled_commit_matches_matchpathcon() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    let pol = root.join("usr/etc/selinux/hand/contexts/files");
    fs::create_dir_all(&pol).unwrap();
    write_hand(&pol);
    fs::write(
        root.join("usr/etc/selinux/config"),
        "SELINUX=enforcing\nSELINUXTYPE=hand\n",
    )
    .unwrap();
    for d in [
        "usr/bin/sub",
        "usr/lib/tool",
        "etc",
        "opt/local",
        "home/alice/.ssh",
    ] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    for f in [
        "usr/bin/tool",
        "usr/bin/run.sh",
        "usr/bin/sub/x.sh",
        "usr/lib/libc.so.6",
        "usr/etc/shadow",
        "usr/etc/a.conf",
        "opt/same",
        "opt/local/f",
        "home/alice/.ssh/id",
    ] {
        fs::write(root.join(f), f).unwrap();
    }
    symlink("tool", root.join("usr/bin/link")).unwrap();
    symlink("../usr/lib", root.join("lib")).unwrap();
    let labeller = Labeller::from_tree(&root, 1).unwrap().unwrap();
    let repo_dir = t.path().join("repo");
    let repo = Repo::init_archive(&repo_dir).unwrap();
    let label = |p: &str, m: u32| labeller.label(p, m);
    let (tree, meta) = repo
        .write_dir_with(
            &root,
            &CommitOptions {
                selinux: Some(&label),
            },
        )
        .unwrap();
    let commit = repo
        .write_commit(&cosa::ostree::Commit {
            parent: None,
            subject: "labels".into(),
            body: String::new(),
            timestamp: 0,
            metadata: Default::default(),
            root: (tree, meta),
        })
        .unwrap();
    repo.set_ref("labels", &commit).unwrap();
    let ostree = |args: &[&str]| {
        let o = Command::new("ostree")
            .arg(format!("--repo={}", repo_dir.display()))
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    ostree(&["fsck"]);
    let listing = ostree(&["ls", "-R", "-X", "labels"]);
    let fc = pol.join("file_contexts");
    let mut checked = 0;
    for line in listing.lines() {
        // d00755 0 0 0 { [(b'security.selinux', b'system_u:...')] } /usr/bin
        let kind = &line[..1];
        let path = line.rsplit_once(' ').unwrap().1;
        let path = if kind == "l" {
            line.split(" -> ")
                .next()
                .unwrap()
                .rsplit_once(' ')
                .unwrap()
                .1
        } else {
            path
        };
        let ty = match kind {
            "d" => "dir",
            "l" => "lnk_file",
            _ => "file",
        };
        let key = labeller.lookup_path(path).into_owned();
        let want = matchpathcon(&fc, ty, std::slice::from_ref(&key)).remove(0);
        // GLib prints a NUL-terminated byte array as b'...': the value is
        // the context with its trailing NUL, as the kernel stores it.
        assert!(
            line.contains(&format!("(b'security.selinux', b'{want}')")),
            "{path} (as {key}): want {want} in {line}"
        );
        checked += 1;
    }
    assert!(checked > 30, "{listing}");
    assert!(labeller.labelled() >= checked);
}
