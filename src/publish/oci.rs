//! A build's OSTree commit as an OCI image in the ostree-native container
//! format that rpm-ostree and bootc (ostree-ext) consume, written as an OCI
//! archive (an OCI image layout in a tar, what skopeo's `oci-archive:` reads),
//! imported back with every object verified, and pushed to a registry.
//!
//! The single layer (gzip) follows ostree-ext's "tar" format, version 1:
//! - `./` (the root, with the commit's root dirmeta), then an ostree repo at
//!   `sysroot/ostree/repo` in `bare-split-xattrs` mode: its directories
//!   (`objects/00`..`objects/ff`, refs, state, tmp...) and `config`;
//! - the commit object, its detached metadata (`.commitmeta`), then every
//!   dirtree and dirmeta object, walking the tree, interleaved with the
//!   directories at their paths (`./usr/...`, `usr/etc` shown as `etc`);
//!   `var/tmp` (1777) when the commit has none;
//! - every content object once, by checksum: its xattrs as
//!   `objects/XX/<sha256 of the a(ayay) xattrs>.file-xattrs`, a
//!   `<checksum>.file-xattrs-link` hardlink to it, the `<checksum>.file`
//!   itself (owner, mode and content, or a symlink), then each path of the
//!   commit holding it as a hardlink to the object (empty regular files as
//!   empty files, as ostree-ext does).
//!
//! Labels (also the manifest's annotations): `ostree.commit`,
//! `ostree.final-diffid`, `org.opencontainers.image.version`,
//! `containers.bootc=1`, `ostree.bootable=true` for a commit with a kernel,
//! `ostree.linux`. Every tar entry has mtime 0 in the layer and the commit
//! timestamp in the archive, entries are in a fixed order and JSON is
//! sorted, so one commit always gives the same bytes.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

use crate::util::digest::{self, HashingWriter};
use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value as Json, json};

use crate::ostree::export::verify_object;
use crate::ostree::gvariant::Type;
use crate::ostree::objects::{FileMeta, parse_filez};
use crate::ostree::{ObjectType, Repo, Value};
use crate::util::time;

pub const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Label: the ostree commit the image carries.
pub const LABEL_COMMIT: &str = "ostree.commit";
/// Label: the diffid of the last layer that belongs to the ostree commit.
pub const LABEL_DIFFID: &str = "ostree.final-diffid";
/// Label: the commit is bootable (has a kernel).
pub const LABEL_BOOTABLE: &str = "ostree.bootable";
/// Label: a bootc-compatible image.
pub const LABEL_BOOTC: &str = "containers.bootc";
/// Label: the OCI image version (the build's version).
pub const LABEL_VERSION: &str = "org.opencontainers.image.version";

const REPO: &str = "sysroot/ostree/repo";
const OBJECTS: &str = "sysroot/ostree/repo/objects/";
const REPO_CONFIG: &str = "[core]\nrepo_version=1\nmode=bare-split-xattrs\n";

/// The name of a build's ostree artifact.
pub fn artifact_name(name: &str, version: &str, arch: &str) -> String {
    format!("{name}-{version}-ostree.{arch}.ociarchive")
}

/// Whether `path` is an OCI archive (by its extension); anything else is
/// the older archive-repo tarball of `Repo::export_commit`.
pub fn is_ociarchive(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "ociarchive")
}

/// Write `commit` to `file`: an OCI archive for `.ociarchive`, the older
/// tarball otherwise.
pub fn export_artifact(repo: &Repo, commit: &str, arch: &str, file: &Path) -> Result<()> {
    if is_ociarchive(file) {
        export_ociarchive(repo, commit, arch, file).map(drop)
    } else {
        repo.export_commit(commit, file)
    }
}

/// Import a build's ostree artifact (either format, by extension); returns the commit.
/// Make sure `repo` holds the commit of the build `m` (in `build_dir`):
/// when it does not, import it from the build's ostree artifact, which must
/// hold exactly that commit.
pub fn ensure_build_commit(
    repo: &Repo,
    m: &crate::store::meta::Meta,
    build_dir: &Path,
) -> Result<()> {
    if repo.has_object(&m.ostree_commit, ObjectType::Commit) {
        return Ok(());
    }
    let art = m.images.get("ostree").with_context(|| {
        format!(
            "commit {} of build {} is not in tmp/repo and the build has no ostree artifact to import it from",
            m.ostree_commit, m.buildid
        )
    })?;
    let tar = build_dir.join(&art.path);
    eprintln!(
        "Importing commit {} from {}",
        m.ostree_commit,
        tar.display()
    );
    let got = import_artifact(repo, &tar)?;
    ensure!(
        got == m.ostree_commit,
        "{} holds commit {got}, but build {} is commit {}",
        tar.display(),
        m.buildid,
        m.ostree_commit
    );
    Ok(())
}

