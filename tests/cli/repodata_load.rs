//! repodata::load and load_local_rpms on repositories generated with the
//! fixture builder and createrepo_c, checked field by field against
//! `rpm -qp --qf` on the same files.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use cosa::config::repofile::RepoDef;
use cosa::rpm::download::Downloader;
use cosa::rpm::repodata::{LoadedRepo, load, load_local_rpms};
use cosa::rpm::{Dep, PackageMeta};
use cosa_testkit::fixture::{FileSpec, PkgSpec, RepoCompression, createrepo, make_repo};
use sha2::Digest;

const REPO: &str = "fixture";

fn def(baseurls: &[String]) -> RepoDef {
    let mut def = RepoDef::new(REPO, &PathBuf::from("/etc/yum.repos.d/fixture.repo"));
    def.baseurls = baseurls.to_vec();
    def
}

fn url_of(dir: &Path) -> String {
    url::Url::from_directory_path(dir).unwrap().to_string()
}

fn specs() -> Vec<PkgSpec> {
    vec![
        PkgSpec::new("hello", "1.2")
            .epoch(3)
            .release("4.fc40")
            .requires("libfoo >= 2.0")
            .requires("tools = 1.0~rc1-2")
            .requires("(bar or baz)")
            .requires_pre("shadow-utils")
            .provides("hello-api = 1")
            .provides("hello-cli")
            .conflicts("hello-old < 1:0.5")
            .obsoletes("hello-legacy <= 2.0-1")
            .recommends("extra")
            .suggests("hello-doc")
            .supplements("(hello-lang and langpacks)")
            .enhances("shell")
            .file(FileSpec::dir("/usr/lib/hello"))
            .file(FileSpec::file("/usr/bin/hello", "#!/bin/sh\necho hi\n").mode(0o4755))
            .file(FileSpec::file("/etc/hello.conf", "x=1\n").config())
            .file(FileSpec::ghost("/var/log/hello.log"))
            .file(FileSpec::symlink("/usr/bin/hi", "hello"))
            .post("echo post"),
        PkgSpec::new("libfoo", "2.1")
            .release("1")
            .provides("libfoo.so.1()(64bit)")
            .file(FileSpec::file("/usr/lib64/libfoo.so.1", vec![0u8; 3000])),
        PkgSpec::new("tools", "1.0~rc1")
            .release("2")
            .arch("noarch")
            .requires("/bin/sh")
            .requires("libfoo.so.1()(64bit)")
            .file(FileSpec::file("/usr/share/tools/a&b <c>.txt", "odd name")),
        PkgSpec::new("kernel-core", "6.1").file(FileSpec::file("/boot/vmlinuz", "k")),
        PkgSpec::new("kernel-devel", "6.1"),
        PkgSpec::new("debug-x", "1"),
    ]
}

