//! gpgcheck: packages signed with keys made here by GnuPG are checked with
//! Debian's `rpm -K` (so the signatures are real) and then by fetch_packages:
//! a good signature passes, an unsigned package or one signed by another key
//! is refused and never enters the cache.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use cosa::rpm::PackageMeta;
use cosa::rpm::download::{cache_path, fetch_packages};
use cosa::rpm::repodata::LoadedRepo;
use cosa_testkit::download::*;
use cosa_testkit::fixture::{FileSpec, PkgSpec, RepoCompression, createrepo, make_repo};

/// An OpenPGP key pair, armored.
pub(crate) struct Key {
    pub secret: Vec<u8>,
    pub public: Vec<u8>,
}

pub(crate) fn gpg(home: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("gpg")
        .env("GNUPGHOME", home)
        .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""])
        .args(args)
        .output()
        .expect("gpg runs");
    assert!(
        out.status.success(),
        "gpg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Make an ed25519 signing key with GnuPG in a throwaway GNUPGHOME.
fn gen_key(email: &str) -> Key {
    let home = tempfile::tempdir().unwrap();
    let uid = format!("Cosa Test <{email}>");
    gpg(
        home.path(),
        &["--quick-gen-key", &uid, "ed25519", "sign", "never"],
    );
    let secret = gpg(home.path(), &["--armor", "--export-secret-keys", email]);
    let public = gpg(home.path(), &["--armor", "--export", email]);
    let _ = Command::new("gpgconf")
        .env("GNUPGHOME", home.path())
        .args(["--kill", "gpg-agent"])
        .status();
    assert!(secret.starts_with(b"-----BEGIN PGP PRIVATE KEY BLOCK-----"));
    assert!(public.starts_with(b"-----BEGIN PGP PUBLIC KEY BLOCK-----"));
    Key { secret, public }
}

/// Two keys, made once per test binary.
pub(crate) fn keys() -> &'static (Key, Key) {
    static KEYS: OnceLock<(Key, Key)> = OnceLock::new();
    KEYS.get_or_init(|| (gen_key("good@example.com"), gen_key("other@example.com")))
}

/// `rpm -K` with only `key` imported into a temp rpmdb: (success, output).
fn rpm_k(key: &Path, pkg: &Path) -> (bool, String) {
    let db = tempfile::tempdir().unwrap();
    let dbpath = db.path().to_str().unwrap();
    let st = Command::new("rpm")
        .args(["--dbpath", dbpath, "--import"])
        .arg(key)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "rpm --import: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    let out = Command::new("rpm")
        .args(["--dbpath", dbpath, "-K"])
        .arg(pkg)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn spec(name: &str) -> PkgSpec {
    PkgSpec::new(name, "2.0").release("3").file(FileSpec::file(
        &format!("/usr/share/{name}"),
        name.repeat(100),
    ))
}

/// Build `specs` into `dir`, signed by `key` (or unsigned), make it a repo,
/// and return the packages' metadata.
fn repo_of(dir: &Path, id: &str, specs: &[(PkgSpec, Option<&Key>)]) -> Vec<(PackageMeta, PathBuf)> {
    std::fs::create_dir_all(dir).unwrap();
    let mut out = vec![];
    let unsigned: Vec<PkgSpec> = specs
        .iter()
        .filter(|(_, k)| k.is_none())
        .map(|(s, _)| s.clone())
        .collect();
    make_repo(dir, &unsigned, RepoCompression::Gz).unwrap();
    for (s, k) in specs {
        let path = match k {
            Some(k) => s.build_signed(dir, &k.secret).unwrap(),
            None => dir.join(s.filename()),
        };
        out.push((meta_for(s, &path, id, &s.filename()), path));
    }
    createrepo(dir, RepoCompression::Gz).unwrap();
    out
}

fn gpg_repo(id: &str, base: url::Url, keys: Vec<String>) -> LoadedRepo {
    let mut r = loaded_repo(id, vec![base]);
    r.gpgcheck = true;
    r.gpgkeys = keys;
    r
}

fn incoming_files(cache: &Path) -> Vec<PathBuf> {
    files_under(&cache.join("pkgs").join(".incoming"))
}

#[test]
fn good_signature_passes_over_http_with_http_key() {
    let (good, _) = keys();
    let root = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("RPM-GPG-KEY-good"), &good.public).unwrap();
    let pkgs = repo_of(
        &root.path().join("repo"),
        "signed",
        &[(spec("alpha"), Some(good)), (spec("beta"), Some(good))],
    );
    // The signature is real: rpm itself accepts it with the key imported.
    let (ok, text) = rpm_k(&root.path().join("RPM-GPG-KEY-good"), &pkgs[0].1);
    assert!(ok && text.contains("signatures OK"), "{text}");

    let server = Server::start(root.path());
    let repo = gpg_repo(
        "signed",
        server.url("repo"),
        vec![server.url("RPM-GPG-KEY-good").to_string()],
    );
    let metas: Vec<PackageMeta> = pkgs.iter().map(|(m, _)| m.clone()).collect();
    let dl = fast_downloader(2);
    let paths = fetch_packages(&dl, cache.path(), std::slice::from_ref(&repo), &metas).unwrap();
    for (p, m) in paths.iter().zip(&metas) {
        assert_eq!(*p, cache_path(cache.path(), m));
        assert_eq!(sha256_hex(&std::fs::read(p).unwrap()), m.checksum);
    }
    assert!(incoming_files(cache.path()).is_empty());
    // Cached: a second run fetches neither packages nor the key.
    let before = server.total_requests();
    fetch_packages(&dl, cache.path(), &[repo], &metas).unwrap();
    assert_eq!(server.total_requests(), before);
}

