//! `cosa sign` / `cosa verify` on a real build of the sample config, with
//! the field's tools as the oracle: keys made by GnuPG, `gpg --verify` for
//! every .sig, `ostree show --gpg-verify` for the commit, `openssl pkeyutl`
//! for the ed25519 signature (Debian's ostree 2022.7 is built without
//! ed25519 support, so `ostree sign --verify` cannot check it there), and
//! `gpg --decrypt` for the container signature.

use crate::common;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

thread_local! {
    static BIN: std::cell::RefCell<Option<PathBuf>> = const { std::cell::RefCell::new(None) };
}

/// Pin this test's `cosa` binary: a hard link into the test's temp dir, so
/// that a concurrent build replacing the shared target's binary cannot swap
/// it mid-test. Checks that the binary knows `sign`.
fn pin_binary(t: &Path) {
    let src = Path::new(env!("CARGO_BIN_EXE_cosa"));
    let dst = t.join("cosa-bin");
    if std::fs::hard_link(src, &dst).is_err() {
        std::fs::copy(src, &dst).unwrap();
    }
    let o = Command::new(&dst)
        .args(["sign", "--help"])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{} does not know `sign`: it was replaced by another build; rerun",
        src.display()
    );
    BIN.with(|b| *b.borrow_mut() = Some(dst));
}

/// `cosa` as tests/common makes it, from the pinned binary.
fn cosa(wd: &Path) -> Command {
    let bin = BIN.with(|b| b.borrow().clone()).expect("pin_binary first");
    let mut c = Command::new(bin);
    c.env("COSA_WORKDIR", wd)
        .env("CI", "true")
        .env_remove("RUST_LOG")
        .env_remove("COSA_SIGN_PASSPHRASE");
    c
}

const PASS: &str = "Sekrit-passphrase-4711";
const EMAIL: &str = "sign-test@example.com";

fn sample_build(t: &Path) -> PathBuf {
    pin_binary(t);
    let repo = t.join("sample-repo");
    cosa_testkit::sample::make_sample_repo(&repo, "x86_64").unwrap();
    let wd = t.join("wd");
    let manifests = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests");
    run(cosa(&wd).args(["init", "--transient"]).arg(manifests), true);
    run(
        cosa(&wd)
            .env("DNF_VAR_cosa_sample_repo", &repo)
            .args(["build", "--arch", "x86_64"]),
        true,
    );
    wd
}

fn tool(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("tool runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn gpg(home: &Path) -> Command {
    let mut c = Command::new("gpg");
    c.env("GNUPGHOME", home).args(["--batch", "--no-tty"]);
    c
}

fn private(p: &Path) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).unwrap();
}

pub(crate) struct Keys {
    home: PathBuf,
    pub(crate) secret: PathBuf,
    pub(crate) public: PathBuf,
}

impl Drop for Keys {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", &self.home)
            .args(["--kill", "gpg-agent"])
            .output();
    }
}

/// A fresh key made by GnuPG (with a passphrase or without), exported
/// armored or binary.
pub(crate) fn gpg_key(dir: &Path, passphrase: &str, armor: bool) -> Keys {
    let home = dir.join("gnupg");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
    let pw = ["--pinentry-mode", "loopback", "--passphrase", passphrase];
    tool(
        gpg(&home)
            .args(pw)
            .args(["--quick-gen-key", &format!("Cosa Sign Test <{EMAIL}>")])
            .args(["default", "default", "never"]),
    );
    let mut exp = gpg(&home);
    exp.args(pw);
    if armor {
        exp.arg("--armor");
    }
    let secret = dir.join(if armor { "key.asc" } else { "key.gpg" });
    std::fs::write(
        &secret,
        tool(exp.args(["--export-secret-keys", EMAIL])).stdout,
    )
    .unwrap();
    private(&secret);
    let public = dir.join("pub.asc");
    std::fs::write(
        &public,
        tool(gpg(&home).args(["--armor", "--export", EMAIL])).stdout,
    )
    .unwrap();
    Keys {
        home,
        secret,
        public,
    }
}

