//! Vault/OpenBao: uca's root becomes the parent of Vault's PKI intermediate
//! (`bootstrap`), Vault gets its own TLS from the root (`tls`), and an
//! air-gapped ceremony gets the exact commands to run (`offline`). This
//! file holds the `uca vault` subcommands' arguments (clap), their runs and
//! their reports.

pub mod acme;
pub mod bootstrap;
pub mod client;
pub mod offline;
pub mod pending;
pub mod reissue;
pub mod server_config;
pub mod storage;
pub mod tls;

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::ca::sections::{VaultPki, VaultSettings};
use crate::commands::args::{LeafArgs, PassphraseArgs};
use crate::support::error::Result;
use crate::support::stdout::Stdout;

#[derive(Debug, Subcommand)]
pub enum VaultCommand {
    /// Make a Vault/OpenBao PKI mount an intermediate CA of this root, with a safe role, and prove it with a probe certificate
    Bootstrap(VaultBootstrapArgs),
    /// Issue Vault's listener, operator, node and storage certificates and write complete OpenBao configurations
    Tls(VaultTlsArgs),
    /// Print the exact commands for an air-gapped bootstrap (the CA machine never talks to Vault)
    Commands(VaultCommandsArgs),
}

#[derive(Debug, Args)]
pub struct VaultBootstrapArgs {
    /// CA directory
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    // Boxed: the settings are large, and most `uca vault` runs are not bootstraps.
    #[command(flatten)]
    pub vault: Box<VaultSettings>,
    /// Add a new intermediate even if the mount already has one from this root
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
}

#[derive(Debug, Args)]
pub struct VaultTlsArgs {
    /// CA directory
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Output directory
    #[arg(long, value_name = "OUT")]
    pub out: PathBuf,
    /// Name or IP address clients use to reach Vault (repeatable; the first is the listener certificate's CN)
    #[arg(long = "host", value_name = "NAME_OR_IP", required = true)]
    pub hosts: Vec<String>,
    /// Operator client identity (repeatable)
    #[arg(long = "operator", value_name = "NAME")]
    pub operators: Vec<String>,
    /// A node of a cluster, by the name or IP address the others reach it at (repeatable): its certificate and its complete configuration, nodes/NAME/openbao.hcl
    #[arg(long = "node", value_name = "NAME")]
    pub nodes: Vec<String>,
    /// PostgreSQL storage reached over mutual TLS, as postgresql://ROLE@HOST[:PORT]/DATABASE: the database's certificate, Vault's client identity (CN = ROLE) and storage.hcl
    #[arg(long, value_name = "URL")]
    pub storage: Option<String>,
    /// Address every listener binds [default: a node named by an IP address binds that address, anything else 0.0.0.0]
    #[arg(long, value_name = "IP")]
    pub address: Option<String>,
    /// API port
    #[arg(long, value_name = "PORT", default_value_t = 8200)]
    pub port: u16,
    /// Cluster port (request forwarding and raft between nodes) [default: PORT+1]
    #[arg(long, value_name = "PORT")]
    pub cluster_port: Option<u16>,
    /// Raft data goes in DIR/NAME for each server NAME [default: OUT/raft]
    #[arg(long, value_name = "DIR")]
    pub raft_dir: Option<PathBuf>,
    #[command(flatten)]
    pub leaf: LeafArgs,
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
}

#[derive(Debug, Args)]
pub struct VaultCommandsArgs {
    /// CA directory (as it will be named on the CA machine)
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Vault Enterprise/OpenBao namespace of the mount: every command passes it, and the URLs name it
    #[arg(long, value_name = "NS")]
    pub namespace: Option<String>,
    #[command(flatten)]
    pub pki: VaultPki,
    /// The CLI to print commands for
    #[arg(long, value_name = "CLI", default_value = "bao", value_parser = ["bao", "vault"])]
    pub cli: String,
    /// Print instead the commands that issue PLAN's certificates again from the mount's role (leaves of a sealed root), one line each, with Vault making the keys and jq writing cert.pem, key.pem and chain.pem
    #[arg(long, value_name = "PLAN")]
    pub plan: Option<PathBuf>,
    /// With --plan: only this plan group
    #[arg(long, value_name = "NAME", requires = "plan")]
    pub group: Option<String>,
    /// With --plan: where the certificates' directories go, as in `uca issue --plan`
    #[arg(long, value_name = "OUT", requires = "plan", default_value = "certs")]
    pub out: PathBuf,
}

