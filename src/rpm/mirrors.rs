//! Where a repo's metadata can come from: its `baseurl`s and the mirrors its
//! `metalink=` or `mirrorlist=` names, in the order they are tried, and the
//! hashes a metalink gives for repomd.xml.
//!
//! As librepo (`lr_handle_prepare_internal_mirrorlist`) and libdnf
//! (`Repo::Impl::lrHandleInitRemote`) do:
//! - `metalink=` wins over `mirrorlist=`; a mirrorlist whose body is a
//!   metalink is read as one (libdnf decides by the word "metalink" in the
//!   URL, a YUM habit; cosa looks at the body, which covers that case too);
//! - the mirrors of the metalink or mirrorlist come first, then the
//!   `baseurl`s; when the list cannot be fetched but there are baseurls,
//!   those are used (with a warning), else loading fails;
//! - metalink URLs end in `repodata/repomd.xml`, which is cut off to get the
//!   base; mirrors are taken by `preference` (100 is best), highest first,
//!   keeping the metalink's order among equals (MirrorManager already
//!   writes them so, which is the order librepo keeps); `rsync://` mirrors
//!   are skipped as librepo does, and `ftp://` ones too (cosa has no FTP
//!   client);
//! - a mirrorlist is one URL per line, `#` comments, lines holding `://` or
//!   starting with `/` (a local path);
//! - repomd.xml must match the strongest hash the metalink gives for it, or
//!   the strongest of one of its `mm0:alternates` (older repomd.xml files
//!   that mirrors a little behind still serve): librepo's
//!   `lr_get_best_checksum`. md5 is not accepted.

use anyhow::{Context, Result, anyhow, bail};
use quick_xml::Reader;
use quick_xml::events::Event;
use url::Url;

use super::download::{Checksum, Downloader, fetch_bytes};
use super::repodata::{attr, push_ref};
use crate::config::repofile::RepoDef;

/// The repomd.xml part of a metalink.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metalink {
    /// `verification/hash` entries of `<file name="repomd.xml">`.
    pub hashes: Vec<Checksum>,
    /// The hashes of each `mm0:alternates/mm0:alternate`.
    pub alternates: Vec<Vec<Checksum>>,
    /// `resources/url` entries, in document order.
    pub urls: Vec<MetalinkUrl>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetalinkUrl {
    pub url: String,
    /// 0..=100; a missing or out-of-range value counts as 0, as in librepo.
    pub preference: u32,
}

/// Digest types by strength, weakest first (librepo's `LrChecksumType`
/// order); md5 is left out: cosa does not accept it.
const STRENGTH: [&str; 6] = ["sha", "sha1", "sha224", "sha256", "sha384", "sha512"];

fn strength(kind: &str) -> Option<usize> {
    STRENGTH.iter().position(|k| k.eq_ignore_ascii_case(kind))
}

/// The strongest hash of a supported type in `hashes`.
fn best(hashes: &[Checksum]) -> Option<&Checksum> {
    hashes
        .iter()
        .filter(|h| strength(&h.kind).is_some() && h.validate().is_ok())
        .max_by_key(|h| strength(&h.kind))
}

impl Metalink {
    /// Parse a metalink (3.0 as MirrorManager writes it, or 4.0), keeping
    /// only `<file name="repomd.xml">`.
    pub fn parse(xml: &str) -> Result<Metalink> {
        let mut reader = Reader::from_str(xml);
        let mut ml = Metalink::default();
        // Element names from <metalink> down (local names, no prefix).
        let mut path: Vec<String> = Vec::new();
        let mut in_repomd = false;
        let mut found = false;
        let mut text = String::new();
        let mut hash_type: Option<String> = None;
        let mut preference = 0u32;
        let mut saw_metalink = false;
        loop {
            let ev = reader
                .read_event()
                .with_context(|| format!("at byte {}", reader.error_position()))?;
            match ev {
                Event::Eof => break,
                Event::Start(e) => {
                    let name = e.local_name().as_ref().to_string();
                    let attr = |key: &str| attr(&e, key);
                    match (path.len(), name.as_str()) {
                        (0, "metalink") => saw_metalink = true,
                        (_, "file") if path.last().is_some_and(|p| p == "files") => {
                            in_repomd = !found && attr("name")?.as_deref() == Some("repomd.xml");
                            found |= in_repomd;
                        }
                        (_, "hash") if in_repomd => hash_type = attr("type")?,
                        (_, "url") if in_repomd => {
                            preference = attr("preference")?
                                .and_then(|p| p.trim().parse::<u32>().ok())
                                .filter(|p| *p <= 100)
                                .unwrap_or(0);
                        }
                        (_, "alternate") if in_repomd => ml.alternates.push(Vec::new()),
                        _ => {}
                    }
                    path.push(name);
                    text.clear();
                }
                Event::Text(t) => text.push_str(&t.xml10_content()),
                Event::GeneralRef(r) => push_ref(&mut text, &r)?,
                Event::End(_) => {
                    let name = path.pop().unwrap_or_default();
                    if in_repomd {
                        let value = text.trim().to_string();
                        let in_alternate = path.iter().any(|p| p == "alternate");
                        match name.as_str() {
                            "hash" => {
                                if let Some(kind) = hash_type.take() {
                                    let h = Checksum::new(&kind.to_ascii_lowercase(), &value);
                                    match ml.alternates.last_mut() {
                                        Some(alt) if in_alternate => alt.push(h),
                                        _ => ml.hashes.push(h),
                                    }
                                }
                            }
                            "url" if !value.is_empty() => ml.urls.push(MetalinkUrl {
                                url: value,
                                preference,
                            }),
                            "file" => in_repomd = false,
                            _ => {}
                        }
                    }
                    text.clear();
                }
                _ => {}
            }
        }
        if let Some(open) = path.last() {
            bail!("truncated: <{open}> is not closed");
        }
        if !saw_metalink {
            bail!("not a metalink document (no <metalink> root element)");
        }
        if !found {
            bail!("the metalink has no <file name=\"repomd.xml\">");
        }
        Ok(ml)
    }