/// A GnuPG home and an ostree keyring dir holding only the public key.
fn verifier(dir: &Path, keys: &Keys) -> (PathBuf, PathBuf) {
    let home = dir.join("verify-gnupg");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
    tool(gpg(&home).arg("--import").arg(&keys.public));
    let ring = dir.join("ostree-keyring");
    std::fs::create_dir_all(&ring).unwrap();
    std::fs::write(
        ring.join("cosa-test.gpg"),
        tool(gpg(&home).args(["--export", EMAIL])).stdout,
    )
    .unwrap();
    (home, ring)
}

fn build_dir(wd: &Path) -> PathBuf {
    let id = std::fs::read_link(wd.join("builds/latest")).unwrap();
    wd.join("builds").join(id).join("x86_64")
}

fn meta(wd: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(build_dir(wd).join("meta.json")).unwrap()).unwrap()
}

fn all_output(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// An ed25519 key made by openssl, written as `ostree sign` takes it
/// (base64 of seed and public key) plus the public key alone, base64 and PEM.
fn ed25519_key(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let pem = dir.join("ed.pem");
    tool(
        Command::new("openssl")
            .args(["genpkey", "-algorithm", "ed25519", "-out"])
            .arg(&pem),
    );
    let der = tool(
        Command::new("openssl")
            .args(["pkey", "-outform", "DER", "-in"])
            .arg(&pem),
    )
    .stdout;
    let pub_der = tool(
        Command::new("openssl")
            .args(["pkey", "-pubout", "-outform", "DER", "-in"])
            .arg(&pem),
    )
    .stdout;
    let seed = &der[der.len() - 32..];
    let public = &pub_der[pub_der.len() - 32..];
    let key = dir.join("ed25519.key");
    std::fs::write(&key, b64.encode([seed, public].concat()) + "\n").unwrap();
    private(&key);
    let pubf = dir.join("ed25519.pub");
    std::fs::write(&pubf, b64.encode(public) + "\n").unwrap();
    let pub_pem = dir.join("ed25519.pub.pem");
    tool(
        Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&pem)
            .arg("-out")
            .arg(&pub_pem),
    );
    (key, pubf, pub_pem)
}