#[test]
fn unsigned_package_is_refused() {
    let (good, _) = keys();
    let root = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let key = root.path().join("key.asc");
    std::fs::write(&key, &good.public).unwrap();
    let pkgs = repo_of(
        &root.path().join("repo"),
        "r",
        &[(spec("plain"), None), (spec("fine"), Some(good))],
    );
    // rpm finds no signature to accept either.
    let (_, text) = rpm_k(&key, &pkgs[0].1);
    assert!(!text.contains("signatures OK"), "{text}");

    let key_url = file_url(root.path()).join("key.asc").unwrap().to_string();
    let repo = gpg_repo(
        "r",
        file_url(&root.path().join("repo")),
        vec![key_url.clone()],
    );
    let metas: Vec<PackageMeta> = pkgs.iter().map(|(m, _)| m.clone()).collect();
    let dl = fast_downloader(2);
    let msg = format!(
        "{:#}",
        fetch_packages(&dl, cache.path(), &[repo], &metas).unwrap_err()
    );
    eprintln!("{msg}");
    assert!(msg.contains("plain-2.0-3.x86_64"), "{msg}");
    assert!(msg.contains("not signed"), "{msg}");
    assert!(msg.contains(&key_url), "names the key: {msg}");
    assert!(!msg.contains("fine-2.0-3"), "the signed one passes: {msg}");
    assert!(!cache_path(cache.path(), &metas[0]).exists());
    assert!(cache_path(cache.path(), &metas[1]).exists());
    assert!(incoming_files(cache.path()).is_empty());
}

#[test]
fn package_signed_by_another_key_is_refused() {
    let (good, other) = keys();
    let root = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let key = root.path().join("good.asc");
    std::fs::write(&key, &good.public).unwrap();
    let pkgs = repo_of(
        &root.path().join("repo"),
        "r",
        &[(spec("intruder"), Some(other))],
    );
    // rpm, knowing only the good key, refuses it too.
    let (ok, text) = rpm_k(&key, &pkgs[0].1);
    eprintln!("rpm -K with the good key only: {text}");
    assert!(!ok && !text.contains("signatures OK"), "{text}");
    // ... and accepts it with the other key: the signature itself is sound.
    let other_key = root.path().join("other.asc");
    std::fs::write(&other_key, &other.public).unwrap();
    let (ok, text) = rpm_k(&other_key, &pkgs[0].1);
    assert!(ok && text.contains("signatures OK"), "{text}");

    let key_url = file_url(root.path()).join("good.asc").unwrap().to_string();
    let repo = gpg_repo(
        "r",
        file_url(&root.path().join("repo")),
        vec![key_url.clone()],
    );
    let metas: Vec<PackageMeta> = pkgs.iter().map(|(m, _)| m.clone()).collect();
    let dl = fast_downloader(1);
    let msg = format!(
        "{:#}",
        fetch_packages(&dl, cache.path(), std::slice::from_ref(&repo), &metas).unwrap_err()
    );
    eprintln!("{msg}");
    assert!(msg.contains("intruder-2.0-3.x86_64"), "{msg}");
    assert!(msg.contains(&key_url), "{msg}");
    assert!(!cache_path(cache.path(), &metas[0]).exists());
    assert!(incoming_files(cache.path()).is_empty());

    // With both keys listed (as one gpgkey= value) it is accepted.
    let other_url = file_url(root.path()).join("other.asc").unwrap().to_string();
    let both = gpg_repo(
        "r",
        file_url(&root.path().join("repo")),
        vec![format!("{key_url} {other_url}")],
    );
    fetch_packages(&dl, cache.path(), &[both], &metas).unwrap();
    assert!(cache_path(cache.path(), &metas[0]).exists());
}

