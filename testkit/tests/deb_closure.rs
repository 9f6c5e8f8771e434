//! A real Debian closure (systemd + openssh-server, with usr-is-merged
//! named first so apt does not pick the usrmerge script) fetched from the
//! Debian mirror into the sample cache, converted to rpm packages, and
//! checked against the .debs with the reference tools: `dpkg-deb` on one
//! side, `rpm -qp` and `dnf` on the other. Nothing here uses the
//! converter's own control parser to compute what is expected.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use cosa_testkit::deb::{self, Converted};
use cosa_testkit::sample::debian::{cache_dir, control_field, deb_arch};

const TOP: &[&str] = &["usr-is-merged", "systemd", "openssh-server"];

struct Repo {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    debs: Vec<PathBuf>,
    conv: Vec<Converted>,
}

fn repo() -> Repo {
    let debarch = deb_arch(cosa::util::host_arch()).expect("a Debian architecture for the host");
    let cache = cache_dir().expect("the sample cache");
    let t = Instant::now();
    let debs = deb::fetch_closure(&cache, TOP, debarch).expect("fetching the closure");
    let mb = debs
        .iter()
        .map(|d| std::fs::metadata(d).map(|m| m.len()).unwrap_or(0))
        .sum::<u64>() as f64
        / 1e6;
    eprintln!(
        "closure of {TOP:?}: {} .debs, {mb:.1} MB, in {:.1?}",
        debs.len(),
        t.elapsed()
    );
    let tmp = tempfile::tempdir().expect("a temp dir");
    let dir = tmp.path().join("repo");
    let t = Instant::now();
    let conv = deb::make_repo(&cache, &debs, &dir).expect("converting the closure");
    eprintln!("converted and made the repository in {:.1?}", t.elapsed());
    Repo {
        _tmp: tmp,
        dir,
        debs,
        conv,
    }
}

/// `[E:]V-R` of a Debian version, computed here from the version string.
fn evr(v: &str) -> String {
    let (e, rest) = match v.split_once(':') {
        Some((e, r)) if e.chars().all(|c| c.is_ascii_digit()) => (e, r),
        _ => ("0", v),
    };
    let (u, r) = rest.rsplit_once('-').unwrap_or((rest, "0"));
    let u = u.replace([':', '-'], "_");
    if e == "0" {
        format!("{u}-{r}")
    } else {
        format!("{e}:{u}-{r}")
    }
}

/// rpm's dependency strings for a Debian relation field (as `dpkg-deb -f`
/// prints it), one per comma-separated group.
fn expect_deps(field: &str) -> BTreeSet<String> {
    let field = field.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = BTreeSet::new();
    for group in field.split(',').map(str::trim).filter(|g| !g.is_empty()) {
        let alts: Vec<String> = group
            .split('|')
            .map(|a| {
                let a = a.trim();
                let (name, ver) = match a.split_once('(') {
                    Some((n, v)) => (n.trim(), Some(v.trim_end_matches(')').trim())),
                    None => (a, None),
                };
                let name = name
                    .strip_suffix(":any")
                    .or_else(|| name.strip_suffix(":native"))
                    .unwrap_or(name);
                match ver {
                    None => name.to_string(),
                    Some(v) => {
                        let (op, v) = v.split_at(v.find(|c: char| !"<=>".contains(c)).unwrap());
                        let op = match op {
                            "<<" => "<",
                            ">>" => ">",
                            "<" => "<=",
                            ">" => ">=",
                            o => o,
                        };
                        format!("{name} {op} {}", evr(v.trim()))
                    }
                }
            })
            .collect();
        out.insert(if alts.len() == 1 {
            alts[0].clone()
        } else {
            format!("({})", alts.join(" or "))
        });
    }
    out
}

/// The /usr-merged form of a path, computed here.
fn merged(p: &str) -> String {
    for d in ["bin", "sbin", "lib", "lib32", "lib64", "libx32"] {
        if p == format!("/{d}") || p.starts_with(&format!("/{d}/")) {
            return format!("/usr{p}");
        }
    }
    p.to_string()
}