#[test]
fn sign_everything_and_check_with_gpg_ostree_and_openssl() {
    let t = tempfile::tempdir().unwrap();
    let wd = sample_build(t.path());
    let keys = gpg_key(t.path(), PASS, true);
    let (vhome, ring) = verifier(t.path(), &keys);
    let (edkey, edpub, edpem) = ed25519_key(t.path());
    let digest = format!("sha256:{}", "5a".repeat(32));
    let image = "127.0.0.1:5000/cosa/sample-os";
    run(
        cosa(&wd).args(["meta", "--set"]).arg(format!(
            r#"base-oscontainer={{"image":"{image}","digest":"{digest}"}}"#
        )),
        true,
    );

    // Loose permissions are refused, naming the file and its mode.
    std::fs::set_permissions(&keys.secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = run(
        cosa(&wd)
            .env("COSA_SIGN_PASSPHRASE", PASS)
            .args(["sign", "--images", "--key"])
            .arg(&keys.secret),
        false,
    );
    let e = stderr(&o);
    assert!(
        e.contains("0644") && e.contains(&keys.secret.display().to_string()),
        "{e}"
    );
    private(&keys.secret);

    // A wrong passphrase fails before anything is written.
    let o = run(
        cosa(&wd)
            .env("COSA_SIGN_PASSPHRASE", "not-it")
            .args(["sign", "--images", "--key"])
            .arg(&keys.secret),
        false,
    );
    assert!(stderr(&o).contains("passphrase"), "{}", stderr(&o));
    assert!(!all_output(&o).contains("not-it"));
    let dir = build_dir(&wd);
    assert!(
        !std::fs::read_dir(&dir).unwrap().any(|e| e
            .unwrap()
            .path()
            .extension()
            .is_some_and(|x| x == "sig"))
    );

    let o = run(
        cosa(&wd)
            .env("COSA_SIGN_PASSPHRASE", PASS)
            .args([
                "sign",
                "--images",
                "--ostree",
                "--oci",
                "--provenance",
                "--key",
            ])
            .arg(&keys.secret)
            .arg("--ed25519-key")
            .arg(&edkey),
        true,
    );
    let out = all_output(&o);
    assert!(!out.contains(PASS), "the passphrase leaked: {out}");
    // The key was not copied into the working directory.
    let key_bytes = std::fs::read(&keys.secret).unwrap();
    for f in walk(&wd) {
        assert_ne!(std::fs::read(&f).unwrap(), key_bytes, "{}", f.display());
    }

    // meta.json stays schema-valid and its ostree entry matches the re-export.
    let m = meta(&wd);
    cosa::store::meta::validate(&m).expect("meta.json is schema-valid");
    let commit = m["ostree-commit"].as_str().unwrap().to_string();
    let images = m["images"].as_object().unwrap();
    assert!(!images.is_empty());
    for (name, img) in images {
        let path = dir.join(img["path"].as_str().unwrap());
        let data = std::fs::read(&path).unwrap();
        assert_eq!(
            cosa::ostree::objects::sha256_hex(&data),
            img["sha256"].as_str().unwrap(),
            "{name}"
        );
        // gpg checks every .sig.
        let mut sig = path.clone().into_os_string();
        sig.push(".sig");
        let o = tool(gpg(&vhome).arg("--verify").arg(&sig).arg(&path));
        assert!(stderr(&o).contains("Good signature"), "{}", stderr(&o));
    }

    // ostree itself checks the commit's OpenPGP signature.
    let repo = wd.join("tmp/repo");
    let o = tool(
        Command::new("ostree")
            .arg(format!("--repo={}", repo.display()))
            .arg("show")
            .arg(format!("--gpg-homedir={}", ring.display()))
            .arg(&commit),
    );
    let show = String::from_utf8_lossy(&o.stdout);
    assert!(
        show.contains("Good signature from \"Cosa Sign Test"),
        "{show}"
    );
    tool(
        Command::new("ostree")
            .arg(format!("--repo={}", repo.display()))
            .args(["show", "--print-detached-metadata-key=ostree.sign.ed25519"])
            .arg(&commit),
    );
    assert!(
        String::from_utf8_lossy(
            &tool(
                Command::new("ostree")
                    .arg(format!("--repo={}", repo.display()))
                    .arg("fsck")
            )
            .stdout
        )
        .contains("no errors")
    );

    // The re-exported artifact carries the signature: import it into a
    // fresh repo, ask ostree.
    let unpacked = t.path().join("unpacked");
    let fresh = cosa::ostree::Repo::init_archive(&unpacked).unwrap();
    let artifact = dir.join(m["images"]["ostree"]["path"].as_str().unwrap());
    assert_eq!(
        cosa::publish::oci::import_artifact(&fresh, &artifact).unwrap(),
        commit
    );
    let o = tool(
        Command::new("ostree")
            .arg(format!("--repo={}", unpacked.display()))
            .arg("show")
            .arg(format!("--gpg-homedir={}", ring.display()))
            .arg(&commit),
    );
    let show = String::from_utf8_lossy(&o.stdout);
    assert!(show.contains("Good signature from"), "{show}");

    // openssl checks the ed25519 signature over the commit object.
    let r = cosa::ostree::Repo::open(&repo).unwrap();
    let md = r.read_commit_detached_metadata(&commit).unwrap().unwrap();
    let eds = cosa::sign::ostree::signatures(&md, cosa::sign::ostree::ED25519).unwrap();
    assert_eq!(eds.len(), 1);
    let sigf = t.path().join("ed.sig");
    std::fs::write(&sigf, &eds[0]).unwrap();
    let obj = repo.join(format!("objects/{}/{}.commit", &commit[..2], &commit[2..]));
    let o = tool(
        Command::new("openssl")
            .args(["pkeyutl", "-verify", "-pubin", "-rawin", "-inkey"])
            .arg(&edpem)
            .arg("-in")
            .arg(&obj)
            .arg("-sigfile")
            .arg(&sigf),
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("Signature Verified Successfully"));

    // commitmeta.json records the signatures.
    let cm: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("commitmeta.json")).unwrap()).unwrap();
    assert_eq!(cm["ostree.gpgsigs"].as_array().unwrap().len(), 1);
    assert_eq!(cm["ostree.sign.ed25519"][0], hex::encode(&eds[0]));
    assert!(cm.get("rpmostree.rpmdb.pkglist").is_some());

    // The container signature is an OpenPGP signed message gpg reads.
    let sig = dir
        .join("sigstore")
        .join(format!("cosa/sample-os@sha256={}", "5a".repeat(32)))
        .join("signature-1");
    let o = tool(gpg(&vhome).arg("--decrypt").arg(&sig));
    assert!(stderr(&o).contains("Good signature"), "{}", stderr(&o));
    let payload: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(payload["critical"]["type"], "atomic container signature");
    assert_eq!(payload["critical"]["identity"]["docker-reference"], image);
    assert_eq!(
        payload["critical"]["image"]["docker-manifest-digest"],
        digest
    );

    // Signing again replaces this key's signatures instead of piling them up.
    run(
        cosa(&wd)
            .env("COSA_SIGN_PASSPHRASE", PASS)
            .args(["sign", "--ostree", "--oci", "--key"])
            .arg(&keys.secret),
        true,
    );
    let md = r.read_commit_detached_metadata(&commit).unwrap().unwrap();
    assert_eq!(
        cosa::sign::ostree::signatures(&md, cosa::sign::ostree::GPGSIGS)
            .unwrap()
            .len(),
        1
    );
    assert!(!sig.with_file_name("signature-2").exists());
    // The tarball changed with the re-export: write the provenance and
    // sign the images again.
    run(
        cosa(&wd)
            .env("COSA_SIGN_PASSPHRASE", PASS)
            .args(["sign", "--provenance", "--images", "--key"])
            .arg(&keys.secret),
        true,
    );

    // cosa verify agrees, with the armored and the binary keyring.
    let binring = ring.join("cosa-test.gpg");
    for keyring in [&keys.public, &binring] {
        let o = run(
            cosa(&wd)
                .args(["verify", "--keyring"])
                .arg(keyring)
                .arg("--ed25519-public-key")
                .arg(&edpub),
            true,
        );
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(!out.contains("bad") && !out.contains("unsigned"), "{out}");
        // Every image (the provenance and the SBOM among them), the
        // provenance's DSSE signature and subjects, the commit twice, the
        // container image.
        assert!(out.contains("good     provenance"), "{out}");
        assert_eq!(
            out.lines().filter(|l| l.starts_with("good")).count(),
            images.len() + 4,
            "{out}"
        );
    }

    // An ed25519 public key that did not sign: the commit's ed25519 item is bad.
    let other_ed = t.path().join("other-ed");
    std::fs::create_dir_all(&other_ed).unwrap();
    let (_, wrong_pub, _) = ed25519_key(&other_ed);
    let o = run(
        cosa(&wd)
            .args(["verify", "--keyring"])
            .arg(&keys.public)
            .arg("--ed25519-public-key")
            .arg(&wrong_pub),
        false,
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("bad      ostree commit") && out.contains("ostree.sign.ed25519"),
        "{out}"
    );
    assert!(stderr(&o).contains("1 of"), "{}", stderr(&o));

    // A corrupted artifact is reported bad; so is a corrupted container signature.
    let tar = dir.join(images["ostree"]["path"].as_str().unwrap());
    let mut data = std::fs::read(&tar).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0x40;
    std::fs::write(&tar, &data).unwrap();
    let mut sigdata = std::fs::read(&sig).unwrap();
    let n = sigdata.len();
    sigdata[n - 3] ^= 1;
    std::fs::write(&sig, &sigdata).unwrap();
    let o = run(
        cosa(&wd).args(["verify", "--keyring"]).arg(&keys.public),
        false,
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("bad      image ostree"), "{out}");
    assert!(out.contains("bad      container"), "{out}");
    // The provenance's subject no longer matches the changed file.
    assert!(out.contains("bad      provenance"), "{out}");
    assert!(out.contains("good     ostree commit"), "{out}");
    let e = stderr(&o);
    assert!(e.contains("image ostree") && e.contains("(bad)"), "{e}");
    // The same verdicts as JSON, and the same exit status.
    let o = run(
        cosa(&wd)
            .args(["verify", "--json", "--keyring"])
            .arg(&keys.public),
        false,
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["good"], false, "{v}");
    let status = |prefix: &str| {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"].as_str().unwrap().starts_with(prefix))
            .map(|i| i["status"].as_str().unwrap().to_string())
    };
    assert_eq!(status("image ostree").as_deref(), Some("bad"), "{v}");
    assert_eq!(status("ostree commit").as_deref(), Some("good"), "{v}");

    // A keyring without the signing key: nothing verifies.
    let other = tempfile::tempdir().unwrap();
    let k2 = gpg_key(other.path(), "", true);
    let o = run(
        cosa(&wd).args(["verify", "--keyring"]).arg(&k2.public),
        false,
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("bad      ostree commit"), "{out}");
    assert!(out.contains("not in the keyring"), "{out}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                out.push(e.path());
            }
        }
    }
    out
}