fn rpm_q(path: &Path, fmt: &str) -> String {
    let out = Command::new("rpm")
        .args(["-qp", "--nosignature", "--nodigest", "--qf", fmt])
        .arg(path)
        .output()
        .expect("rpm runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn lines(s: &str) -> BTreeSet<String> {
    s.lines().map(str::to_string).collect()
}

fn shown(deps: &[Dep]) -> BTreeSet<String> {
    deps.iter().map(|d| d.to_string()).collect()
}

fn sha256_file(path: &Path) -> String {
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

/// Every field of `p` as `rpm -qp` reads the file. createrepo_c leaves out
/// `rpmlib(...)` requires; with `from_repodata` those are not expected.
fn check_against_rpm(p: &PackageMeta, path: &Path, from_repodata: bool) {
    let head = rpm_q(
        path,
        "%{NAME} %{EPOCHNUM} %{VERSION} %{RELEASE} %{ARCH} %{LONGSIZE}",
    );
    assert_eq!(
        head,
        format!(
            "{} {} {} {} {} {}",
            p.name, p.epoch, p.version, p.release, p.arch, p.size_installed
        )
    );
    assert_eq!(p.checksum_type, "sha256");
    assert_eq!(p.checksum, sha256_file(path), "{}", p.name);
    assert_eq!(p.size_package, std::fs::metadata(path).unwrap().len());
    assert_eq!(
        p.location,
        path.file_name().unwrap().to_str().unwrap(),
        "{}",
        p.name
    );
    for (tag, deps) in [
        ("PROVIDENEVRS", &p.provides),
        ("CONFLICTNEVRS", &p.conflicts),
        ("OBSOLETENEVRS", &p.obsoletes),
        ("RECOMMENDNEVRS", &p.recommends),
        ("SUGGESTNEVRS", &p.suggests),
        ("SUPPLEMENTNEVRS", &p.supplements),
        ("ENHANCENEVRS", &p.enhances),
    ] {
        let want = lines(&rpm_q(path, &format!("[%{{{tag}}}\n]")));
        assert_eq!(shown(deps), want, "{tag} of {}", p.name);
        assert!(deps.iter().all(|d| !d.pre));
    }
    // Requires with the pre bit: RPMSENSE_PREREQ | SCRIPT_PRE | SCRIPT_POST,
    // but (as createrepo_c does) not those on a name the package provides.
    let provided = lines(&rpm_q(path, "[%{PROVIDENAME}\n]"));
    let want: BTreeSet<(String, bool)> = rpm_q(path, "[%{REQUIRENEVRS}|%{REQUIREFLAGS}\n]")
        .lines()
        .filter(|l| !(from_repodata && l.starts_with("rpmlib(")))
        .map(|l| {
            let (d, f) = l.rsplit_once('|').unwrap();
            (
                d.to_string(),
                f.parse::<u32>().unwrap() & (64 | 512 | 1024) != 0,
            )
        })
        .filter(|(d, _)| !provided.contains(d.split(' ').next().unwrap()))
        .collect();
    let got: BTreeSet<(String, bool)> = p.requires.iter().map(|d| (d.to_string(), d.pre)).collect();
    assert_eq!(got, want, "requires of {}", p.name);
    let files: Vec<String> = rpm_q(path, "[%{FILENAMES}\n]")
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(
        p.files.iter().collect::<Vec<_>>(),
        files,
        "files of {}",
        p.name
    );
}

fn by_name<'a>(repo: &'a LoadedRepo, name: &str) -> &'a PackageMeta {
    repo.packages
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("{name} not loaded"))
}

fn check_repo(compression: RepoCompression) {
    let tmp = tempfile::tempdir().unwrap();
    let repo_dir = tmp.path().join("repo");
    let paths = make_repo(&repo_dir, &specs(), compression).unwrap();
    let dl = Downloader::new(2).unwrap();
    let repo = load(&def(&[url_of(&repo_dir)]), &tmp.path().join("cache"), &dl).unwrap();
    assert_eq!(repo.id, REPO);
    assert_eq!(repo.packages.len(), paths.len());
    assert!(repo.timestamp.is_some_and(|t| t > 1_600_000_000));
    assert_eq!(
        repo.revision.as_deref().map(|r| r.parse::<u64>().is_ok()),
        Some(true)
    );
    for path in &paths {
        let name = rpm_q(path, "%{NAME}");
        let p = by_name(&repo, &name);
        assert_eq!(p.repo, REPO);
        assert_eq!(p.location_base, None);
        check_against_rpm(p, path, true);
    }
    let hello = by_name(&repo, "hello");
    let pre: Vec<&str> = hello
        .requires
        .iter()
        .filter(|d| d.pre)
        .map(|d| d.name.as_str())
        .collect();
    assert!(pre.contains(&"shadow-utils"), "{pre:?}");
    assert!(hello.files.contains("/usr/lib/hello"));
    assert!(hello.files.contains("/var/log/hello.log"));
    let tools = by_name(&repo, "tools");
    assert_eq!(
        tools.files.iter().collect::<Vec<_>>(),
        ["/usr/share/tools/a&b <c>.txt"]
    );
}

#[test]
fn gz_repo_fields_match_rpm() {
    check_repo(RepoCompression::Gz);
}

#[test]
fn xz_repo_fields_match_rpm() {
    check_repo(RepoCompression::Xz);
}