/// `path -> "perms owner/group"` from `dpkg-deb -c`, /usr-merged.
fn deb_files(deb: &Path) -> BTreeMap<String, String> {
    let out = Command::new("dpkg-deb")
        .arg("-c")
        .arg(deb)
        .output()
        .unwrap();
    assert!(out.status.success(), "dpkg-deb -c {}", deb.display());
    let mut files = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        // perms owner/group size date time path[ -> target | link to target]
        let mut rest = line;
        let mut fields = Vec::new();
        for _ in 0..5 {
            let (f, r) = rest.trim_start().split_once(' ').unwrap();
            fields.push(f);
            rest = r;
        }
        let path = rest.trim_start();
        let path = path.split(" -> ").next().unwrap();
        let path = path.split(" link to ").next().unwrap();
        // tar quotes a backslash in a name as `\\`.
        let path = path.replace("\\\\", "\\");
        let path = path.trim_start_matches('.').trim_end_matches('/');
        if path.is_empty() {
            continue;
        }
        // tar shows hardlinks as `h`; rpm shows them as regular files.
        let perms = fields[0].replacen('h', "-", 1);
        files.insert(merged(path), format!("{perms} {}", fields[1]));
    }
    files
}

#[derive(Default, Debug)]
struct RpmInfo {
    evr: String,
    arch: String,
    requires: BTreeSet<String>,
    requires_pre: BTreeSet<String>,
    provides: BTreeSet<String>,
    conflicts: BTreeSet<String>,
    recommends: BTreeSet<String>,
    suggests: BTreeSet<String>,
    files: BTreeMap<String, String>,
    config: BTreeSet<String>,
    scripts: String,
}

/// Everything `rpm -qp` says about the packages, in one process (the same
/// tags `--requires`, `--provides`, `--conflicts`, `--recommends`,
/// `--suggests` and `-l` print).
fn rpm_info(rpms: &[PathBuf]) -> BTreeMap<String, RpmInfo> {
    let db = tempfile::tempdir().unwrap();
    let qf = "@@ %{NAME} %{EPOCHNUM}:%{VERSION}-%{RELEASE} %{ARCH} %{PREIN}%{POSTIN}%{PREUN}%{POSTUN}\n\
              [R %{REQUIREFLAGS:deptype} %{REQUIRENEVRS}\n]\
              [P %{PROVIDENEVRS}\n][C %{CONFLICTNEVRS}\n][W %{RECOMMENDNEVRS}\n]\
              [S %{SUGGESTNEVRS}\n]\
              [F %{FILEFLAGS:fflags} %{FILEMODES:perms} %{FILEUSERNAME}/%{FILEGROUPNAME} %{FILENAMES}\n]";
    let out = Command::new("rpm")
        .arg("--dbpath")
        .arg(db.path())
        .args(["-qp", "--nosignature", "--nodigest", "--qf", qf])
        .args(rpms)
        .output()
        .expect("running rpm -qp");
    assert!(
        out.status.success(),
        "rpm -qp: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut all = BTreeMap::new();
    let mut cur: Option<(String, RpmInfo)> = None;
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let (tag, rest) = line.split_once(' ').unwrap_or((line, ""));
        if tag == "@@" {
            if let Some((n, i)) = cur.take() {
                all.insert(n, i);
            }
            let mut w = rest.splitn(4, ' ');
            let name = w.next().unwrap().to_string();
            let info = RpmInfo {
                evr: w.next().unwrap().to_string(),
                arch: w.next().unwrap().to_string(),
                scripts: w.next().unwrap_or("").to_string(),
                ..Default::default()
            };
            cur = Some((name, info));
            continue;
        }
        let (_, i) = cur.as_mut().expect("a package header first");
        match tag {
            "R" => {
                let (deptype, dep) = rest.split_once(' ').unwrap();
                if deptype.contains("pre") {
                    i.requires_pre.insert(dep.to_string());
                }
                i.requires.insert(dep.to_string());
            }
            "P" => drop(i.provides.insert(rest.to_string())),
            "C" => drop(i.conflicts.insert(rest.to_string())),
            "W" => drop(i.recommends.insert(rest.to_string())),
            "S" => drop(i.suggests.insert(rest.to_string())),
            "F" => {
                let mut w = rest.splitn(4, ' ');
                let (flags, perms, owner, path) = (
                    w.next().unwrap(),
                    w.next().unwrap(),
                    w.next().unwrap(),
                    w.next().unwrap(),
                );
                if flags.contains('c') {
                    assert!(flags.contains('n'), "{path}: %config without noreplace");
                    i.config.insert(path.to_string());
                }
                i.files.insert(path.to_string(), format!("{perms} {owner}"));
            }
            _ => panic!("unexpected rpm -qp line {line:?}"),
        }
    }
    if let Some((n, i)) = cur.take() {
        all.insert(n, i);
    }
    all
}