#[test]
fn gpgcheck_without_keys_is_an_error_that_says_what_to_do() {
    let root = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let pkgs = repo_of(
        &root.path().join("repo"),
        "nokeys",
        &[(spec("lonely"), None)],
    );
    let repo = gpg_repo("nokeys", file_url(&root.path().join("repo")), vec![]);
    let metas: Vec<PackageMeta> = pkgs.iter().map(|(m, _)| m.clone()).collect();
    let dl = fast_downloader(1);
    let msg = format!(
        "{:#}",
        fetch_packages(&dl, cache.path(), &[repo], &metas).unwrap_err()
    );
    eprintln!("{msg}");
    assert!(msg.contains("nokeys") && msg.contains("gpgkey"), "{msg}");
    // Nothing was downloaded for a repo whose keys are missing.
    assert!(files_under(cache.path()).is_empty());
}

#[test]
fn signed_package_with_altered_payload_is_refused() {
    let (good, _) = keys();
    let root = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let key = root.path().join("good.asc");
    std::fs::write(&key, &good.public).unwrap();
    let dir = root.path().join("repo");
    let pkgs = repo_of(&dir, "r", &[(spec("tampered"), Some(good))]);
    // Change the last payload byte; the repodata digest is made to match,
    // so only the package's own signed digests can catch it.
    let path = &pkgs[0].1;
    let mut data = std::fs::read(path).unwrap();
    let last = data.len() - 1;
    data[last] ^= 0x55;
    std::fs::write(path, &data).unwrap();
    let s = spec("tampered");
    let meta = meta_for(&s, path, "r", &s.filename());
    let (ok, text) = rpm_k(&key, path);
    assert!(!ok, "rpm -K must refuse it too: {text}");

    let key_url = file_url(root.path()).join("good.asc").unwrap().to_string();
    let repo = gpg_repo("r", file_url(&dir), vec![key_url]);
    let dl = fast_downloader(1);
    let msg = format!(
        "{:#}",
        fetch_packages(&dl, cache.path(), &[repo], std::slice::from_ref(&meta)).unwrap_err()
    );
    eprintln!("{msg}");
    assert!(
        msg.contains("refusing package tampered-2.0-3.x86_64"),
        "{msg}"
    );
    assert!(!cache_path(cache.path(), &meta).exists());
}

/// fedora-coreos-config's pool repo has gpgcheck=1 and no gpgkey: its
/// packages are checked against the other repos' keys, as dnf checks them
/// against the keyring all repos' keys go into.
#[test]
fn gpgcheck_without_keys_uses_the_other_repos_keys() {
    let (good, other) = keys();
    let root = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let key = root.path().join("good.asc");
    std::fs::write(&key, &good.public).unwrap();
    let main = repo_of(
        &root.path().join("main"),
        "main",
        &[(spec("base"), Some(good))],
    );
    let pool = repo_of(
        &root.path().join("pool"),
        "pool",
        &[
            (spec("pooled"), Some(good)),
            (spec("stranger"), Some(other)),
        ],
    );
    let repos = [
        gpg_repo(
            "main",
            file_url(&root.path().join("main")),
            vec![format!("file://{}", key.display())],
        ),
        gpg_repo("pool", file_url(&root.path().join("pool")), vec![]),
    ];
    let dl = fast_downloader(1);
    let ok: Vec<PackageMeta> = [&main[0], &pool[0]]
        .iter()
        .map(|(m, _)| m.clone())
        .collect();
    fetch_packages(&dl, cache.path(), &repos, &ok).unwrap();
    let bad: Vec<PackageMeta> = vec![pool[1].0.clone()];
    let msg = format!(
        "{:#}",
        fetch_packages(&dl, cache.path(), &repos, &bad).unwrap_err()
    );
    assert!(msg.contains("stranger"), "{msg}");
}