pub fn import_artifact(repo: &Repo, file: &Path) -> Result<String> {
    if is_ociarchive(file) {
        import_ociarchive(repo, file)
    } else {
        repo.import_commit(file)
    }
}

/// The Go architecture name OCI uses for an RPM basearch.
pub fn goarch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "i686" | "i386" => "386",
        other => other,
    }
}

/// What an export produced.
#[derive(Debug, Clone)]
pub struct OciImage {
    /// `sha256:...` of the manifest (the image digest a registry reports).
    pub manifest_digest: String,
    pub config_digest: String,
    /// `sha256:...` of the uncompressed layer.
    pub diff_id: String,
    pub labels: BTreeMap<String, String>,
}

fn object_path(checksum: &str, ext: &str) -> String {
    format!("{OBJECTS}{}/{}.{ext}", &checksum[..2], &checksum[2..])
}

/// `usr/etc` is shown as `etc` in the tar stream, as ostree-ext does.
fn map_etc(p: &str) -> String {
    match p.strip_prefix("usr/etc") {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("etc{rest}"),
        _ => p.to_string(),
    }
}

fn dir_header(uid: u32, gid: u32, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_uid(uid.into());
    h.set_gid(gid.into());
    h.set_mode(mode & !libc::S_IFMT);
    h.set_size(0);
    h.set_mtime(0);
    h
}

fn data_header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mode(0o644);
    h.set_size(size);
    h.set_mtime(0);
    h
}

struct LayerWriter<'a, W: Write> {
    repo: &'a Repo,
    out: tar::Builder<W>,
    wrote: HashSet<(String, ObjectType)>,
    /// Content checksum -> the paths holding it (in the tar's spelling).
    files: BTreeMap<String, BTreeSet<String>>,
    wrote_xattrs: HashSet<String>,
    has_vartmp: bool,
}