#[test]
fn zstd_repo_fields_match_rpm() {
    check_repo(RepoCompression::Zstd);
}

#[test]
fn zstd_fixture_repomd_is_consistent() {
    let tmp = tempfile::tempdir().unwrap();
    make_repo(tmp.path(), &specs()[..1], RepoCompression::Zstd).unwrap();
    let repomd = std::fs::read_to_string(tmp.path().join("repodata/repomd.xml")).unwrap();
    for kind in ["primary", "filelists", "other"] {
        let zst = tmp.path().join(format!("repodata/{kind}.xml.zst"));
        let data = std::fs::read(&zst).unwrap();
        assert!(data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]));
        assert!(repomd.contains(&format!("{}</checksum>", sha256_file(&zst))));
        let xml = zstd::decode_all(&data[..]).unwrap();
        let open = hex::encode(sha2::Sha256::digest(&xml));
        assert!(repomd.contains(&format!("{open}</open-checksum>")));
        assert!(repomd.contains(&format!("<size>{}</size>", data.len())));
        assert!(repomd.contains(&format!("<open-size>{}</open-size>", xml.len())));
        assert!(repomd.contains(&format!("href=\"repodata/{kind}.xml.zst\"")));
    }
    assert!(!repomd.contains(".gz"));
}

fn cached_files(cache: &Path) -> BTreeSet<String> {
    std::fs::read_dir(cache.join("repodata").join(REPO))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

#[test]
fn checksum_mismatch_is_refused_and_not_cached() {
    let tmp = tempfile::tempdir().unwrap();
    let repo_dir = tmp.path().join("repo");
    make_repo(&repo_dir, &specs(), RepoCompression::Gz).unwrap();
    let repomd = std::fs::read_to_string(repo_dir.join("repodata/repomd.xml")).unwrap();
    let primary = repo_dir.join("repodata/primary.xml.gz");
    let expected = sha256_file(&primary);
    assert!(repomd.contains(&expected));
    let mut data = std::fs::read(&primary).unwrap();
    let n = data.len();
    data[n / 2] ^= 0xff;
    std::fs::write(&primary, &data).unwrap();
    let actual = sha256_file(&primary);

    let cache = tmp.path().join("cache");
    let dl = Downloader::new(2).unwrap();
    let err = load(&def(&[url_of(&repo_dir)]), &cache, &dl).unwrap_err();
    let msg = format!("{err:#}");
    eprintln!("{msg}");
    for part in [
        REPO,
        "primary.xml.gz",
        &expected,
        &actual,
        "checksum mismatch",
    ] {
        assert!(msg.contains(part), "{part:?} missing in: {msg}");
    }
    let cached = cached_files(&cache);
    assert!(
        cached.iter().all(|f| !f.starts_with("primary")),
        "{cached:?}"
    );
    assert!(!cached.contains("repomd.xml"), "{cached:?}");
}

#[test]
fn cache_is_reused_then_revalidated() {
    let tmp = tempfile::tempdir().unwrap();
    let repo_dir = tmp.path().join("repo");
    make_repo(&repo_dir, &specs()[..2], RepoCompression::Xz).unwrap();
    let cache = tmp.path().join("cache");
    let dl = Downloader::new(2).unwrap();
    let d = def(&[url_of(&repo_dir)]);
    let first = load(&d, &cache, &dl).unwrap();
    let files = cached_files(&cache);
    // repomd.xml, primary, filelists and the parsed packages.
    assert_eq!(files.len(), 4, "{files:?}");
    assert!(files.contains("repomd.xml"));
    assert!(
        files.iter().any(|f| f.starts_with("packages-")),
        "{files:?}"
    );
    let dir = cache.join("repodata").join(REPO);
    let old = filetime::FileTime::from_unix_time(1000, 0);
    for f in files.iter().filter(|f| *f != "repomd.xml") {
        filetime::set_file_mtime(dir.join(f), old).unwrap();
    }

    // Unchanged source: the cached files are used as they are (the parsed
    // packages are read, not parsed and written again).
    let second = load(&d, &cache, &dl).unwrap();
    assert_eq!(first.packages, second.packages);
    assert_eq!(cached_files(&cache), files);
    for f in files.iter().filter(|f| *f != "repomd.xml") {
        let m = std::fs::metadata(dir.join(f)).unwrap();
        assert_eq!(
            filetime::FileTime::from_last_modification_time(&m),
            old,
            "{f} re-copied"
        );
    }

    // The repo changes: new metadata is fetched and the stale files go.
    std::fs::write(dir.join("leftover.tmp"), "x").unwrap();
    specs()[2].build(&repo_dir).unwrap();
    std::fs::remove_dir_all(repo_dir.join("repodata")).unwrap();
    createrepo(&repo_dir, RepoCompression::Gz).unwrap();
    let third = load(&d, &cache, &dl).unwrap();
    assert_eq!(third.packages.len(), 3);
    by_name(&third, "tools");
    let now = cached_files(&cache);
    assert_eq!(now.len(), 4, "{now:?}");
    assert!(
        now.is_disjoint(
            &files
                .iter()
                .filter(|f| *f != "repomd.xml")
                .cloned()
                .collect()
        )
    );
    assert!(
        now.iter()
            .any(|f| f.starts_with("primary-") && f.ends_with(".gz"))
    );
}

/// A damaged parsed-package cache is not trusted: the metadata is parsed
/// again and the cache rewritten.
#[test]
fn damaged_package_cache_is_parsed_again() {
    let tmp = tempfile::tempdir().unwrap();
    let repo_dir = tmp.path().join("repo");
    make_repo(&repo_dir, &specs(), RepoCompression::Gz).unwrap();
    let cache = tmp.path().join("cache");
    let dl = Downloader::new(2).unwrap();
    let d = def(&[url_of(&repo_dir)]);
    let first = load(&d, &cache, &dl).unwrap();
    let dir = cache.join("repodata").join(REPO);
    let bin = cached_files(&cache)
        .into_iter()
        .find(|f| f.starts_with("packages-"))
        .unwrap();
    let good = std::fs::read(dir.join(&bin)).unwrap();
    for damage in [
        good[..good.len() / 2].to_vec(),
        Vec::new(),
        vec![0xff; 64],
        [&good[..], b"junk"].concat(),
    ] {
        std::fs::write(dir.join(&bin), &damage).unwrap();
        let again = load(&d, &cache, &dl).unwrap();
        assert_eq!(again.packages, first.packages);
        assert_eq!(std::fs::read(dir.join(&bin)).unwrap(), good);
    }
}

#[test]
fn exclude_and_includepkgs() {
    let tmp = tempfile::tempdir().unwrap();
    let repo_dir = tmp.path().join("repo");
    make_repo(&repo_dir, &specs(), RepoCompression::Gz).unwrap();
    let dl = Downloader::new(2).unwrap();
    let cache = tmp.path().join("cache");
    let names = |d: &RepoDef| -> BTreeSet<String> {
        load(d, &cache, &dl)
            .unwrap()
            .packages
            .into_iter()
            .map(|p| p.name)
            .collect()
    };
    let mut d = def(&[url_of(&repo_dir)]);
    d.exclude = vec!["kernel-*".into(), "debug-?".into()];
    assert_eq!(
        names(&d),
        ["hello", "libfoo", "tools"].map(String::from).into()
    );
    d.exclude = vec!["kernel-[d]*".into()];
    d.includepkgs = vec!["kernel*".into(), "libf??".into()];
    assert_eq!(
        names(&d),
        ["kernel-core", "libfoo"].map(String::from).into()
    );
}

#[test]
fn missing_repo_names_id_and_url() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nowhere");
    let url = url_of(&missing);
    let dl = Downloader::new(2).unwrap();
    let err = load(
        &def(std::slice::from_ref(&url)),
        &tmp.path().join("cache"),
        &dl,
    )
    .unwrap_err();
    let msg = format!("{err:#}");
    eprintln!("{msg}");
    assert!(msg.contains(REPO), "{msg}");
    assert!(msg.contains(&url), "{msg}");
    assert!(msg.contains("repomd.xml"), "{msg}");
}