    /// The checksums repomd.xml may have: the strongest supported hash of
    /// the file and of each alternate.
    pub fn expected(&self) -> Vec<Checksum> {
        std::iter::once(&self.hashes[..])
            .chain(self.alternates.iter().map(Vec::as_slice))
            .filter_map(best)
            .cloned()
            .collect()
    }

    /// The mirrors' base URLs in the order to try them, and the URLs left
    /// out with the reason.
    pub fn bases(&self) -> (Vec<Url>, Vec<String>) {
        let mut urls: Vec<&MetalinkUrl> = self.urls.iter().collect();
        // Stable: equal preferences keep the metalink's order.
        urls.sort_by_key(|u| std::cmp::Reverse(u.preference));
        let mut bases = Vec::new();
        let mut skipped = Vec::new();
        for u in urls {
            let base = u.url.strip_suffix("repodata/repomd.xml").unwrap_or(&u.url);
            match mirror_base(base) {
                Ok(b) => bases.push(b),
                Err(e) => skipped.push(format!("{}: {e:#}", u.url)),
            }
        }
        (bases, skipped)
    }
}

/// A mirror's base URL ending in `/`, if cosa can fetch from it.
fn mirror_base(s: &str) -> Result<Url> {
    let s = if s.ends_with('/') {
        s.to_string()
    } else {
        format!("{s}/")
    };
    let url = if s.starts_with('/') {
        Url::from_directory_path(&s).map_err(|()| anyhow!("not an absolute path"))?
    } else {
        Url::parse(&s).context("not a URL")?
    };
    match url.scheme() {
        "http" | "https" | "file" => Ok(url),
        other => bail!("{other}:// mirrors are not used"),
    }
}

/// The URLs of a mirrorlist body (librepo's `lr_mirrorlist_parse_file`).
pub fn parse_mirrorlist(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter(|l| l.contains("://") || l.starts_with('/'))
        .map(str::to_string)
        .collect()
}

/// Does a mirrorlist body hold a metalink instead?
fn is_metalink(text: &str) -> bool {
    let head: String = text.chars().take(1024).collect();
    head.contains("<metalink")
}

/// Where to fetch a repo's metadata from.
#[derive(Debug, Clone)]
pub struct Sources {
    /// Base URLs (ending in `/`), in the order to try them.
    pub bases: Vec<Url>,
    /// When a metalink was read: the checksums repomd.xml may have.
    pub expected: Option<Vec<Checksum>>,
    /// The metalink or mirrorlist URL, for messages.
    pub list: Option<String>,
}

/// A repo's baseurls as URLs ending in `/`.
fn baseurls(def: &RepoDef) -> Result<Vec<Url>> {
    def.baseurls
        .iter()
        .map(|s| {
            let s = if s.ends_with('/') {
                s.clone()
            } else {
                format!("{s}/")
            };
            Url::parse(&s).with_context(|| {
                format!(
                    "baseurl {s:?} of repo {} in {} is not a URL",
                    def.id,
                    def.source.display()
                )
            })
        })
        .collect()
}