/// Runs a `uca vault` subcommand.
pub fn run(cmd: VaultCommand, out: &mut Stdout) -> Result<u8> {
    match cmd {
        VaultCommand::Bootstrap(a) => run_vault_bootstrap(a, out),
        VaultCommand::Tls(a) => run_vault_tls(a, out),
        VaultCommand::Commands(a) => run_vault_commands(a, out),
    }
}

fn run_vault_bootstrap(a: VaultBootstrapArgs, out: &mut Stdout) -> Result<u8> {
    let req = bootstrap::BootstrapRequest {
        dir: a.dir,
        vault: *a.vault,
        force: a.force,
        passphrase_file: a.passphrase.passphrase_file,
    };
    // A progress line that cannot be printed does not stop the
    // bootstrap; the failure is reported once it is done.
    let outcome = bootstrap::run(&req, &mut |line| {
        let _ = writeln!(out, "- {line}");
    })?;
    let kept = outcome.new_intermediate.is_none();
    out.work_done(if kept {
        format!(
            "Vault's bootstrap under {} was completed with the existing intermediate",
            req.vault.pki.mount
        )
    } else {
        format!("Vault was bootstrapped under {}", req.vault.pki.mount)
    });
    if kept {
        writeln!(
            out,
            "already bootstrapped: kept the intermediate; the URLs, role {} and a probe certificate are in place",
            req.vault.pki.role
        )?;
    } else {
        writeln!(
            out,
            "bootstrap complete: Vault issues under {} as an intermediate of this root",
            req.vault.pki.mount
        )?;
    }
    Ok(0)
}

fn run_vault_tls(a: VaultTlsArgs, out: &mut Stdout) -> Result<u8> {
    let report = tls::run(&tls::TlsRequest {
        dir: a.dir,
        out: a.out,
        hosts: a.hosts,
        operators: a.operators,
        nodes: a.nodes,
        storage: a.storage,
        address: a.address,
        port: a.port,
        cluster_port: a.cluster_port,
        raft_dir: a.raft_dir,
        key: a.leaf.key,
        days: a.leaf.days,
        force: a.leaf.force,
        passphrase_file: a.passphrase.passphrase_file,
    })?;
    out.work_done(format!(
        "{} and {} were written",
        crate::support::stdout::certificates(report.issued.len() as u64),
        report.listener_hcl.display()
    ));
    for c in &report.issued {
        writeln!(
            out,
            "issued {}: {}/{{cert,key,chain,ca}}.pem  SANs {}",
            c.name,
            c.target.display(),
            c.sans.join(", ")
        )?;
    }
    writeln!(
        out,
        "wrote {} (the listener stanza alone, for a configuration of your own)",
        report.listener_hcl.display()
    )?;
    if let Some(r) = &report.retry_join_hcl {
        writeln!(
            out,
            "wrote {} (retry_join blocks for storage \"raft\")",
            r.display()
        )?;
    }
    for (name, file) in &report.server_configs {
        writeln!(
            out,
            "wrote {} (OpenBao server {name}, complete: bao server -config={})",
            file.display(),
            file.display()
        )?;
    }
    if let Some(st) = &report.storage_hcl {
        writeln!(out, "wrote {} (storage \"postgresql\" for Vault; its comments say what the database server needs)",
            st.display()
        )?;
    }
    Ok(0)
}

fn run_vault_commands(a: VaultCommandsArgs, out: &mut Stdout) -> Result<u8> {
    let req = offline::OfflineRequest {
        cli: a.cli,
        dir: a.dir.display().to_string(),
        namespace: a.namespace,
        pki: a.pki,
    };
    req.validate()?;
    let text = match &a.plan {
        Some(plan_path) => reissue::render(
            &req,
            &reissue::ReissueRequest {
                ca_dir: &a.dir,
                plan_path,
                group: a.group.as_deref(),
                out: &a.out,
            },
        )?,
        None => offline::render(&req),
    };
    write!(out, "{text}")?;
    Ok(0)
}