#[test]
fn deb_closure_rpms_match_debs() {
    let r = repo();
    assert!(r.debs.len() >= 50, "a closure of {} packages", r.debs.len());
    let rpms: Vec<PathBuf> = r.conv.iter().map(|c| r.dir.join(&c.rpm_file)).collect();
    let info = rpm_info(&rpms);
    assert_eq!(info.len(), r.conv.len());
    let mut checked_pre = 0;
    let mut checked_alts = 0;
    let mut checked_conf = 0;
    let mut checked_setuid = 0;
    for (deb, c) in r.debs.iter().zip(&r.conv) {
        let f = |field: &str| control_field(deb, field).unwrap();
        let name = f("Package");
        assert_eq!(name, c.name);
        let i = &info[&name];
        let arch = match f("Architecture").as_str() {
            "all" => "noarch".to_string(),
            a => cosa_testkit::sample::debian::rpm_arch(a)
                .unwrap()
                .to_string(),
        };
        let v = evr(&f("Version"));
        let full = if v.contains(':') {
            v.clone()
        } else {
            format!("0:{v}")
        };
        assert_eq!(i.evr, full, "{name}: rpm's EVR");
        assert_eq!(i.arch, arch, "{name}: rpm's arch");

        // Requires: Depends and Pre-Depends, besides what rpm adds itself.
        let pre = expect_deps(&f("Pre-Depends"));
        let mut want = expect_deps(&f("Depends"));
        want.extend(pre.iter().cloned());
        let got: BTreeSet<String> = i
            .requires
            .iter()
            .filter(|d| !d.starts_with("rpmlib(") && !d.starts_with(&format!("config({name}) = ")))
            .cloned()
            .collect();
        assert_eq!(got, want, "{name}: requires");
        assert_eq!(
            i.requires_pre
                .iter()
                .filter(|d| !d.starts_with("rpmlib("))
                .cloned()
                .collect::<BTreeSet<_>>(),
            pre,
            "{name}: Requires(pre)"
        );
        checked_pre += usize::from(!pre.is_empty());
        checked_alts += want.iter().filter(|d| d.starts_with('(')).count();

        // Provides, besides rpm's own `name = EVR`, `name(isa) = EVR`,
        // `config(name) = EVR`, and the user()/group() ones the rpm crate
        // derives from sysusers.d files (as rpm >= 4.19 does).
        let self_evr = format!("= {v}");
        let sysusers = i
            .files
            .keys()
            .any(|p| p.starts_with("/usr/lib/sysusers.d/") && p.ends_with(".conf"));
        let got: BTreeSet<String> = i
            .provides
            .iter()
            .filter(|d| {
                !(d.ends_with(&self_evr)
                    && (d.starts_with(&format!("{name} "))
                        || d.starts_with(&format!("{name}("))
                        || d.starts_with(&format!("config({name})"))))
                    && !(sysusers
                        && (d.starts_with("user(")
                            || d.starts_with("group(")
                            || d.starts_with("groupmember(")))
            })
            .cloned()
            .collect();
        // Unversioned Provides carry the package's own EVR (see convert.rs).
        let want: BTreeSet<String> = expect_deps(&f("Provides"))
            .into_iter()
            .map(|p| {
                if p.contains(' ') {
                    p
                } else {
                    format!("{p} {self_evr}")
                }
            })
            .collect();
        assert_eq!(got, want, "{name}: provides");

        let mut want = expect_deps(&f("Conflicts"));
        want.extend(expect_deps(&f("Breaks")));
        assert_eq!(i.conflicts, want, "{name}: conflicts");
        // The rpm crate recommends user(x)/group(x) for files owned by a
        // user or group other than root (as rpm >= 4.19 does).
        let owners: BTreeSet<String> = i
            .files
            .values()
            .flat_map(|m| {
                let (u, g) = m.split_once(' ').unwrap().1.split_once('/').unwrap();
                [format!("user({u})"), format!("group({g})")]
            })
            .filter(|o| !o.ends_with("(root)"))
            .collect();
        let mut want = expect_deps(&f("Recommends"));
        want.extend(owners);
        assert_eq!(i.recommends, want, "{name}: recommends");
        assert_eq!(i.suggests, expect_deps(&f("Suggests")), "{name}: suggests");

        // Files: paths, permissions (setuid included) and owners.
        let want = deb_files(deb);
        let (got_p, want_p): (BTreeSet<&String>, BTreeSet<&String>) =
            (i.files.keys().collect(), want.keys().collect());
        assert!(
            got_p == want_p,
            "{name}: rpm -qlp vs dpkg-deb -c after the /usr merge: only in the rpm {:?}, only in the deb {:?}",
            got_p.difference(&want_p).collect::<Vec<_>>(),
            want_p.difference(&got_p).collect::<Vec<_>>()
        );
        for (p, m) in &want {
            assert_eq!(&i.files[p], m, "{name}: {p}: mode and owner");
            checked_setuid += usize::from(m.starts_with("-rws") || m.starts_with("-rwxr-s"));
        }

        // conffiles are %config(noreplace), and nothing else is.
        let out = Command::new("dpkg-deb")
            .arg("--info")
            .arg(deb)
            .arg("conffiles")
            .output()
            .unwrap();
        let conffiles: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.contains("remove-on-upgrade") && !l.trim().is_empty())
            .map(|l| merged(l.trim()))
            .collect();
        assert_eq!(i.config, conffiles, "{name}: %config(noreplace) files");
        checked_conf += conffiles.len();

        // No scriptlets; the record says which maintainer scripts there were.
        assert_eq!(i.scripts, "(none)(none)(none)(none)", "{name}: scriptlets");
        let out = Command::new("dpkg-deb")
            .arg("-I")
            .arg(deb)
            .output()
            .unwrap();
        let listing = String::from_utf8_lossy(&out.stdout);
        for s in ["preinst", "postinst", "prerm", "postrm"] {
            // `  745 bytes,  28 lines   *  postinst   #!/bin/sh`
            let has = listing.lines().any(|l| {
                l.contains(" bytes,")
                    && l.contains(" lines")
                    && l.split_whitespace().any(|w| w == s)
            });
            assert_eq!(
                c.maintainer_scripts.iter().any(|m| m == s),
                has,
                "{name}: maintainer script {s}"
            );
        }
        assert_eq!(c.essential, f("Essential") == "yes", "{name}: Essential");
    }
    // The closure exercises what the checks are for.
    assert!(checked_pre > 0, "no package with Pre-Depends");
    assert!(checked_alts > 0, "no alternatives");
    assert!(checked_conf > 0, "no conffiles");
    assert!(checked_setuid > 0, "no setuid/setgid file");
    let record: Vec<Converted> =
        serde_json::from_slice(&std::fs::read(r.dir.join(deb::RECORD)).unwrap()).unwrap();
    assert_eq!(record, r.conv);
    assert!(
        r.conv.iter().any(
            |c| c.name == "openssh-server" && c.maintainer_scripts.contains(&"postinst".into())
        )
    );
}