/// The sources of `def`: its metalink or mirrorlist (fetched now) and its
/// baseurls.
pub fn sources(def: &RepoDef, dl: &Downloader) -> Result<Sources> {
    let base = baseurls(def)?;
    let list = def.metalink.as_ref().or(def.mirrorlist.as_ref());
    let Some(list) = list else {
        if base.is_empty() {
            bail!(
                "repo {} in {} has no baseurl, metalink or mirrorlist",
                def.id,
                def.source.display()
            );
        }
        return Ok(Sources {
            bases: base,
            expected: None,
            list: None,
        });
    };
    let kind = if def.metalink.is_some() {
        "metalink"
    } else {
        "mirrorlist"
    };
    match read_list(def, list, kind, dl) {
        Ok((mut bases, expected)) => {
            for b in base {
                if !bases.contains(&b) {
                    bases.push(b);
                }
            }
            Ok(Sources {
                bases,
                expected,
                list: Some(list.clone()),
            })
        }
        Err(e) if !base.is_empty() => {
            tracing::warn!(
                "repo {}: {kind} {list} failed, using its baseurl: {e:#}",
                def.id
            );
            Ok(Sources {
                bases: base,
                expected: None,
                list: None,
            })
        }
        Err(e) => Err(e.context(format!(
            "repo {} in {}: reading its {kind} {list}",
            def.id,
            def.source.display()
        ))),
    }
}

/// Fetch and read a metalink or mirrorlist: the mirrors' bases, and the
/// repomd.xml checksums when it is a metalink.
fn read_list(
    def: &RepoDef,
    list: &str,
    kind: &str,
    dl: &Downloader,
) -> Result<(Vec<Url>, Option<Vec<Checksum>>)> {
    let bytes = fetch_bytes(dl, list)?;
    let text = String::from_utf8(bytes).context("not UTF-8")?;
    if kind == "metalink" || is_metalink(&text) {
        let ml = Metalink::parse(&text).context("parsing the metalink")?;
        let expected = ml.expected();
        if expected.is_empty() {
            bail!(
                "the metalink gives no sha1/sha224/sha256/sha384/sha512 hash for repomd.xml, \
                 so cosa cannot check what a mirror serves"
            );
        }
        let (bases, skipped) = ml.bases();
        for s in &skipped {
            tracing::debug!("repo {}: metalink mirror skipped: {s}", def.id);
        }
        if bases.is_empty() {
            bail!(
                "the metalink lists no usable mirror{}",
                if skipped.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", skipped.join("; "))
                }
            );
        }
        return Ok((bases, Some(expected)));
    }
    let mut bases = Vec::new();
    for line in parse_mirrorlist(&text) {
        match mirror_base(&line) {
            Ok(b) if !bases.contains(&b) => bases.push(b),
            Ok(_) => {}
            Err(e) => tracing::debug!("repo {}: mirrorlist entry {line} skipped: {e:#}", def.id),
        }
    }
    if bases.is_empty() {
        bail!("the mirrorlist lists no usable URL");
    }
    Ok((bases, None))
}