#[test]
fn unreachable_source_is_not_replaced_by_the_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let repo_dir = tmp.path().join("repo");
    make_repo(&repo_dir, &specs()[..1], RepoCompression::Gz).unwrap();
    let dl = Downloader::new(2).unwrap();
    let cache = tmp.path().join("cache");
    let d = def(&[url_of(&repo_dir)]);
    load(&d, &cache, &dl).unwrap();
    std::fs::rename(&repo_dir, tmp.path().join("moved")).unwrap();
    let msg = format!("{:#}", load(&d, &cache, &dl).unwrap_err());
    eprintln!("{msg}");
    assert!(msg.contains("cached metadata exists"), "{msg}");
    assert!(msg.contains(REPO), "{msg}");
}

#[test]
fn later_baseurl_is_tried() {
    let tmp = tempfile::tempdir().unwrap();
    let repo_dir = tmp.path().join("repo");
    make_repo(&repo_dir, &specs()[..2], RepoCompression::Gz).unwrap();
    let dl = Downloader::new(2).unwrap();
    let d = def(&[
        url_of(&tmp.path().join("nowhere")),
        // without the trailing slash: still the directory
        url_of(&repo_dir).trim_end_matches('/').to_string(),
    ]);
    let repo = load(&d, &tmp.path().join("cache"), &dl).unwrap();
    assert_eq!(repo.packages.len(), 2);
    // Packages come from the mirror that served the metadata first; the
    // one that failed stays as the last fallback.
    assert_eq!(repo.baseurls.len(), 2);
    assert!(repo.baseurls[0].as_str().ends_with("/repo/"));
    assert!(repo.baseurls[1].as_str().ends_with("/nowhere/"));
}