#[test]
fn deb_closure_repo_resolves_with_dnf() {
    let r = repo();
    let work = tempfile::tempdir().unwrap();
    let installed = cosa_testkit::solver::dnf_install(
        work.path(),
        &[("deb".to_string(), 1, r.dir.clone())],
        TOP,
        false,
        &[] as &[&str],
    )
    .expect("dnf resolves and installs the converted closure");
    // NAME-E:V-R.ARCH -> NAME
    let names: BTreeSet<String> = installed
        .iter()
        .map(|k| {
            let nevr = k.rsplit_once('.').unwrap().0;
            let (nev, _) = nevr.rsplit_once('-').unwrap();
            nev.rsplit_once('-').unwrap().0.to_string()
        })
        .collect();
    let repo: BTreeSet<String> = r.conv.iter().map(|c| c.name.clone()).collect();
    for t in TOP {
        assert!(names.contains(*t), "dnf did not install {t}");
    }
    // dnf needs nothing apt did not fetch; what apt fetched and dnf left
    // out must be a name dnf satisfied with another package's Provides
    // (apt prefers a real package, e.g. the transitional lsb-base over
    // sysvinit-utils' `Provides: lsb-base (= 11.1.0)`).
    assert!(
        names.is_subset(&repo),
        "dnf installs {:?}, which apt did not fetch",
        names.difference(&repo).collect::<Vec<_>>()
    );
    for m in repo.difference(&names) {
        let out = Command::new("rpm")
            .arg("--root")
            .arg(work.path().join("root"))
            .args(["-q", "--whatprovides", m, "--qf", "%{NAME}\\n"])
            .output()
            .unwrap();
        let by = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && by.lines().all(|p| names.contains(p) && p != m),
            "apt fetched {m}, dnf installed neither it nor a provider of it: {by}"
        );
        eprintln!("apt fetched {m}; dnf took its provider {}", by.trim());
    }
    assert!(
        repo.len() - names.len() <= 2,
        "dnf left out {:?}",
        repo.difference(&names).collect::<Vec<_>>()
    );
}
