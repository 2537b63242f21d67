//! The command line, defined once: `main` parses it, and the man pages and
//! shell completions are generated from it. Each verb's arguments, its run
//! and its report live in its own file under `commands/`; this file names
//! the verbs and sends each parsed one to its file.

use clap::{Parser, Subcommand};

use crate::commands::ceremony::{self, CeremonyArgs};
use crate::commands::check::{self, CheckArgs};
use crate::commands::completions::{self, CompletionsArgs};
use crate::commands::init::{self, InitArgs};
use crate::commands::inspect::{self, InspectArgs};
use crate::commands::issue::{self, IssueArgs};
use crate::commands::recover::{self, RecoverArgs};
use crate::commands::registry::{self, RegistryArgs};
use crate::commands::seal::{self, SealArgs};
use crate::commands::sign::{self, SignArgs};
use crate::commands::vault::{self, VaultCommand};
use crate::commands::verify::{self, VerifyArgs};
use crate::support::error::{Error, Result};
use crate::support::stdout::Stdout;

const AFTER_HELP: &str = "\
Passphrases are never taken from the command line. Sources, in order:
--passphrase-file FILE, the UCA_PASSPHRASE environment variable, the CA's
stored passphrase (from --generate-passphrase, until sealed), a prompt.

Typical run:
  uca init  --dir ca --name \"Acme Internal Root\" --permit internal --generate-passphrase
  uca issue --dir ca --out certs web1.internal rmq1.internal --san-rule '{hostbase}.svc.internal'
  uca seal  --dir ca";

#[derive(Debug, Parser)]
#[command(
    name = "uca",
    version,
    about = "A sealed private certificate authority: create a root, issue every mTLS certificate, destroy the passphrase",
    after_help = AFTER_HELP,
    propagate_version = true,
    disable_help_subcommand = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new CA whose key is encrypted at rest
    Init(InitArgs),
    /// Issue certificates and keys for one or more NAMEs
    Issue(IssueArgs),
    /// Create a CA, issue a whole plan and seal, in one run; the key never touches disk
    Ceremony(CeremonyArgs),
    /// Issue a container registry's TLS certificate and config, and each client's Docker/Podman certs.d folders
    Registry(RegistryArgs),
    /// Bootstrap Vault/OpenBao PKI from this root, and Vault's own TLS
    #[command(subcommand)]
    Vault(Box<VaultCommand>),
    /// Sign an external certificate signing request (CSR)
    Sign(SignArgs),
    /// Write the signed manifest and destroy the passphrase: the CA never signs again (with escrow: only with a quorum)
    Seal(SealArgs),
    /// With a quorum of escrow shares, have a sealed root revoke or sign one intermediate, recorded in its manifest
    Recover(RecoverArgs),
    /// Show certificates, chains, CSRs and keys (never private material)
    Inspect(InspectArgs),
    /// Verify a certificate chain for server or client use, or a sealed CA's manifest
    Verify(VerifyArgs),
    /// Add a root to the system, Java or NSS trust store, remove it, or write a bundle
    #[command(subcommand)]
    Trust(crate::commands::trust::TrustCommand),
    /// Report certificates that expire soon (exit 0 OK, 1 WARN, 2 EXPIRED, 3 unreadable)
    Check(CheckArgs),
    /// Print a shell completion script
    Completions(CompletionsArgs),
}

/// The clap command, for man pages and completions.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// A parsed command line, and whether its verb takes `--force`.
pub struct Parsed {
    pub cli: Cli,
    offers_force: bool,
}

/// Parses the process's arguments as `Cli::try_parse` does, and notes
/// whether the verb given (`vault tls`, `trust bundle`, ...) has a
/// `--force` flag.
pub fn parse() -> std::result::Result<Parsed, clap::Error> {
    let mut cmd = command();
    let mut matches = cmd.try_get_matches_from_mut(std::env::args_os())?;
    let mut verb = &cmd;
    let mut at = &matches;
    while let Some((name, sub)) = at.subcommand() {
        match verb.find_subcommand(name) {
            Some(found) => verb = found,
            None => break,
        }
        at = sub;
    }
    let offers_force = verb.get_arguments().any(|a| a.get_id() == "force");
    let cli = <Cli as clap::FromArgMatches>::from_arg_matches_mut(&mut matches)
        .map_err(|e| e.format(&mut command()))?;
    Ok(Parsed { cli, offers_force })
}

/// Runs a parsed command line and returns the process exit status.
/// Everything a command prints goes through one `Stdout`; each command tells
/// it when its work is done, so a failure to print says whether it was.
pub fn run(parsed: Parsed) -> Result<u8> {
    let mut out = Stdout::default();
    let status = parsed.cli.command.run(&mut out).map_err(|e| match e {
        // `Error::Exists` says "pass --force"; a verb without that flag
        // must not suggest it.
        Error::Exists(path) if !parsed.offers_force => Error::msg(format!(
            "{} already exists; this command never replaces a file: move it away or choose another path",
            path.display()
        )),
        other => other,
    })?;
    out.finish()?;
    Ok(status)
}

impl Command {
    /// Sends the verb to its own file's `run`.
    pub fn run(self, out: &mut Stdout) -> Result<u8> {
        match self {
            Command::Init(a) => init::run(a, out),
            Command::Issue(a) => issue::run(a, out),
            Command::Ceremony(a) => ceremony::run(a, out),
            Command::Registry(a) => registry::run(a, out),
            Command::Vault(v) => vault::run(*v, out),
            Command::Sign(a) => sign::run(a, out),
            Command::Seal(a) => seal::run(a, out),
            Command::Recover(a) => recover::run(a, out),
            Command::Inspect(a) => inspect::run(a, out),
            Command::Verify(a) => verify::run(a, out),
            Command::Trust(cmd) => crate::commands::trust::run_verb(cmd, out),
            Command::Check(a) => check::run(a, out),
            Command::Completions(a) => completions::run(a, &mut command(), out),
        }
    }
}