/// Check `data` (a repomd.xml from `url`) against a metalink's checksums.
pub fn check_repomd(data: &[u8], expected: &[Checksum], url: &Url) -> Result<()> {
    let mut got = Vec::new();
    for sum in expected {
        let (hex, _) = crate::util::digest::reader(data, &sum.kind)
            .with_context(|| format!("hashing repomd.xml from {url}"))?;
        if hex.eq_ignore_ascii_case(&sum.hex) {
            return Ok(());
        }
        got.push(format!("{}:{hex}", sum.kind));
    }
    got.dedup();
    bail!(
        "repomd.xml from {url} matches none of the metalink's hashes (it has {}; the metalink \
         lists {})",
        got.join(", "),
        expected
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA256_A: &str = "a3f0b6b0ed9a3bd9e8f5f6ef9f70ad2df8e2e8d8a1b8fb1e0e6d3c2b1a0f9e8d";

    fn sample() -> String {
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?>
<metalink version="3.0" xmlns="http://www.metalinker.org/" type="dynamic" pubdate="Mon, 01 Jan 2024 00:00:00 GMT" generator="mirrormanager" xmlns:mm0="http://fedorahosted.org/mirrormanager">
 <files>
  <file name="other.xml">
   <verification><hash type="sha256">{zero}</hash></verification>
   <resources><url protocol="https" type="https" preference="100">https://wrong/repodata/other.xml</url></resources>
  </file>
  <file name="repomd.xml">
   <mm0:timestamp>1700000000</mm0:timestamp>
   <size>4000</size>
   <verification>
     <hash type="md5">00112233445566778899aabbccddeeff</hash>
     <hash type="sha1">{sha1}</hash>
     <hash type="sha256">{a}</hash>
   </verification>
   <mm0:alternates>
    <mm0:alternate>
     <mm0:timestamp>1690000000</mm0:timestamp>
     <size>3990</size>
     <verification>
      <hash type="sha1">{sha1b}</hash>
      <hash type="sha512">{sha512}</hash>
     </verification>
    </mm0:alternate>
   </mm0:alternates>
   <resources maxconnections="1">
    <url protocol="rsync" type="rsync" location="DE" preference="100">rsync://r.example/fedora/repodata/repomd.xml</url>
    <url protocol="http" type="http" location="US" preference="98">http://b.example/f/x86_64/os/repodata/repomd.xml</url>
    <url protocol="https" type="https" location="US" preference="100">https://a.example/f/x86_64/os/repodata/repomd.xml</url>
    <url protocol="https" type="https" location="US" preference="98">https://c.example/f/&amp;x/repodata/repomd.xml</url>
    <url protocol="ftp" type="ftp" location="US" preference="99">ftp://d.example/f/repodata/repomd.xml</url>
    <url protocol="https" type="https" location="US">https://e.example/nopref/</url>
   </resources>
  </file>
 </files>
</metalink>"#,
            zero = "0".repeat(64),
            sha1 = "1".repeat(40),
            a = SHA256_A,
            sha1b = "2".repeat(40),
            sha512 = "5".repeat(128),
        )
    }

    #[test]
    fn metalink_parse() {
        let ml = Metalink::parse(&sample()).unwrap();
        assert_eq!(ml.hashes.len(), 3);
        assert_eq!(ml.hashes[2], Checksum::new("sha256", SHA256_A));
        assert_eq!(ml.alternates.len(), 1);
        assert_eq!(ml.alternates[0].len(), 2);
        assert_eq!(ml.urls.len(), 6, "only repomd.xml's resources");
        assert_eq!(ml.urls[1].preference, 98);
        assert_eq!(ml.urls[5].preference, 0);
        assert_eq!(ml.urls[3].url, "https://c.example/f/&x/repodata/repomd.xml");
        // The strongest of each entry: sha256 of the file, sha512 of the alternate.
        assert_eq!(
            ml.expected(),
            [
                Checksum::new("sha256", SHA256_A),
                Checksum::new("sha512", &"5".repeat(128))
            ]
        );
    }

    #[test]
    fn metalink_mirror_order() {
        let ml = Metalink::parse(&sample()).unwrap();
        let (bases, skipped) = ml.bases();
        let bases: Vec<&str> = bases.iter().map(Url::as_str).collect();
        assert_eq!(
            bases,
            [
                "https://a.example/f/x86_64/os/",
                "http://b.example/f/x86_64/os/",
                "https://c.example/f/&x/",
                "https://e.example/nopref/",
            ]
        );
        assert_eq!(skipped.len(), 2);
        assert!(skipped[0].starts_with("rsync://r.example"), "{skipped:?}");
        assert!(skipped[1].starts_with("ftp://d.example"), "{skipped:?}");
    }

    #[test]
    fn metalink_errors() {
        assert!(Metalink::parse("<html><body>oops</body></html>").is_err());
        let e = Metalink::parse("<metalink><files><file name=\"x\"/></files></metalink>")
            .unwrap_err()
            .to_string();
        assert!(e.contains("repomd.xml"), "{e}");
        assert!(Metalink::parse("<metalink><files><file name=\"repomd.xml\">").is_err());
        // Only md5: nothing cosa accepts.
        let ml = Metalink::parse(
            "<metalink><files><file name=\"repomd.xml\"><verification>\
             <hash type=\"md5\">00112233445566778899aabbccddeeff</hash></verification>\
             </file></files></metalink>",
        )
        .unwrap();
        assert!(ml.expected().is_empty());
    }

    #[test]
    fn mirrorlist_parse() {
        let text = "# fedora mirrors\n\n  https://a.example/f/  \nhttp://b.example/x\n\
                    not a url\n\t/srv/local/repo\n#http://commented/\nftp://c.example/\n";
        assert_eq!(
            parse_mirrorlist(text),
            [
                "https://a.example/f/",
                "http://b.example/x",
                "/srv/local/repo",
                "ftp://c.example/"
            ]
        );
        assert!(is_metalink(&sample()));
        assert!(!is_metalink(text));
    }

    #[test]
    fn repomd_checked_against_any_expected_hash() {
        let data = b"<repomd/>";
        let sha256 = crate::util::digest::sha256_hex(data);
        let url = Url::parse("http://m/repodata/repomd.xml").unwrap();
        let other = Checksum::new("sha256", &"0".repeat(64));
        check_repomd(
            data,
            &[other.clone(), Checksum::new("sha256", &sha256)],
            &url,
        )
        .unwrap();
        check_repomd(
            data,
            &[Checksum::new("sha256", &sha256.to_uppercase())],
            &url,
        )
        .unwrap();
        let e = check_repomd(data, &[other], &url).unwrap_err().to_string();
        assert!(e.contains(&format!("sha256:{sha256}")), "{e}");
        assert!(e.contains("http://m/repodata/repomd.xml"), "{e}");
    }
}
