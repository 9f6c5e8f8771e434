//! RPM handling: version comparison, repository metadata, the dependency
//! solver, lockfiles, the download cache, package payloads and the rpm
//! database writer.

pub mod download;
pub mod lockfile;
pub mod mirrors;
pub mod nevra;
pub mod repodata;
pub mod rpmdb;
pub mod solver;
pub mod types;
pub mod vercmp;

pub use types::{Cmp, Dep, Evr, PackageMeta};

/// rpm's `%_install_langs` test for a file's `|`-separated languages: an
/// unmarked file is always installed, else one of its languages must be a
/// prefix of one of `langs` (`en` matches `en_US`).
pub fn lang_wanted(file_langs: &str, langs: &[String]) -> bool {
    if file_langs.is_empty() || langs.iter().any(|l| l == "all") {
        return true;
    }
    langs.iter().any(|want| {
        file_langs
            .split('|')
            .any(|l| !l.is_empty() && want.starts_with(l))
    })
}

thread_local! {
    static IN_GUARD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Run `f`, which hands a package file to the `rpm` library, turning a panic
/// of that library on malformed input (found by fuzzing: an index entry
/// pointing past the header) into an error naming `what`.
pub fn guard<T>(
    what: &std::path::Path,
    f: impl FnOnce() -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_GUARD.with(|g| g.get()) {
                previous(info);
            }
        }));
    });
    IN_GUARD.with(|g| g.set(true));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    IN_GUARD.with(|g| g.set(false));
    match r {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            anyhow::bail!(
                "{} is not a well-formed RPM package (the rpm library failed on it: {msg})",
                what.display()
            )
        }
    }
}
