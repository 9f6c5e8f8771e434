//! Every command-line type of `cosa`, in one place. `main` only dispatches.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// cosa: compose RPMs into OS trees and images, in the style of coreos-assembler.
///
/// Run it in a working directory made by `cosa init`. Long work prints
/// progress to stderr; data goes to stdout.
#[derive(Debug, Parser)]
#[command(name = "cosa", version, help_expected = true)]
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

/// Which build to act on: `--build` (default: the latest) and `--arch`
/// (default: the host's).
#[derive(Debug, Clone, Default, Args)]
pub struct BuildSelector {
    /// The build ID (default: the latest).
    #[arg(long)]
    pub build: Option<String>,
    /// The architecture: x86_64, aarch64, s390x or ppc64le (default: the host's).
    #[arg(long)]
    pub arch: Option<String>,
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
    /// Build: compose the tree, commit it to tmp/repo and record the build in builds/.
    Build(BuildOpts),
    /// List the builds in builds/builds.json.
    List(ListOpts),
    /// Show or edit a build's meta.json.
    Meta(MetaOpts),
    /// Package differences between two builds.
    Diff(DiffOpts),
    /// Delete old builds and the OSTree objects only they use.
    Prune(PruneOpts),
    /// Add one platform's image to an existing build (`cosa buildextend-<platform>` works too).
    Buildextend(BuildextendOpts),
    /// Add several platform images to an existing build at once, in parallel.
    Osbuild(OsbuildOpts),
    /// Add the live media (ISO, PXE kernel, initramfs and rootfs) to an existing build.
    #[command(name = "buildextend-live", after_help = LIVE_HELP)]
    BuildextendLive(LiveOpts),
    /// Boot tests of a build's images in QEMU.
    #[command(subcommand)]
    Kola(KolaCmd),
    /// Boot a build's QEMU image interactively on the serial console.
    Run(RunOpts),
    /// Sign a build: OpenPGP .sig files, its OSTree commit, its container image.
    Sign(SignOpts),
    /// Check a build's signatures and name anything unsigned or bad.
    Verify(VerifyOpts),
    /// Rebuild a build from its recorded inputs and compare every artifact with the recorded one.
    RebuildVerify(RebuildVerifyOpts),
    /// Release a build on a stream: release.json, releases.json, stream metadata.
    Release(ReleaseOpts),
    /// Promote a released build to another stream (or the config repo's branch).
    Promote(PromoteOpts),
    /// Start or change a throttled rollout of a release (updates/<stream>.json).
    Rollout(RolloutOpts),
    /// Make a release an update barrier: every node passes through it.
    Barrier(MarkOpts),
    /// Make a release a deadend: nodes on it are offered no update.
    Deadend(MarkOpts),
    /// Show or check the update graph of a stream.
    Graph(GraphOpts),
    /// Upload a build to a remote build store.
    #[command(subcommand)]
    Buildupload(BuilduploadCmd),
    /// Bring a build from S3, a web server or a directory into builds/.
    Buildfetch(BuildfetchOpts),
    /// Push a build's ostree container image (images.ostree) to a registry.
    PushContainer(PushContainerOpts),
    /// Compress a build's disk images in place (xz, zstd or gzip, on every core).
    Compress(CompressOpts),
    /// Undo `cosa compress`: restore a build's images, checking their sha256.
    #[command(alias = "decompress")]
    Uncompress(UncompressOpts),
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cosa buildextend-qemu                      # the latest build, host arch
  cosa buildextend-metal --build 1.20260101.dev.0
  cosa buildextend aws                       # same as cosa buildextend-aws

Platforms: qemu openstack aliyun digitalocean exoscale oraclecloud proxmoxve
ibmcloud nutanix (qcow2), aws (vmdk), azure azurestack (vhd), gcp (tar.gz),
hyperv (vhdx), metal metal4k applehv hetzner vultr (raw), vmware virtualbox
(ova), kubevirt (ociarchive), powervs (ova.gz, ppc64le only).

The commit is deployed into a fresh OSTree sysroot (bare repo, deployment,
BLS entry), GRUB is set up for BIOS and UEFI, and the disk is assembled from
directories without mounts or VMs. The artifact is recorded in meta.json
under images.<platform> (path, sha256, size); an existing one is replaced.")]
pub struct BuildextendOpts {
    /// The platform.
    #[arg(value_parser = crate::image::platform_names())]
    pub platform: String,
    #[command(flatten)]
    pub target: BuildSelector,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cosa osbuild aws azure gcp                 # three platforms of the latest build
  cosa osbuild --all                         # every platform of the arch
  cosa osbuild qemu metal --build 1.20260101.dev.0

The commit is deployed once; platforms with the same disk geometry share one
base disk (GPT, ESP, GRUB, root file system) and differ only in their boot
partition (ignition.platform.id, console kargs and GRUB console commands from
platforms.yaml); the platforms are finished in parallel.")]
pub struct OsbuildOpts {
    /// The platforms.
    #[arg(value_parser = crate::image::platform_names(), required_unless_present = "all")]
    pub platforms: Vec<String>,
    /// Every platform of the build's arch (powervs is ppc64le only).
    #[arg(long, conflicts_with = "platforms")]
    pub all: bool,
    #[command(flatten)]
    pub target: BuildSelector,
}

/// Firmware for a QEMU boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Firmware {
    /// OVMF (UEFI).
    Uefi,
    /// SeaBIOS (legacy BIOS).
    Bios,
}

#[derive(Debug, Subcommand)]
pub enum KolaCmd {
    /// Run tests: the config repo's tests/kola/ over SSH, or `basic` (the console boot check).
    Run(KolaRunOpts),
    /// List the tests there are, with their metadata.
    List(KolaListOpts),
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cosa kola run                             # every test of src/config/tests/kola/
  cosa kola run 'ext.config.files.*' --parallel 2
  cosa kola run --tag ignition              # tests tagged ignition (--tag '!slow' leaves out)
  cosa kola run --denylist my-denylist.yaml
  cosa kola run basic                       # the console boot check, latest qemu image, UEFI
  cosa kola run basic --firmware bios
  cosa kola run basic --secure-boot          # OVMF with Secure Boot enforced
  cosa kola run basic --build 1.20260101.dev.0 --platform metal4k

Tests in upstream kola's format: each executable under tests/kola/ of the
config repo is a test named ext.config.<dirs>.<file> (a directory whose
only executable is test.sh names the test alone), with config.ign or
config.bu beside it as its Ignition config, data/ copied into the machine
(KOLA_EXT_DATA) and metadata in kola.json or a `## kola:` comment block.
Each test boots the image in its own QEMU machine (TCG) with user `core`
given a fresh SSH key through Ignition, and runs as root over SSH on a port
of 127.0.0.1; a test may reboot the machine with
`/tmp/autopkgtest-reboot MARK`. Results go to tmp/kola/reports/report.json
(upstream's shape) and junit.xml; a failing test's console log, journal
and output stay in tmp/kola/<test>/. The exit status is non-zero when any
test fails.

`basic` alone is the console boot check: it boots the image with the serial
console captured and passes only when the booted system reports this
build's commit and version and its kernel command line carries
ignition.platform.id=<platform>; with --secure-boot also only when it says
Secure Boot is on and the kernel is locked down. A firmware or shim that
refuses a binary under Secure Boot ends the boot at once, and the failure
names the console line. On failure the console log is printed and kept in
tmp/kola/.")]
pub struct KolaRunOpts {
    /// Glob patterns of test names (`ext.config.*`); none: every test; `basic`: the console boot check.
    pub patterns: Vec<String>,
    /// Run tests with this tag (repeatable); `!TAG` leaves tests with it out.
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Machines to run at once (each takes its own memory and a CPU's worth of TCG).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub parallel: u32,
    /// The denylist: tests to skip (default: the config repo's kola-denylist.yaml).
    #[arg(long, value_name = "FILE")]
    pub denylist: Option<PathBuf>,
    #[command(flatten)]
    pub target: BuildSelector,
    /// Firmware to boot with.
    #[arg(long, value_enum, default_value = "uefi")]
    pub firmware: Firmware,
    /// Which image to boot (any platform whose disk QEMU can attach; metal4k
    /// is attached with 4096-byte sectors, gcp and vmware are unpacked first;
    /// live-iso boots the live ISO as a CD-ROM, live-pxe its kernel, initramfs and rootfs).
    #[arg(long, default_value = "qemu")]
    pub platform: String,
    /// Give up on `basic` after this many seconds; for SSH tests, on a boot
    /// that SSH does not answer (a test's own limit is its timeoutMin).
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
    /// Guest memory in MiB for SSH tests (a test whose minMemory is larger gets that).
    #[arg(long, default_value_t = 1536)]
    pub memory: u32,
    /// Boot with Secure Boot enforced (UEFI with Microsoft's keys: OVMF's
    /// Secure Boot build on x86_64, AAVMF on aarch64); passes only when the
    /// booted system says Secure Boot is on and its kernel is locked down.
    #[arg(long)]
    pub secure_boot: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cosa kola list                 # name, tags and description of every test
  cosa kola list --json          # everything, metadata included, as JSON

Tests are the config repo's tests/kola/ (upstream kola's external-test
format) and the built-in ones.")]
pub struct KolaListOpts {
    /// Print JSON (name, kind, executable, Ignition config, data directory, tags, metadata).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cosa run                       # boot the latest qemu image, UEFI, console on this terminal
  cosa run --firmware bios --memory 2048
  cosa run --secure-boot
  cosa run --ssh                 # network on, prints the ssh command that logs in as core
  cosa run -i config.ign --ssh   # boot with this Ignition config (the SSH key is added)

The image is opened read-only (changes go to a temporary overlay). Quit QEMU
with Ctrl-a x. With --ssh the guest's port 22 is forwarded from a free port
of 127.0.0.1 only, and the key is kept in tmp/kola/ssh/.")]
pub struct RunOpts {
    #[command(flatten)]
    pub target: BuildSelector,
    /// Firmware to boot with.
    #[arg(long, value_enum, default_value = "uefi")]
    pub firmware: Firmware,
    /// Guest memory in MiB.
    #[arg(long, default_value_t = 1024)]
    pub memory: u32,
    /// Boot with Secure Boot enforced (UEFI with Microsoft's keys: OVMF's
    /// Secure Boot build on x86_64, AAVMF on aarch64).
    #[arg(long)]
    pub secure_boot: bool,
    /// Boot with this Ignition config (spec 3.x JSON, or Butane `.bu` with butane on PATH).
    #[arg(short = 'i', long, value_name = "FILE")]
    pub ignition: Option<PathBuf>,
    /// Network on, SSH forwarded from 127.0.0.1, a key for user core; prints the ssh command.
    #[arg(long)]
    pub ssh: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cosa build                     # the OSTree commit and the qemu image
  cosa build ostree              # only the OSTree commit
  cosa build metal metal4k       # the commit and the metal images
  cosa build --force             # build even when no input changed
  cosa build --version 1.20260101.dev.7
  cosa build --stream testing    # version X.YYYYMMDD.2.N for stream testing

The version is X.YYYYMMDD.dev.N: X the manifest's releasever, the date the
lockfile's generation date (today without one), N the next free number.
When the input hash (packages, config, overlays, overrides) equals the newest
build's, no new commit is made; images the newest build lacks are still added.")]
pub struct BuildOpts {
    #[command(flatten)]
    pub resolve: ResolveOpts,
    /// What to build: ostree and any image platform (default: ostree and qemu).
    #[arg(value_parser = crate::image::build_target_names())]
    pub targets: Vec<String>,
    /// Build even if nothing changed since the previous build.
    #[arg(long)]
    pub force: bool,
    /// Use this version instead of the next dev version.
    #[arg(long)]
    pub version: Option<String>,
    /// Build for this release stream: version X.YYYYMMDD.Z.N (Z the stream's code).
    #[arg(long)]
    pub stream: Option<String>,
    /// Keep every old build (default: keep the newest 3 and tagged builds).
    #[arg(long)]
    pub skip_prune: bool,
    /// Do not run scriptlets or postprocess scripts (recorded in the build).
    #[arg(long)]
    pub skip_scripts: bool,
}

#[derive(Debug, Args)]
pub struct ListOpts {
    /// Print JSON (builds with their arches, versions, commits and timestamps).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cosa meta                                  # print meta.json of the latest build
  cosa meta --get ostree-commit
  cosa meta --build 1.20260101.dev.0 --set coreos-assembler.config-dirty=true

--set writes atomically and refuses an edit that makes meta.json invalid
against coreos-assembler's schema.")]
pub struct MetaOpts {
    #[command(flatten)]
    pub target: BuildSelector,
    /// Print one value (dotted key path).
    #[arg(long, conflicts_with = "set")]
    pub get: Option<String>,
    /// Set KEY=VALUE (VALUE as JSON when it parses, else a string); repeatable.
    #[arg(long)]
    pub set: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DiffOpts {
    /// The older build (default: the one before --to).
    #[arg(long)]
    pub from: Option<String>,
    /// The newer build (default: latest).
    #[arg(long)]
    pub to: Option<String>,
    /// The architecture (default: the host's).
    #[arg(long)]
    pub arch: Option<String>,
    /// Print `{"from", "to", "arch", "changes": [{"name", "kind", "old",
    /// "new"}]}` on stdout instead of the table (kind: added, removed,
    /// upgraded, downgraded; old/new: {name, evr: {epoch, version,
    /// release}, arch} or null).
    #[arg(long)]
    pub json: bool,
    /// Read each build's packages from the rpm database in its OSTree commit
    /// (`/usr/share/rpm/rpmdb.sqlite` in tmp/repo) instead of
    /// commitmeta.json; done anyway for a build whose commitmeta.json has no
    /// `rpmostree.rpmdb.pkglist`.
    #[arg(long)]
    pub rpmdb: bool,
}

#[derive(Debug, Args)]
pub struct PruneOpts {
    /// How many of the newest untagged builds to keep.
    #[arg(long, default_value_t = 3)]
    pub keep: usize,
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
  cosa fetch --dry-run                # only resolve: print what would be installed
  cosa fetch --dry-run --json | jq -r '.[].nevra'

Repos come from the *.repo files beside the manifest; $basearch, $releasever
and DNF_VAR_<name> environment variables are substituted. Lockfiles layered:
manifest-lock.<arch>.json, manifest-lock.overrides.yaml, manifest-lock.overrides.<arch>.yaml.")]
pub struct FetchOpts {
    #[command(flatten)]
    pub resolve: ResolveOpts,
    /// Write the resolved set to src/config/manifest-lock.<arch>.json.
    #[arg(long)]
    pub update_lockfile: bool,
    /// Resolve only: print the packages that would be installed (one
    /// `name-[epoch:]version-release.arch repo` per line, in install order)
    /// and download nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// With --dry-run: print the packages as a JSON array of objects
    /// (name, epoch, version, release, arch, nevra, repo, size).
    #[arg(long, requires = "dry_run")]
    pub json: bool,
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

/// Options naming a stream's local publish directory.
#[derive(Debug, Clone, Args)]
pub struct PublishDirOpts {
    /// Local publish root (default: streams.yaml's publish-dir, else <workdir>/publish).
    #[arg(long)]
    pub publish_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cosa release --stream testing                      # the latest build
  cosa release --stream testing --build 1.20260101.2.0 --publish-dir /srv/fcos

Merges every arch's meta.json into <publish>/prod/streams/S/builds/V/release.json,
adds the release to <publish>/prod/streams/S/releases.json (plume's rules: identical
is a no-op, a subset of arches is replaced, anything else is refused) and regenerates
<publish>/streams/S.json. Refused when an arch the stream requires is missing or a
file's sha256 differs from meta.json. The update graph is checked before writing.")]
pub struct ReleaseOpts {
    /// The stream to release on.
    #[arg(long)]
    pub stream: String,
    /// The build (default: latest).
    #[arg(long)]
    pub build: Option<String>,
    #[command(flatten)]
    pub publish: PublishDirOpts,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cosa promote --from testing --to stable                 # the newest testing release
  cosa promote --from testing --to stable --build 1.20260101.2.0 --force
  cosa promote --config-only --from testing-devel --to testing --config ~/fcos-config

A build is promoted only when it is released on --from and has baked there for the
stream's bake-days (--force overrides; recorded in the commit metadata and
promotion.json). The new build reuses the source's OSTree tree, lockfile and
packages; only os-release changes (new version X.YYYYMMDD.Z.N: same Y, the target's
Z, the next N). --config-only does the git side instead: the target branch takes
the source branch's tree but keeps its own manifest.yaml, in one commit.")]
pub struct PromoteOpts {
    /// The source stream (or, with --config-only, the source branch).
    #[arg(long)]
    pub from: String,
    /// The target stream (or, with --config-only, the target branch).
    #[arg(long)]
    pub to: String,
    /// The build to promote (default: the newest release of --from).
    #[arg(long, conflicts_with = "config_only")]
    pub build: Option<String>,
    /// Promote even if the build has not baked long enough, or --to is not promoted from --from.
    #[arg(long)]
    pub force: bool,
    /// Only promote the config repository's branch (git).
    #[arg(long)]
    pub config_only: bool,
    /// The config repository for --config-only (default: <workdir>/src/config).
    #[arg(long, requires = "config_only")]
    pub config: Option<PathBuf>,
    /// With --config-only: paths the target keeps (default: manifest.yaml); repeatable.
    #[arg(long, requires = "config_only")]
    pub keep: Vec<String>,
    #[command(flatten)]
    pub publish: PublishDirOpts,
}

#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "Examples:
  cosa rollout --stream stable --version 1.20260101.3.0 --start 2026-01-02T10:00:00Z --duration 48h
  cosa rollout --stream stable --version 1.20260101.3.0 --start now --duration 90m --start-percentage 10%
  cosa rollout clean --stream stable

Writes <publish>/updates/S.json (fedora-coreos-cincinnati's format). The version must
be released on the stream and carry its code. The update graph is checked before
anything is written. `clean` turns finished rollouts into the record
{start_percentage: 1.0} for the newest one and drops the older ones."
)]
pub struct RolloutOpts {
    #[command(subcommand)]
    pub cmd: Option<RolloutCmd>,
    /// The stream.
    #[arg(long, required = true)]
    pub stream: Option<String>,
    /// The released version to roll out.
    #[arg(long, required = true)]
    pub version: Option<String>,
    /// Start: RFC 3339, epoch seconds or `now`.
    #[arg(long, required = true)]
    pub start: Option<String>,
    /// Duration: minutes, or a number with m, h or d (90m, 48h, 2d).
    #[arg(long, required = true)]
    pub duration: Option<String>,
    /// Share of nodes at the start: a fraction (0.1) or a percentage (10%).
    #[arg(long, default_value = "0")]
    pub start_percentage: String,
    #[command(flatten)]
    pub publish: PublishDirOpts,
}

#[derive(Debug, Subcommand)]
pub enum RolloutCmd {
    /// Retire finished rollouts (keep only the newest as a 100% record).
    Clean(RolloutCleanOpts),
}

#[derive(Debug, Args)]
pub struct RolloutCleanOpts {
    /// The stream.
    #[arg(long)]
    pub stream: String,
    /// Clean as of this time (RFC 3339, epoch seconds or `now`; default now).
    #[arg(long)]
    pub at: Option<String>,
    #[command(flatten)]
    pub publish: PublishDirOpts,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cosa barrier --version 1.20260101.3.0 --reason https://github.com/coreos/fedora-coreos-tracker/issues/1
  cosa deadend --stream stable --version 1.20260101.3.1 --reason 'breaks boot on X'

The stream defaults to the one whose code is the version's third field. The version
must be released; the update graph is checked before updates/S.json is written.")]
pub struct MarkOpts {
    /// The released version.
    #[arg(long)]
    pub version: String,
    /// Why (usually a tracker URL).
    #[arg(long)]
    pub reason: String,
    /// The stream (default: from the version's stream code).
    #[arg(long)]
    pub stream: Option<String>,
    #[command(flatten)]
    pub publish: PublishDirOpts,
}

#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "Examples:
  cosa graph --stream stable                         # edges a wariness-0 node sees now
  cosa graph --stream stable --wariness 0.8 --at 2026-01-03T00:00:00Z --json
  cosa graph --stream stable --dot | dot -Tsvg > graph.svg
  cosa graph check --stream stable

The graph follows fedora-coreos-cincinnati: a rollout or barrier release gets edges
from every release since the previous barrier, a deadend has none out, and a node
sees a rolling-out release only while its wariness is at most the rollout's current
percentage. `check` fails, naming the versions, when a release (not a deadend) cannot
reach the newest rolled-out release, metadata names an unreleased version, or an
edge skips a barrier."
)]
pub struct GraphOpts {
    #[command(subcommand)]
    pub cmd: Option<GraphCmd>,
    /// The stream.
    #[arg(long, required = true)]
    pub stream: Option<String>,
    /// The node's wariness, 0.0 (eager) to 1.0 (wary).
    #[arg(long, default_value_t = 0.0)]
    pub wariness: f64,
    /// The time to evaluate rollouts at (RFC 3339, epoch seconds or `now`; default now).
    #[arg(long)]
    pub at: Option<String>,
    /// Print Cincinnati JSON.
    #[arg(long, conflicts_with = "dot")]
    pub json: bool,
    /// Print Graphviz dot.
    #[arg(long)]
    pub dot: bool,
    #[command(flatten)]
    pub publish: PublishDirOpts,
}

#[derive(Debug, Subcommand)]
pub enum GraphCmd {
    /// Check the stream's graph at full rollout; fails naming the versions.
    Check(GraphCheckOpts),
}

#[derive(Debug, Args)]
pub struct GraphCheckOpts {
    /// The stream.
    #[arg(long)]
    pub stream: String,
    #[command(flatten)]
    pub publish: PublishDirOpts,
}

/// coreos-assembler spells `cosa buildextend aws` as `cosa buildextend-aws`:
/// rewrite the first such argument into the two-word form clap knows.
pub fn expand_buildextend<I: IntoIterator<Item = std::ffi::OsString>>(
    args: I,
) -> Vec<std::ffi::OsString> {
    let mut out = Vec::new();
    let mut done = false;
    for a in args {
        if !done
            && let Some(p) = a.to_str().and_then(|s| s.strip_prefix("buildextend-"))
            && crate::image::platform_names().contains(&p)
        {
            out.push("buildextend".into());
            out.push(p.into());
            done = true;
            continue;
        }
        out.push(a);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn buildextend_dash_platform_is_expanded() {
        let a =
            expand_buildextend(["cosa", "-v", "buildextend-aws", "--build", "x"].map(Into::into));
        assert_eq!(
            a,
            ["cosa", "-v", "buildextend", "aws", "--build", "x"].map(std::ffi::OsString::from)
        );
        let b = expand_buildextend(["cosa", "buildextend-nope"].map(Into::into));
        assert_eq!(
            b,
            ["cosa", "buildextend-nope"].map(std::ffi::OsString::from)
        );
        let c = Cli::try_parse_from(expand_buildextend(
            ["cosa", "buildextend-metal4k"].map(Into::into),
        ))
        .unwrap();
        assert!(
            matches!(c.command, Command::Buildextend(BuildextendOpts { ref platform, .. }) if platform == "metal4k")
        );
    }
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  chmod 600 key.asc
  COSA_SIGN_PASSPHRASE=... cosa sign --key key.asc --ostree --images
  cosa sign --key key.asc --passphrase-file pass --ostree --ed25519-key ed25519.key
  cosa sign --key key.asc --oci --sigstore /srv/sigstore

Signs with a maintained Rust OpenPGP library; GnuPG is not needed. The key
(armored or binary OpenPGP secret key) and the passphrase file must be
readable by their owner only; the passphrase comes from --passphrase-file or
$COSA_SIGN_PASSPHRASE, never from the command line. --ostree adds signatures
of the commit to its detached metadata (ostree.gpgsigs, and
ostree.sign.ed25519 with --ed25519-key: base64 of the 64-byte secret key, as
`ostree sign` uses), re-exports the build's ostree tarball and records them
in commitmeta.json. --images writes <artifact>.sig next to every artifact of
meta.json (after --ostree, so the tarball's signature covers the signed
commit). --oci signs meta.json's base-oscontainer (image, digest) as a
containers simple signing signature in a lookaside layout:
<sigstore>/<repo path>@sha256=<hex>/signature-N.")]
pub struct SignOpts {
    /// OpenPGP secret key file (armored or binary, mode 0600).
    #[arg(long)]
    pub key: PathBuf,
    /// Read the key's passphrase from this file (first line, mode 0600);
    /// otherwise from $COSA_SIGN_PASSPHRASE.
    #[arg(long)]
    pub passphrase_file: Option<PathBuf>,
    /// Sign every artifact listed in meta.json images (<artifact>.sig).
    #[arg(long)]
    pub images: bool,
    /// Sign the build's OSTree commit (detached metadata ostree.gpgsigs).
    #[arg(long)]
    pub ostree: bool,
    /// Also sign the commit with this ed25519 key (ostree.sign.ed25519; needs --ostree).
    #[arg(long, requires = "ostree")]
    pub ed25519_key: Option<PathBuf>,
    /// Sign the build's container image (meta.json base-oscontainer).
    #[arg(long)]
    pub oci: bool,
    /// Write the build's SLSA provenance (in-toto statement) signed as a DSSE
    /// envelope with --key, as images.provenance.
    #[arg(long)]
    pub provenance: bool,
    /// Lookaside signature store for --oci (default: builds/<id>/<arch>/sigstore).
    #[arg(long)]
    pub sigstore: Option<PathBuf>,
    #[command(flatten)]
    pub target: BuildSelector,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cosa verify --keyring pubkey.asc
  cosa verify --keyring pubkey.gpg --build 1.20260101.dev.0 --ed25519-public-key ed25519.pub

Checks every artifact of meta.json against <artifact>.sig, the OSTree
commit's ostree.gpgsigs (and ostree.sign.ed25519 with
--ed25519-public-key), the container image's simple signing signatures
when the build has a base-oscontainer, and the provenance and the `cosa
rebuild-verify --attest` statement when the build has them. Prints one
line per item (good, bad or unsigned) and exits non-zero naming every item
that is unsigned or bad.")]
pub struct VerifyOpts {
    /// OpenPGP public keys (armored or binary; several allowed in one file).
    #[arg(long)]
    pub keyring: PathBuf,
    /// ed25519 public keys (base64, one per line) for ostree.sign.ed25519.
    #[arg(long)]
    pub ed25519_public_key: Option<PathBuf>,
    /// Lookaside signature store for the container image (default: builds/<id>/<arch>/sigstore).
    #[arg(long)]
    pub sigstore: Option<PathBuf>,
    #[command(flatten)]
    pub target: BuildSelector,
    /// Print `{"build", "arch", "good", "items": [{"name", "status",
    /// "detail"}]}` on stdout instead of one line per item (status: good,
    /// bad, unsigned). The exit status is the same.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cosa rebuild-verify                         # the latest build, host arch
  cosa rebuild-verify --build 1.20260101.dev.0 --json | jq .rows
  cosa rebuild-verify --attest key.asc        # also write a signed statement beside the build
  cosa rebuild-verify --from-release s3://fcos-builds/prod/streams/stable --build 41.20250101.3.0
  cosa rebuild-verify --from-release https://builds.example.com/dev --keep

The build is made again in a scratch working directory, tmp/rebuild-<id>-*/
(removed afterwards unless --keep), from what it recorded: its generated
lockfile (every package by version and sha256; each cached RPM is hashed
again and one that differs fails the rebuild, naming the package), the
config repo at the recorded commit (checked out into the scratch directory
when the config has moved on; a build made from a dirty config is rebuilt
from the config as it is, with a warning), the commit's timestamp as
SOURCE_DATE_EPOCH, its parent, and the build id as the version. This working
directory's cache/ and overrides/ are used. Then the same code as `cosa
build`, `cosa osbuild` and `cosa buildextend-live` makes every artifact
meta.json records, and each sha256 (the uncompressed one of a compressed
artifact) is compared with the recorded one, as is the OSTree commit (when
it differs, the first differing file is named) and the generated lockfile.
Nothing of the build, builds.json, the refs or tmp/repo changes.

Prints ARTIFACT, RECORDED and REBUILT sha256 (12 digits) and identical or
DIFFERENT per line, and exits non-zero naming every artifact that differs or
could not be made; the provenance is skipped (it is signed, not built).
--from-release fetches the build (meta.json, lockfile, ostree artifact) from
a build store as `cosa buildfetch` does, into the scratch directory.
--attest writes <name>-<id>-rebuild-verify.<arch>.intoto.json (an in-toto
statement with a SLSA verification summary, PASSED or FAILED, signed as a
DSSE envelope like the provenance) beside the build, or in the working
directory for --from-release; `cosa verify` checks it.")]
pub struct RebuildVerifyOpts {
    #[command(flatten)]
    pub target: BuildSelector,
    /// Rebuild a build of this build store instead of a local one:
    /// s3://BUCKET/PREFIX, http(s)://HOST/PREFIX, file:///PATH or a directory with builds/.
    #[arg(long, value_name = "URL")]
    pub from_release: Option<String>,
    /// An S3-compatible endpoint for --from-release, addressed path-style.
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// Write a signed verification statement with this OpenPGP secret key
    /// (armored or binary, mode 0600), as `cosa sign --provenance` signs.
    #[arg(long, value_name = "KEYFILE")]
    pub attest: Option<PathBuf>,
    /// Read the --attest key's passphrase from this file (first line, mode
    /// 0600); otherwise from $COSA_SIGN_PASSPHRASE.
    #[arg(long, requires = "attest")]
    pub passphrase_file: Option<PathBuf>,
    /// Print `{"build", "arch", "source", "rows": [{"artifact", "file",
    /// "recorded", "rebuilt", "status", "detail"}], "commit_diff",
    /// "warnings", "seconds"}` on stdout instead of the table (status:
    /// identical, different, not-rebuilt, skipped). The exit status is the same.
    #[arg(long)]
    pub json: bool,
    /// Keep the scratch working directory (its path is printed).
    #[arg(long)]
    pub keep: bool,
    /// Parallel downloads of packages missing from the cache.
    #[arg(long, default_value_t = 8)]
    pub jobs: usize,
}

#[derive(Debug, Subcommand)]
pub enum BuilduploadCmd {
    /// Upload a build arch and merge it into the bucket's builds.json.
    S3(BuilduploadS3Opts),
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cosa buildupload s3 --bucket fcos-builds/prod/streams/stable
  cosa buildupload s3 --bucket my-bucket/dev --acl public-read --build 1.20260101.dev.0
  AWS_ENDPOINT_URL=http://127.0.0.1:9000 cosa buildupload s3 --bucket builds/ci --arch aarch64

Uploads meta.json, commitmeta.json, the lockfile, every artifact of meta.json
and their .sig files to PREFIX/builds/<id>/<arch>/ (the Fedora CoreOS layout),
meta.json last, then merges the build into PREFIX/builds/builds.json with
conditional writes (If-Match on its ETag, retried when another writer got
there first), so arches uploaded from several machines at once all land.
Objects carry their sha256 in metadata: one already there with the same
sha256 is skipped, so a rerun after an interruption sends only what is
missing. Credentials come from the usual AWS chain (environment, profile).")]
pub struct BuilduploadS3Opts {
    /// BUCKET/PREFIX (or s3://BUCKET/PREFIX) of the build store.
    #[arg(long)]
    pub bucket: String,
    /// Canned ACL for every object (e.g. private, public-read).
    #[arg(long)]
    pub acl: Option<String>,
    #[command(flatten)]
    pub target: BuildSelector,
    /// An S3-compatible endpoint, addressed path-style.
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// Objects uploaded at once.
    #[arg(long, default_value_t = 4)]
    pub jobs: usize,
    /// Files from this size up go in parts (bytes, or with K/M/G suffix, powers of 1024).
    #[arg(long, default_value = "64M", value_parser = crate::publish::s3::parse_size)]
    pub multipart_threshold: u64,
    /// Size of one part (at least 5M).
    #[arg(long, default_value = "16M", value_parser = crate::publish::s3::parse_size)]
    pub part_size: u64,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cosa buildfetch --url s3://fcos-builds/prod/streams/stable
  cosa buildfetch --url s3://my-bucket/dev --build 1.20260101.dev.0 --arch all --artifact qemu
  cosa buildfetch --url https://builds.example.com/dev --artifact all
  cosa buildfetch --url /srv/other-workdir

Reads PREFIX/builds/builds.json and merges it into the local one, then brings
meta.json, commitmeta.json, the lockfile, the ostree artifact and the artifacts
named by --artifact of the build into builds/<id>/<arch>/, each checked
against meta.json's sha256 and written through a temp file. The commit is
imported into tmp/repo, so `cosa buildextend-*` and `cosa build` can go on from
the fetched build. Files already present with the right sha256 are kept.")]
pub struct BuildfetchOpts {
    /// s3://BUCKET/PREFIX, http(s)://HOST/PREFIX, or a local directory with builds/.
    #[arg(long)]
    pub url: String,
    /// The build: an id or `latest`.
    #[arg(long, default_value = "latest")]
    pub build: String,
    /// The architecture, or `all` (default: the host's).
    #[arg(long)]
    pub arch: Option<String>,
    /// An artifact of meta.json's images to fetch too (repeatable; `all` for every one).
    #[arg(long)]
    pub artifact: Vec<String>,
    /// An S3-compatible endpoint, addressed path-style.
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cosa push-container quay.io/example/fcos
  cosa push-container --insecure 127.0.0.1:5000/test/os:extra --tag testing
  cosa push-container --authfile auth.json --build 41.20240520.dev.0 registry.example.com/os

Pushes the build's images.ostree, an OCI archive holding the OSTree commit in
the ostree-native container format that rpm-ostree and bootc consume, with the
tags: the build's version, the stream from meta.json when it has one, the
:TAG of the reference and every --tag. Blobs the registry already has are not
sent again. The manifest digest is recorded in meta.json as base-oscontainer
{image, digest, tags}. Credentials come from --authfile or
$REGISTRY_AUTH_FILE (containers auth.json: auths.<registry>.auth, base64
user:password), else the push is anonymous. Plain HTTP is used with
--insecure, and always for localhost and 127.0.0.1.")]
pub struct PushContainerOpts {
    /// Destination: REGISTRY/REPO[:TAG].
    pub image: String,
    #[command(flatten)]
    pub target: BuildSelector,
    /// Another tag to push (repeatable).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// containers auth.json with the registry's credentials.
    #[arg(long, env = "REGISTRY_AUTH_FILE")]
    pub authfile: Option<PathBuf>,
    /// Talk plain HTTP to the registry.
    #[arg(long)]
    pub insecure: bool,
}

const LIVE_HELP: &str = "Examples:
  cosa buildextend-live                      # the latest build, host arch
  cosa buildextend-live --build 1.20260101.dev.0
  cosa kola run basic --platform live-iso --firmware bios

The commit is deployed into a fresh sysroot, which becomes a squashfs inside
a cpio archive (<name>-<id>-live-rootfs.<arch>.img, appendable to the
initramfs for PXE). The OS's kernel and initramfs are the -live-kernel and
-live-initramfs files. The ISO (-live-iso.<arch>.iso, made with xorriso)
holds all three and boots by BIOS and UEFI, as a CD-ROM or as a disk; its
volume label is passed as coreos.liveiso=. meta.json gets images.live-iso,
live-kernel, live-initramfs and live-rootfs.";

#[derive(Debug, Args)]
pub struct LiveOpts {
    #[command(flatten)]
    pub target: BuildSelector,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cosa compress                              # latest build, every arch, image.yaml's compressor
  cosa compress --compressor zstd --artifact metal
  cosa compress --fast                       # gzip -1, for CI runs that only test

Every artifact in meta.json images is compressed in place except those with
skip-compression and those upstream never compresses (ostree, gcp, kubevirt,
nutanix, vmware, virtualbox, digitalocean, live media). The compressor is
--compressor, else image.yaml's compressor, else gzip (coreos-assembler's
default); image.yaml's platform-compressor map overrides it per artifact.
Levels are upstream's: xz -9, zstd -10, gzip -6 (--fast: level 1, and gzip
when no --compressor is given). xz and zstd use every core; gzip is written
as independent members compressed in parallel. meta.json gets the new path,
sha256 and size plus uncompressed-sha256 and uncompressed-size, one artifact
at a time; an artifact already compressed is left alone, so running it again
does nothing and an interrupted run resumes.")]
pub struct CompressOpts {
    #[command(flatten)]
    pub target: BuildSelector,
    /// The compressor (default: image.yaml `compressor`, else gzip).
    #[arg(long, value_parser = ["xz", "zstd", "gzip"])]
    pub compressor: Option<String>,
    /// Fastest level (and gzip unless --compressor names another), as upstream's --fast.
    #[arg(long)]
    pub fast: bool,
    /// Only this artifact (an images.<NAME> key); repeat for several.
    #[arg(long, value_name = "NAME")]
    pub artifact: Vec<String>,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cosa uncompress                            # latest build, every arch
  cosa uncompress --artifact qemu --build 1.20260101.dev.0

Every artifact compressed by `cosa compress` (it has uncompressed-sha256 and
a .xz, .zst or .gz path) is decompressed in place; the result must match
uncompressed-sha256 and uncompressed-size, else nothing is changed. meta.json
gets back the original path, sha256 and size, and the uncompressed-* keys are
removed. Artifacts with skip-compression are left alone; missing files are
skipped unless named with --artifact.")]
pub struct UncompressOpts {
    #[command(flatten)]
    pub target: BuildSelector,
    /// Only this artifact (an images.<NAME> key); repeat for several.
    #[arg(long, value_name = "NAME")]
    pub artifact: Vec<String>,
}