impl<W: Write> LayerWriter<'_, W> {
    fn dir(&mut self, path: &str, uid: u32, gid: u32, mode: u32) -> Result<()> {
        let mut h = dir_header(uid, gid, mode);
        self.out
            .append_data(&mut h, path, io::empty())
            .with_context(|| format!("writing directory {path}"))
    }

    fn data(&mut self, path: &str, data: &[u8]) -> Result<()> {
        let mut h = data_header(data.len() as u64);
        self.out
            .append_data(&mut h, path, data)
            .with_context(|| format!("writing {path}"))
    }

    fn metadata_object(&mut self, checksum: &str, kind: ObjectType) -> Result<Vec<u8>> {
        let data = self.repo.read_object(checksum, kind)?;
        if self.wrote.insert((checksum.to_string(), kind)) {
            self.data(&object_path(checksum, kind.extension()), &data)?;
        }
        Ok(data)
    }

    fn repo_structure(&mut self) -> Result<()> {
        for d in [
            "sysroot",
            "sysroot/ostree",
            REPO,
            "sysroot/ostree/repo/objects",
        ] {
            self.dir(d, 0, 0, 0o755)?;
        }
        for i in 0..=0xffu32 {
            self.dir(&format!("{OBJECTS}{i:02x}"), 0, 0, 0o755)?;
        }
        for d in [
            "extensions",
            "refs",
            "refs/heads",
            "refs/mirrors",
            "refs/remotes",
            "state",
            "tmp",
            "tmp/cache",
        ] {
            self.dir(&format!("{REPO}/{d}"), 0, 0, 0o755)?;
        }
        self.data(&format!("{REPO}/config"), REPO_CONFIG.as_bytes())
    }

    /// Write dirtree `tree` (at `path`, "" for the root) and everything under it.
    fn tree(&mut self, path: &str, tree: &str) -> Result<()> {
        let data = self.metadata_object(tree, ObjectType::DirTree)?;
        let dt = crate::ostree::DirTree::parse(&data)
            .with_context(|| format!("parsing dirtree {tree}"))?;
        for (name, csum) in &dt.files {
            let p = map_etc(&join(path, name));
            self.files.entry(csum.clone()).or_default().insert(p);
        }
        if path == "var/tmp" {
            self.has_vartmp = true;
        }
        for (name, sub, meta) in &dt.dirs {
            let md = self.metadata_object(meta, ObjectType::DirMeta)?;
            let md = crate::ostree::DirMeta::parse(&md)
                .with_context(|| format!("parsing dirmeta {meta}"))?;
            let p = join(path, name);
            // `sysroot` is already in the stream as the repository's parent.
            if !(path.is_empty() && name == "sysroot") {
                self.dir(&format!("./{}", map_etc(&p)), md.uid, md.gid, md.mode)?;
            }
            self.tree(&p, sub)?;
        }
        Ok(())
    }

    fn content(&mut self, checksum: &str, paths: &BTreeSet<String>) -> Result<()> {
        let data = self.repo.read_object(checksum, ObjectType::File)?;
        let (meta, content) =
            parse_filez(&data).with_context(|| format!("reading content object {checksum}"))?;
        // Xattrs first, so an importer has them when the object comes.
        let header = meta.header();
        let xattrs = header
            .as_tuple()
            .and_then(|t| t.get(5))
            .context("file header without xattrs")?
            .to_bytes();
        let xsum = digest::sha256_hex(&xattrs);
        let xpath = object_path(&xsum, "file-xattrs");
        if self.wrote_xattrs.insert(xsum) {
            self.data(&xpath, &xattrs)?;
        }
        let mut h = data_header(0);
        h.set_entry_type(tar::EntryType::Link);
        self.out
            .append_link(&mut h, object_path(checksum, "file-xattrs-link"), &xpath)
            .with_context(|| format!("writing the xattrs link of {checksum}"))?;

        let objpath = object_path(checksum, "file");
        let mut h = tar::Header::new_gnu();
        h.set_uid(meta.uid.into());
        h.set_gid(meta.gid.into());
        h.set_mode(meta.mode & !libc::S_IFMT);
        h.set_mtime(0);
        let symlink = meta.is_symlink();
        if symlink {
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            if meta.symlink.contains("//") {
                // Keep a denormal target byte for byte (ostree-ext does too).
                h.set_link_name_literal(&meta.symlink)
                    .with_context(|| format!("symlink target of {checksum}"))?;
                self.out.append_data(&mut h, &objpath, io::empty())?;
            } else {
                self.out
                    .append_link(&mut h, &objpath, &meta.symlink)
                    .with_context(|| format!("writing symlink object {checksum}"))?;
            }
        } else {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(content.len() as u64);
            self.out
                .append_data(&mut h, &objpath, content.as_slice())
                .with_context(|| format!("writing content object {checksum}"))?;
        }
        for p in paths {
            let mut l = h.clone();
            l.set_size(0);
            if !symlink && content.is_empty() {
                l.set_entry_type(tar::EntryType::Regular);
                self.out.append_data(&mut l, p, io::empty())?;
            } else {
                l.set_entry_type(tar::EntryType::Link);
                self.out
                    .append_link(&mut l, p, &objpath)
                    .with_context(|| format!("writing {p}"))?;
            }
        }
        Ok(())
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// Write the layer tar of `commit` into `out`.
fn write_layer<W: Write>(repo: &Repo, commit: &str, out: W) -> Result<W> {
    let c = repo.read_commit(commit)?;
    let mut w = LayerWriter {
        repo,
        out: tar::Builder::new(out),
        wrote: HashSet::new(),
        files: BTreeMap::new(),
        wrote_xattrs: HashSet::new(),
        has_vartmp: false,
    };
    w.out.mode(tar::HeaderMode::Deterministic);
    let rootmeta = repo.read_object(&c.root.1, ObjectType::DirMeta)?;
    let rootmeta = crate::ostree::DirMeta::parse(&rootmeta)?;
    w.dir("./", rootmeta.uid, rootmeta.gid, rootmeta.mode)?;
    w.repo_structure()?;
    w.metadata_object(commit, ObjectType::Commit)?;
    if repo.has_object(commit, ObjectType::CommitMeta) {
        w.metadata_object(commit, ObjectType::CommitMeta)?;
    }
    w.metadata_object(&c.root.1, ObjectType::DirMeta)?;
    w.tree("", &c.root.0)?;
    if !w.has_vartmp {
        w.dir("var/tmp", 0, 0, 0o1777)?;
    }
    let files = std::mem::take(&mut w.files);
    for (csum, paths) in &files {
        w.content(csum, paths)?;
    }
    w.out.into_inner().context("finishing the layer tar")
}

fn commit_labels(repo: &Repo, commit: &str, diff_id: &str) -> Result<BTreeMap<String, String>> {
    let c = repo.read_commit(commit)?;
    let mut labels = BTreeMap::new();
    labels.insert(LABEL_COMMIT.to_string(), commit.to_string());
    labels.insert(LABEL_DIFFID.to_string(), diff_id.to_string());
    labels.insert(LABEL_BOOTC.to_string(), "1".to_string());
    if let Some(v) = c.metadata.get("version").and_then(Value::as_str) {
        labels.insert(LABEL_VERSION.to_string(), v.to_string());
    }
    if matches!(c.metadata.get("ostree.bootable"), Some(Value::Bool(true))) {
        labels.insert(LABEL_BOOTABLE.to_string(), "true".to_string());
    }
    if let Some(v) = c.metadata.get("ostree.linux").and_then(Value::as_str) {
        labels.insert("ostree.linux".to_string(), v.to_string());
    }
    Ok(labels)
}

fn digest_of(data: &[u8]) -> String {
    format!("sha256:{}", digest::sha256_hex(data))
}

/// Write `commit` as an OCI archive at `file` (atomically).
pub fn export_ociarchive(repo: &Repo, commit: &str, arch: &str, file: &Path) -> Result<OciImage> {
    let c = repo.read_commit(commit)?;
    let dir = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // The layer: tar -> (diffid) -> gzip -> (digest) -> temp file.
    let layer_tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a temp file in {}", dir.display()))?;
    let sink = HashingWriter::sha256(BufWriter::with_capacity(
        1 << 20,
        layer_tmp
            .reopen()
            .context("reopening the layer temp file")?,
    ));
    let gz = flate2::GzBuilder::new().write(sink, flate2::Compression::default());
    let tarw = write_layer(repo, commit, HashingWriter::sha256(gz))
        .with_context(|| format!("writing the container layer of commit {commit}"))?;
    let (gz, diff_hex, _) = tarw.finish();
    let diff_id = format!("sha256:{diff_hex}");
    let sink = gz.finish().context("finishing gzip")?;
    let (layer_out, layer_hex, layer_size) = sink.finish();
    let layer_digest = format!("sha256:{layer_hex}");
    layer_out
        .into_inner()
        .map_err(|e| e.into_error())
        .context("flushing the layer")?;

    let labels = commit_labels(repo, commit, &diff_id)?;
    let created = time::format_rfc3339(c.timestamp as i64);
    let description = if c.subject.is_empty() {
        format!("ostree export of commit {commit}")
    } else {
        c.subject.clone()
    };
    // The treefile's container-cmd, kept in the commit as rpm-ostree does.
    let cmd: Option<Vec<&str>> = c
        .metadata
        .get("ostree.container-cmd")
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|s| s.as_str()).collect());
    let mut inner = json!({"Labels": labels});
    if let Some(cmd) = cmd {
        inner["Cmd"] = json!(cmd);
    }
    let config = json!({
        "architecture": goarch(arch),
        "os": "linux",
        "created": created,
        "config": inner,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created, "created_by": description}],
    });
    let config = serde_json::to_vec(&config)?;
    let config_digest = digest_of(&config);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": MEDIA_LAYER_GZIP, "digest": layer_digest, "size": layer_size}],
        "annotations": labels,
    });
    let manifest = serde_json::to_vec(&manifest)?;
    let manifest_digest = digest_of(&manifest);
    let index = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [{
            "mediaType": MEDIA_MANIFEST,
            "digest": manifest_digest,
            "size": manifest.len(),
            "platform": {"architecture": goarch(arch), "os": "linux"},
        }],
    });
    let index = serde_json::to_vec(&index)?;

    // The archive: blobs sorted by digest, then index.json and oci-layout.
    let mtime = c.timestamp;
    let tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a temp file in {}", dir.display()))?;
    let mut out = tar::Builder::new(BufWriter::with_capacity(1 << 20, tmp));
    out.mode(tar::HeaderMode::Deterministic);
    for d in ["blobs/", "blobs/sha256/"] {
        let mut h = dir_header(0, 0, 0o755);
        h.set_mtime(mtime);
        out.append_data(&mut h, d, io::empty())?;
    }
    enum Blob<'a> {
        Mem(&'a [u8]),
        Layer,
    }
    let mut blobs: Vec<(&str, Blob)> = vec![
        (&config_digest, Blob::Mem(&config)),
        (&manifest_digest, Blob::Mem(&manifest)),
        (&layer_digest, Blob::Layer),
    ];
    blobs.sort_by(|a, b| a.0.cmp(b.0));
    blobs.dedup_by(|a, b| a.0 == b.0);
    for (digest, blob) in blobs {
        let name = format!("blobs/sha256/{}", &digest["sha256:".len()..]);
        match blob {
            Blob::Mem(data) => {
                let mut h = data_header(data.len() as u64);
                h.set_mtime(mtime);
                out.append_data(&mut h, &name, data)?;
            }
            Blob::Layer => {
                let mut h = data_header(layer_size);
                h.set_mtime(mtime);
                let f = File::open(layer_tmp.path()).context("reopening the layer")?;
                out.append_data(&mut h, &name, BufReader::with_capacity(1 << 20, f))
                    .with_context(|| format!("writing {name} to {}", file.display()))?;
            }
        }
    }
    for (name, data) in [
        ("index.json", index.as_slice()),
        (
            "oci-layout",
            br#"{"imageLayoutVersion":"1.0.0"}"#.as_slice(),
        ),
    ] {
        let mut h = data_header(data.len() as u64);
        h.set_mtime(mtime);
        out.append_data(&mut h, name, data)?;
    }
    let tmp = out
        .into_inner()
        .context("finishing the archive")?
        .into_inner()
        .map_err(|e| e.into_error())
        .context("flushing the archive")?;
    use std::os::unix::fs::PermissionsExt;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(0o644))
        .with_context(|| format!("setting the mode of {}", tmp.path().display()))?;
    tmp.as_file()
        .sync_all()
        .with_context(|| format!("syncing {}", file.display()))?;
    tmp.persist(file)
        .with_context(|| format!("renaming the archive into {}", file.display()))?;
    Ok(OciImage {
        manifest_digest,
        config_digest,
        diff_id,
        labels,
    })
}