#[test]
fn repo_without_a_source_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let d = def(&[]);
    let dl = Downloader::new(2).unwrap();
    let msg = format!("{:#}", load(&d, tmp.path(), &dl).unwrap_err());
    eprintln!("{msg}");
    assert!(
        msg.contains("no baseurl, metalink or mirrorlist") && msg.contains(REPO),
        "{msg}"
    );
    assert!(msg.contains("fixture.repo"), "{msg}");
}

#[test]
fn local_rpms_match_repodata() {
    let tmp = tempfile::tempdir().unwrap();
    let repo_dir = tmp.path().join("repo");
    let paths = make_repo(&repo_dir, &specs(), RepoCompression::Gz).unwrap();
    std::fs::write(repo_dir.join("notes.txt"), "not an rpm").unwrap();
    let dl = Downloader::new(2).unwrap();
    let from_md = load(&def(&[url_of(&repo_dir)]), &tmp.path().join("cache"), &dl).unwrap();
    let local = load_local_rpms("overrides", &repo_dir, 1).unwrap();
    assert_eq!(local.id, "overrides");
    assert_eq!(local.priority, 1);
    assert_eq!(
        local.baseurls,
        vec![url::Url::from_directory_path(repo_dir.canonicalize().unwrap()).unwrap()]
    );
    assert_eq!(local.packages.len(), paths.len());
    for path in &paths {
        let name = rpm_q(path, "%{NAME}");
        let l = by_name(&local, &name);
        assert_eq!(l.repo, "overrides");
        check_against_rpm(l, path, false);
        // Same as repodata's, up to dependency order and rpmlib() requires.
        let norm = |p: &PackageMeta| {
            let mut p = p.clone();
            p.repo.clear();
            p.requires.retain(|d| !d.name.starts_with("rpmlib("));
            for list in [
                &mut p.provides,
                &mut p.requires,
                &mut p.conflicts,
                &mut p.obsoletes,
                &mut p.recommends,
                &mut p.suggests,
                &mut p.supplements,
                &mut p.enhances,
            ] {
                list.sort_by_key(|d| (d.to_string(), d.pre));
                list.dedup();
            }
            p
        };
        assert_eq!(norm(l), norm(by_name(&from_md, &name)));
    }
}

#[test]
fn local_rpms_missing_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let msg = format!(
        "{:#}",
        load_local_rpms("overrides", &tmp.path().join("none"), 1).unwrap_err()
    );
    assert!(msg.contains("none"), "{msg}");
}
