//! Debian packages converted to rpm packages that keep the dependency
//! graph, for sample OSes built from Debian.
//!
//! - [`closure`]: [`fetch_closure`], the Depends + Pre-Depends closure of
//!   some packages, downloaded through a private apt state.
//! - [`control`]: control files and relation fields.
//! - [`version`]: Debian versions as rpm Epoch / Version / Release.
//! - [`payload`]: a .deb's control and data archives as file specs, with
//!   the /usr merge.
//! - [`convert`]: one .deb -> one .rpm ([`convert_deb`]), cached
//!   ([`convert_all`]), a whole closure -> a repository ([`make_repo`]).
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use cosa_testkit::deb;
//! let cache = cosa_testkit::sample::debian::cache_dir()?;
//! let debs = deb::fetch_closure(&cache, &["usr-is-merged", "systemd"], "amd64")?;
//! let pkgs = deb::make_repo(&cache, &debs, std::path::Path::new("/tmp/repo"))?;
//! let with_scripts: Vec<_> = pkgs.iter().filter(|p| !p.maintainer_scripts.is_empty()).collect();
//! # let _ = with_scripts; Ok(()) }
//! ```

pub mod closure;
pub mod control;
pub mod convert;
pub mod payload;
pub mod version;

pub use closure::fetch_closure;
pub use convert::{Converted, RECORD, convert_all, convert_deb, make_repo};
pub use version::{DebVersion, RpmEvr, rpm_evr};