/// An OCI image layout read from an unpacked archive or directory.
pub struct Layout {
    dir: crate::util::scratch::ScratchDir,
    pub manifest: Json,
    pub manifest_bytes: Vec<u8>,
    pub manifest_digest: String,
    pub config: Json,
    pub config_bytes: Vec<u8>,
}

fn sha256_file(path: &Path) -> Result<String> {
    Ok(format!("sha256:{}", digest::sha256_file(path)?.0))
}

impl Layout {
    /// Path of a blob, after checking the digest's form.
    pub fn blob_path(&self, digest: &str) -> Result<std::path::PathBuf> {
        let hexd = digest
            .strip_prefix("sha256:")
            .with_context(|| format!("unsupported digest {digest:?}"))?;
        ensure!(
            hexd.len() == 64 && hexd.bytes().all(|b| b.is_ascii_hexdigit()),
            "malformed digest {digest:?}"
        );
        Ok(self.dir.path().join("blobs/sha256").join(hexd))
    }

    /// Read a blob whole, verifying its digest.
    pub fn read_blob(&self, digest: &str) -> Result<Vec<u8>> {
        let p = self.blob_path(digest)?;
        let data = fs::read(&p).with_context(|| format!("reading blob {digest}"))?;
        ensure!(digest_of(&data) == digest, "blob {digest} is corrupt");
        Ok(data)
    }

