//! The `cosa` binary: parse the command line and dispatch one verb.

use clap::Parser;
use cosa::cli::{BuilduploadCmd, Cli, Command, ComposeCmd, KolaCmd};
use cosa::release::updates::Mark;

fn main() {
    let cli = Cli::parse_from(cosa::cli::expand_buildextend(std::env::args_os()));
    cosa::util::init_logging(cli.verbose);
    // Modes never come from the caller's umask: every file and directory
    // cosa creates (in trees, in the build store, in images) gets the mode
    // it asks for masked by 022, and scriptlets run with umask 022 as rpm
    // runs them. A build under `umask 077` gives the same commit.
    unsafe { libc::umask(0o022) };
    let result = match cli.command {
        Command::Init(o) => cosa::cmd::init::run(&cli.global, o),
        Command::Fetch(o) => cosa::cmd::fetch::run(&cli.global, o),
        Command::Compose(ComposeCmd::Rootfs(o)) => cosa::cmd::compose::rootfs(&cli.global, o),
        Command::Build(o) => cosa::cmd::build::run(&cli.global, o),
        Command::List(o) => cosa::cmd::builds::list(&cli.global, o),
        Command::Meta(o) => cosa::cmd::builds::meta(&cli.global, o),
        Command::Diff(o) => cosa::cmd::builds::diff(&cli.global, o),
        Command::Prune(o) => cosa::cmd::builds::prune(&cli.global, o),
        Command::Buildextend(o) => cosa::cmd::image::buildextend(&cli.global, o),
        Command::Osbuild(o) => cosa::cmd::image::osbuild(&cli.global, o),
        Command::BuildextendLive(o) => cosa::cmd::live::buildextend_live(&cli.global, o),
        Command::Kola(KolaCmd::Run(o)) => cosa::cmd::kola::run(&cli.global, o),
        Command::Kola(KolaCmd::List(o)) => cosa::cmd::kola::list(&cli.global, o),
        Command::Run(o) => cosa::cmd::kola::interactive(&cli.global, o),
        Command::Sign(o) => cosa::cmd::sign::sign(&cli.global, o),
        Command::Verify(o) => cosa::cmd::sign::verify(&cli.global, o),
        Command::RebuildVerify(o) => cosa::cmd::rebuild_verify::run(&cli.global, o),
        Command::Release(o) => cosa::cmd::release::release(&cli.global, o),
        Command::Promote(o) => cosa::cmd::release::promote(&cli.global, o),
        Command::Rollout(o) => cosa::cmd::release::rollout(&cli.global, o),
        Command::Barrier(o) => cosa::cmd::release::mark(&cli.global, o, Mark::Barrier),
        Command::Deadend(o) => cosa::cmd::release::mark(&cli.global, o, Mark::Deadend),
        Command::Graph(o) => cosa::cmd::release::graph(&cli.global, o),
        Command::Buildupload(BuilduploadCmd::S3(o)) => cosa::cmd::buildupload::s3(&cli.global, o),
        Command::Buildfetch(o) => cosa::cmd::buildfetch::run(&cli.global, o),
        Command::PushContainer(o) => cosa::cmd::push_container::push_container(&cli.global, o),
        Command::Compress(o) => cosa::cmd::compress::compress(&cli.global, o),
        Command::Uncompress(o) => cosa::cmd::compress::uncompress(&cli.global, o),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
