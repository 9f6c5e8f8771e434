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