    /// Verify a (large) blob's digest on disk.
    pub fn verify_blob(&self, digest: &str) -> Result<std::path::PathBuf> {
        let p = self.blob_path(digest)?;
        ensure!(sha256_file(&p)? == digest, "blob {digest} is corrupt");
        Ok(p)
    }

    /// The image's layers: (media type, digest, size).
    pub fn layers(&self) -> Result<Vec<(String, String, u64)>> {
        let layers = self.manifest["layers"]
            .as_array()
            .context("manifest has no layers")?;
        layers
            .iter()
            .map(|l| {
                Ok((
                    l["mediaType"].as_str().context("layer media type")?.into(),
                    l["digest"].as_str().context("layer digest")?.into(),
                    l["size"].as_u64().context("layer size")?,
                ))
            })
            .collect()
    }

    /// A label of the image config.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.config["config"]["Labels"][key].as_str()
    }
}

/// Unpack an OCI archive into a scratch dir under `tmpdir` and read its one
/// image (the unpacked archives a killed run left there are removed first).
pub fn open_ociarchive(file: &Path, tmpdir: &Path) -> Result<Layout> {
    let dir = crate::util::scratch::ScratchDir::new(tmpdir, "ociarchive-")?;
    let f = File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let mut ar = tar::Archive::new(BufReader::with_capacity(1 << 20, f));
    ar.set_preserve_permissions(false);
    ar.set_preserve_mtime(false);
    ar.unpack(dir.path())
        .with_context(|| format!("unpacking {}", file.display()))?;
    let index_path = dir.path().join("index.json");
    let index: Json = serde_json::from_slice(
        &fs::read(&index_path).with_context(|| format!("{}: no index.json", file.display()))?,
    )
    .with_context(|| format!("{}: parsing index.json", file.display()))?;
    let manifests = index["manifests"]
        .as_array()
        .with_context(|| format!("{}: index.json has no manifests", file.display()))?;
    let [desc] = manifests.as_slice() else {
        bail!(
            "{} holds {} images, expected exactly one",
            file.display(),
            manifests.len()
        );
    };
    let mut layout = Layout {
        dir,
        manifest: Json::Null,
        manifest_bytes: Vec::new(),
        manifest_digest: desc["digest"]
            .as_str()
            .context("manifest descriptor without digest")?
            .to_string(),
        config: Json::Null,
        config_bytes: Vec::new(),
    };
    layout.manifest_bytes = layout
        .read_blob(&layout.manifest_digest)
        .with_context(|| format!("reading the manifest of {}", file.display()))?;
    layout.manifest = serde_json::from_slice(&layout.manifest_bytes)
        .with_context(|| format!("{}: parsing the manifest", file.display()))?;
    let cd = layout.manifest["config"]["digest"]
        .as_str()
        .context("manifest without config")?
        .to_string();
    layout.config_bytes = layout.read_blob(&cd)?;
    layout.config = serde_json::from_slice(&layout.config_bytes)
        .with_context(|| format!("{}: parsing the image config", file.display()))?;
    Ok(layout)
}

