//! Every command-line type of `cosa`, in one place. `main` only dispatches.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// cosa: compose RPMs into OS trees and images, in the style of coreos-assembler.
///
/// Run it in a working directory made by `cosa init`. Long work prints
/// progress to stderr; data goes to stdout.
#[derive(Debug, Parser)]
#[command(name = "cosa", version, help_expected = true, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
    /// More logging (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every verb takes.
#[derive(Debug, Clone, Args)]
pub struct GlobalOpts {
    /// The working directory (default: the current directory).
    #[arg(long, global = true, env = "COSA_WORKDIR", default_value = ".")]
    pub workdir: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Make a working directory here from a config repo (git URL or local path).
    Init(InitOpts),
    /// Resolve the manifest and download every RPM it needs into cache/.
    Fetch(FetchOpts),
    /// Compose stages run by hand.
    #[command(subcommand)]
    Compose(ComposeCmd),
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cosa init https://github.com/coreos/fedora-coreos-config --branch testing-devel
  cosa init --transient ~/src/my-os-config      # use a local config in place
  cosa init --force ../config.git               # reuse a non-empty directory

Makes src/config, builds/, cache/, tmp/, overrides/rpm/ and overrides/rootfs/.")]
pub struct InitOpts {
    /// Initialize even if the directory is not empty (existing src/config is replaced).
    #[arg(long)]
    pub force: bool,
    /// Branch of the config repo to check out (default: its HEAD).
    #[arg(long)]
    pub branch: Option<String>,
    /// Use a local config directory in place (symlink src/config to it) instead of cloning.
    #[arg(long)]
    pub transient: bool,
    /// The config repo: a git URL (https://, git://, ssh://, file://) or a local path.
    pub config: String,
}

/// Options shared by verbs that resolve the manifest.
#[derive(Debug, Clone, Args)]
pub struct ResolveOpts {
    /// Target architecture (x86_64, aarch64, s390x, ppc64le); default: the host's.
    #[arg(long)]
    pub arch: Option<String>,
    /// Refuse any package that the lockfile does not name.
    #[arg(long)]
    pub strict: bool,
    /// Parallel downloads.
    #[arg(long, default_value_t = 8)]
    pub jobs: usize,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cosa fetch                          # resolve (through the lockfile if any) and download
  cosa fetch --update-lockfile        # also write src/config/manifest-lock.<arch>.json
  cosa fetch --strict --arch aarch64  # every package must be locked

Repos come from the *.repo files beside the manifest; $basearch, $releasever
and DNF_VAR_<name> environment variables are substituted. Lockfiles layered:
manifest-lock.<arch>.json, manifest-lock.overrides.yaml, manifest-lock.overrides.<arch>.yaml.")]
pub struct FetchOpts {
    #[command(flatten)]
    pub resolve: ResolveOpts,
    /// Write the resolved set to src/config/manifest-lock.<arch>.json.
    #[arg(long)]
    pub update_lockfile: bool,
}

#[derive(Debug, Subcommand)]
pub enum ComposeCmd {
    /// Resolve, fetch what is missing, and install every package into DEST.
    Rootfs(RootfsOpts),
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cosa compose rootfs /srv/tree
  cosa compose rootfs --arch aarch64 --strict tree-aarch64   # scriptlets skipped, recorded

The tree is built beside DEST and renamed into place when done. The compose
writes tmp/manifest-lock.generated.<arch>.json and tmp/compose-report.<arch>.json
(packages, files, scriptlets run and skipped).")]
pub struct RootfsOpts {
    #[command(flatten)]
    pub resolve: ResolveOpts,
    /// Do not run %pre/%post/%posttrans scriptlets (recorded in the compose report).
    #[arg(long)]
    pub skip_scripts: bool,
    /// The directory to fill; it must be empty or missing.
    pub dest: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }
}