#[test]
fn unprotected_binary_key_passphrase_file_and_unsigned_items() {
    let t = tempfile::tempdir().unwrap();
    let wd = sample_build(t.path());
    let keys = gpg_key(t.path(), "", false);
    let (vhome, _) = verifier(t.path(), &keys);

    // Nothing signed yet: verify names every item as unsigned.
    let o = run(
        cosa(&wd).args(["verify", "--keyring"]).arg(&keys.public),
        false,
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("unsigned image ostree"), "{out}");
    assert!(out.contains("unsigned ostree commit"), "{out}");
    assert!(stderr(&o).contains("unsigned or bad"), "{}", stderr(&o));

    // --oci without a pushed container is a clear error.
    let o = run(
        cosa(&wd).args(["sign", "--oci", "--key"]).arg(&keys.secret),
        false,
    );
    assert!(stderr(&o).contains("no base-oscontainer"), "{}", stderr(&o));
    // Nothing to do is an error too.
    let o = run(cosa(&wd).args(["sign", "--key"]).arg(&keys.secret), false);
    assert!(stderr(&o).contains("nothing to sign"), "{}", stderr(&o));

    // A passphrase file readable by others is refused.
    let pf = t.path().join("pass");
    std::fs::write(&pf, "\n").unwrap();
    std::fs::set_permissions(&pf, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = run(
        cosa(&wd)
            .args(["sign", "--images", "--key"])
            .arg(&keys.secret)
            .arg("--passphrase-file")
            .arg(&pf),
        false,
    );
    assert!(stderr(&o).contains("passphrase file") && stderr(&o).contains("0644"));
    private(&pf);
    run(
        cosa(&wd)
            .args(["sign", "--images", "--key"])
            .arg(&keys.secret)
            .arg("--passphrase-file")
            .arg(&pf),
        true,
    );
    let dir = build_dir(&wd);
    for (_, img) in meta(&wd)["images"].as_object().unwrap() {
        let path = dir.join(img["path"].as_str().unwrap());
        let mut sig = path.clone().into_os_string();
        sig.push(".sig");
        let o = tool(gpg(&vhome).arg("--verify").arg(&sig).arg(&path));
        assert!(stderr(&o).contains("Good signature"), "{}", stderr(&o));
    }
    // Images good, commit still unsigned: verify fails naming the commit only.
    let o = run(
        cosa(&wd).args(["verify", "--keyring"]).arg(&keys.public),
        false,
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("good     image ostree"), "{out}");
    let e = stderr(&o);
    // Every image plus the commit is checked; only the commit is unsigned.
    let items = meta(&wd)["images"].as_object().unwrap().len() + 1;
    assert!(
        e.contains(&format!("1 of {items}")) && e.contains("ostree commit"),
        "{e}"
    );
}