fn parse_xattrs(data: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let v = Value::parse(&Type::parse("a(ayay)")?, data)?;
    v.as_array()
        .context("xattrs are not an array")?
        .iter()
        .map(|it| {
            let t = it.as_tuple().context("xattr is not a pair")?;
            let name = t[0].as_bytes().context("xattr name")?;
            let name = name.strip_suffix(&[0]).unwrap_or(name).to_vec();
            Ok((name, t[1].as_bytes().context("xattr value")?.to_vec()))
        })
        .collect()
}

/// `sysroot/ostree/repo/objects/XX/REST.EXT` -> (checksum, ext).
fn parse_object_path(path: &str) -> Option<(String, &str)> {
    let rest = path
        .trim_start_matches("./")
        .trim_start_matches('/')
        .strip_prefix(OBJECTS)?;
    let (prefix, file) = rest.split_once('/')?;
    let (tail, ext) = file.split_once('.')?;
    let checksum = format!("{prefix}{tail}");
    (checksum.len() == 64 && checksum.bytes().all(|b| b.is_ascii_hexdigit()))
        .then_some((checksum, ext))
}

/// Import the ostree objects of one layer tar stream; returns the commits
/// seen, verified but not written: the caller writes each once every other
/// object is in (see [`Repo::import_commit`]).
fn import_layer(repo: &Repo, input: impl Read, what: &str) -> Result<Vec<(String, Vec<u8>)>> {
    let mut ar = tar::Archive::new(input);
    let mut xattrs: HashMap<String, Vec<u8>> = HashMap::new();
    let mut links: HashMap<String, String> = HashMap::new();
    let mut commits = Vec::new();
    for entry in ar.entries().with_context(|| format!("reading {what}"))? {
        let mut entry = entry.with_context(|| format!("reading {what}"))?;
        let path = entry.path()?.to_string_lossy().into_owned();
        // Format version 0 kept xattrs in `repo/xattrs/<sha256>`.
        if let Some(x) = path
            .trim_start_matches("./")
            .strip_prefix("sysroot/ostree/repo/xattrs/")
            .filter(|x| x.len() == 64)
        {
            if entry.header().entry_type() == tar::EntryType::Regular {
                let mut data = Vec::new();
                entry.read_to_end(&mut data)?;
                ensure!(
                    digest::sha256_hex(&data) == x,
                    "{what}: {path}: xattrs checksum mismatch"
                );
                xattrs.insert(x.to_string(), data);
            }
            continue;
        }
        let Some((checksum, ext)) = parse_object_path(&path) else {
            continue;
        };
        let ctx = || format!("{what}: {path}");
        match ext {
            "commit" | "commitmeta" | "dirtree" | "dirmeta" => {
                let kind = ObjectType::from_extension(ext).context("object type")?;
                let mut data = Vec::new();
                entry.read_to_end(&mut data).with_context(ctx)?;
                verify_object(&checksum, kind, &data).with_context(ctx)?;
                if kind == ObjectType::Commit {
                    commits.push((checksum, data));
                } else {
                    repo.import_object(&checksum, kind, &data)
                        .with_context(ctx)?;
                }
            }
            "file-xattrs" => {
                let mut data = Vec::new();
                entry.read_to_end(&mut data).with_context(ctx)?;
                ensure!(
                    digest::sha256_hex(&data) == checksum,
                    "{}: xattrs checksum mismatch",
                    ctx()
                );
                xattrs.insert(checksum, data);
            }
            "file-xattrs-link" | "file.xattrs" => {
                let target = entry
                    .link_name()?
                    .with_context(|| format!("{}: not a link", ctx()))?
                    .to_string_lossy()
                    .into_owned();
                let xsum = match parse_object_path(&target) {
                    Some((x, _)) => x,
                    None => target
                        .rsplit('/')
                        .next()
                        .filter(|x| x.len() == 64)
                        .with_context(|| format!("{}: bad link target {target}", ctx()))?
                        .to_string(),
                };
                links.insert(checksum, xsum);
            }
            "file" => {
                let xa =
                    match links.get(&checksum) {
                        Some(x) => parse_xattrs(xattrs.get(x).with_context(|| {
                            format!("{}: xattrs {x} come after the object", ctx())
                        })?)
                        .with_context(ctx)?,
                        None => Vec::new(),
                    };
                let h = entry.header();
                let perms = h.mode().with_context(ctx)? & 0o7777;
                let (uid, gid) = (h.uid()? as u32, h.gid()? as u32);
                let got = match h.entry_type() {
                    tar::EntryType::Symlink => {
                        let target = entry
                            .link_name_bytes()
                            .with_context(|| format!("{}: symlink without target", ctx()))?;
                        let meta = FileMeta {
                            uid,
                            gid,
                            mode: libc::S_IFLNK | perms,
                            symlink: String::from_utf8(target.into_owned())
                                .with_context(|| format!("{}: symlink target", ctx()))?,
                            xattrs: xa,
                        };
                        repo.write_content(Path::new(""), &meta, 0)?
                    }
                    tar::EntryType::Regular | tar::EntryType::Continuous => {
                        let meta = FileMeta {
                            uid,
                            gid,
                            mode: libc::S_IFREG | perms,
                            symlink: String::new(),
                            xattrs: xa,
                        };
                        let mut tmp = tempfile::NamedTempFile::new_in(repo.path().join("tmp"))?;
                        let size = io::copy(&mut entry, &mut tmp).with_context(ctx)?;
                        repo.write_content(tmp.path(), &meta, size)?
                    }
                    other => bail!("{}: unexpected entry type {other:?}", ctx()),
                };
                ensure!(
                    got == checksum,
                    "{}: content checksum mismatch (content hashes to {got})",
                    ctx()
                );
            }
            _ => {}
        }
    }
    Ok(commits)
}

/// Import the commit of an ostree-native OCI archive (ours or one written by
/// ostree-ext/skopeo) into `repo`, verifying every blob digest and every
/// object's checksum; returns the commit checksum.
pub fn import_ociarchive(repo: &Repo, file: &Path) -> Result<String> {
    let layout = open_ociarchive(file, &repo.path().join("tmp"))?;
    let mut commits = Vec::new();
    for (media, digest, _) in layout.layers()? {
        let p = layout
            .verify_blob(&digest)
            .with_context(|| format!("{}: layer {digest}", file.display()))?;
        let f = BufReader::with_capacity(1 << 20, File::open(&p)?);
        let what = format!("{} layer {digest}", file.display());
        let found = if media.ends_with("gzip") {
            import_layer(repo, flate2::read::GzDecoder::new(f), &what)?
        } else if media.ends_with("zstd") {
            import_layer(repo, zstd::Decoder::new(f)?, &what)?
        } else if media.ends_with(".tar") || media.ends_with("tar") {
            import_layer(repo, f, &what)?
        } else {
            bail!("{what}: unsupported layer media type {media}");
        };
        commits.extend(found);
    }
    let [(commit, data)] = commits.as_slice() else {
        bail!(
            "{} holds {} ostree commits, expected exactly one",
            file.display(),
            commits.len()
        );
    };
    if let Some(label) = layout.label(LABEL_COMMIT) {
        ensure!(
            label == commit,
            "{}: label {LABEL_COMMIT}={label} but the layer holds commit {commit}",
            file.display()
        );
    }
    // The commit object last: a repo that has it has all it needs (an import
    // killed half-way must not leave a commit that `has_object` finds and
    // whose files are missing).
    repo.import_object(commit, ObjectType::Commit, data)
        .with_context(|| format!("{}: commit {commit}", file.display()))?;
    for o in repo.reachable_objects(commit)? {
        ensure!(
            repo.has_object(&o.checksum, o.kind),
            "{}: {} object {} is missing",
            file.display(),
            o.kind.extension(),
            o.checksum
        );
    }
    Ok(commit.clone())
}

/// Credentials for a registry from a containers `auth.json`
/// (`{"auths": {"registry": {"auth": base64("user:password")}}}`).
pub fn auth_from_file(path: &Path, registry: &str) -> Result<oci_client::secrets::RegistryAuth> {
    use base64::Engine;
    let v: Json = serde_json::from_slice(
        &fs::read(path).with_context(|| format!("reading auth file {}", path.display()))?,
    )
    .with_context(|| format!("parsing auth file {}", path.display()))?;
    let auths = v["auths"]
        .as_object()
        .with_context(|| format!("{}: no \"auths\" object", path.display()))?;
    let entry = auths.iter().find(|(k, _)| {
        let k = k
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        k == registry || k.split('/').next() == Some(registry)
    });
    let Some((_, entry)) = entry else {
        return Ok(oci_client::secrets::RegistryAuth::Anonymous);
    };
    let enc = entry["auth"]
        .as_str()
        .with_context(|| format!("{}: entry for {registry} has no auth", path.display()))?;
    let dec = base64::engine::general_purpose::STANDARD
        .decode(enc)
        .with_context(|| format!("{}: auth for {registry} is not base64", path.display()))?;
    let dec = String::from_utf8(dec)
        .with_context(|| format!("{}: auth for {registry} is not text", path.display()))?;
    let (user, pass) = dec.split_once(':').with_context(|| {
        format!(
            "{}: auth for {registry} is not user:password",
            path.display()
        )
    })?;
    Ok(oci_client::secrets::RegistryAuth::Basic(
        user.to_string(),
        pass.to_string(),
    ))
}

/// Whether a registry is on this machine (plain HTTP is used for those).
pub fn is_local_registry(registry: &str) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        registry.split(':').next().unwrap_or(registry)
    };
    matches!(host, "localhost" | "127.0.0.1" | "::1")
}

/// Push the image of an OCI archive to `registry/repository` under each of
/// `tags`; returns the manifest digest the registry reports.
pub fn push_ociarchive(
    file: &Path,
    tmpdir: &Path,
    registry: &str,
    repository: &str,
    tags: &[String],
    auth: &oci_client::secrets::RegistryAuth,
    insecure: bool,
) -> Result<String> {
    use oci_client::client::{ClientConfig, ClientProtocol};
    use oci_client::{Client, Reference, RegistryOperation};
    let first = tags.first().context("no tag to push")?;
    let layout = open_ociarchive(file, tmpdir)?;
    let protocol = if insecure || is_local_registry(registry) {
        ClientProtocol::Http
    } else {
        ClientProtocol::Https
    };
    let client = Client::new(ClientConfig {
        protocol,
        ..Default::default()
    });
    let reference = |tag: &str| {
        Reference::with_tag(
            registry.to_string(),
            repository.to_string(),
            tag.to_string(),
        )
    };
    let r0 = reference(first);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the push runtime")?;
    rt.block_on(async {
        client
            .auth(&r0, auth, RegistryOperation::Push)
            .await
            .with_context(|| format!("authenticating to {registry}"))?;
        let config_digest = layout.manifest["config"]["digest"]
            .as_str()
            .context("manifest without config")?
            .to_string();
        let mut blobs = vec![(config_digest, layout.config_bytes.len() as u64)];
        blobs.extend(layout.layers()?.into_iter().map(|(_, d, s)| (d, s)));
        for (digest, size) in blobs {
            if client.blob_exists(&r0, &digest).await.unwrap_or(false) {
                eprintln!("  blob {digest} ({size} bytes): already in {registry}/{repository}");
                continue;
            }
            eprintln!("  pushing blob {digest} ({size} bytes)");
            let data = layout.read_blob(&digest)?;
            client
                .push_blob(&r0, data, &digest)
                .await
                .with_context(|| format!("pushing blob {digest} to {registry}/{repository}"))?;
        }
        let media = layout.manifest["mediaType"]
            .as_str()
            .unwrap_or(MEDIA_MANIFEST)
            .to_string();
        for tag in tags {
            let r = reference(tag);
            client
                .push_manifest_raw(
                    &r,
                    layout.manifest_bytes.clone(),
                    media.parse().context("manifest media type")?,
                )
                .await
                .with_context(|| format!("pushing the manifest as {r}"))?;
            eprintln!("  tagged {r}");
        }
        let digest = client
            .fetch_manifest_digest(&r0, auth)
            .await
            .with_context(|| format!("reading back the digest of {r0}"))?;
        ensure!(
            digest == layout.manifest_digest,
            "{r0} has digest {digest}, but the pushed manifest is {}",
            layout.manifest_digest
        );
        Ok(digest)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let c = "b8627e3ef0f255a322d2bd9610cfaaacc8f122b7f8d17c0e7e3caafa160f9fc7";
        assert_eq!(
            object_path(c, "file-xattrs-link"),
            "sysroot/ostree/repo/objects/b8/627e3ef0f255a322d2bd9610cfaaacc8f122b7f8d17c0e7e3caafa160f9fc7.file-xattrs-link"
        );
        for (p, ext) in [
            (object_path(c, "file"), "file"),
            (format!("./{}", object_path(c, "commit")), "commit"),
            (object_path(c, "file.xattrs"), "file.xattrs"),
        ] {
            assert_eq!(parse_object_path(&p), Some((c.to_string(), ext)));
        }
        assert_eq!(parse_object_path("usr/bin/sh"), None);
        assert_eq!(
            parse_object_path("sysroot/ostree/repo/objects/b8/x.file"),
            None
        );
        assert_eq!(map_etc("usr/etc"), "etc");
        assert_eq!(map_etc("usr/etc/passwd"), "etc/passwd");
        assert_eq!(map_etc("usr/etcetera"), "usr/etcetera");
        assert_eq!(map_etc("usr/bin"), "usr/bin");
    }

    #[test]
    fn local_registries() {
        assert!(is_local_registry("127.0.0.1:5000"));
        assert!(is_local_registry("localhost"));
        assert!(is_local_registry("[::1]:5000"));
        assert!(!is_local_registry("quay.io"));
        assert!(!is_local_registry("localhost.example.com:5000"));
    }

    #[test]
    fn authfile() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("auth.json");
        fs::write(
            &f,
            r#"{"auths":{"https://quay.io":{"auth":"dXNlcjpwYTpzcw=="}}}"#,
        )
        .unwrap();
        match auth_from_file(&f, "quay.io").unwrap() {
            oci_client::secrets::RegistryAuth::Basic(u, p) => {
                assert_eq!((u.as_str(), p.as_str()), ("user", "pa:ss"))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            auth_from_file(&f, "example.com").unwrap(),
            oci_client::secrets::RegistryAuth::Anonymous
        ));
        fs::write(&f, r#"{"auths":{"quay.io":{"auth":"!!"}}}"#).unwrap();
        assert!(auth_from_file(&f, "quay.io").is_err());
    }
}
