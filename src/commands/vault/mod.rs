//! Vault/OpenBao: uca's root becomes the parent of Vault's PKI intermediate
//! (`bootstrap`), Vault gets its own TLS from the root (`tls`), and an
//! air-gapped ceremony gets the exact commands to run (`offline`). This
//! file holds the `uca vault` subcommands' arguments (clap), their runs and
//! their reports.

pub mod bootstrap;
pub mod client;
pub mod offline;
pub mod storage;
pub mod tls;

use std::path::PathBuf;

use clap::{Args, Subcommand};

use self::client::Connection;
use crate::commands::args::{LeafArgs, PassphraseArgs};
use crate::pki::keys::KeyType;
use crate::support::error::Result;
use crate::support::stdout::Stdout;

#[derive(Debug, Subcommand)]
pub enum VaultCommand {
    /// Make a Vault/OpenBao PKI mount an intermediate CA of this root, with a safe role, and prove it with a probe certificate
    Bootstrap(Box<VaultBootstrapArgs>),
    /// Issue Vault's listener, operator, raft node and storage certificates and write the HCL stanzas
    Tls(VaultTlsArgs),
    /// Print the exact commands for an air-gapped bootstrap (the CA machine never talks to Vault)
    Commands(VaultCommandsArgs),
}

#[derive(Debug, Args)]
pub struct VaultConnectionArgs {
    /// Vault/OpenBao address, e.g. https://vault.internal:8200
    #[arg(long, value_name = "URL")]
    pub addr: String,
    /// CA certificate that issued Vault's listener certificate (for https://)
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Client certificate for a listener that requires one
    #[arg(long, value_name = "FILE", requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// Key of the client certificate
    #[arg(long, value_name = "FILE", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
    /// Read the Vault token from FILE (else VAULT_TOKEN, then BAO_TOKEN; never the command line)
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Namespace to work in (Vault Enterprise, OpenBao), e.g. team-a or team-a/dev
    #[arg(long, value_name = "NS")]
    pub namespace: Option<String>,
}

#[derive(Debug, Args)]
pub struct VaultRoleArgs {
    /// The PKI mount path
    #[arg(long, value_name = "PATH", default_value = crate::commands::vault::bootstrap::DEFAULT_MOUNT)]
    pub mount: String,
    /// The mount's maximum lease TTL
    #[arg(long, value_name = "TTL", default_value = crate::commands::vault::bootstrap::DEFAULT_MAX_TTL)]
    pub max_ttl: String,
    /// Role to create
    #[arg(long, value_name = "NAME", default_value = crate::commands::vault::bootstrap::DEFAULT_ROLE)]
    pub role: String,
    /// Domain the role may issue for (repeatable; subdomains allowed, the bare domain only with --allow-bare-domains)
    #[arg(long = "allowed-domain", value_name = "DOMAIN")]
    pub allowed_domains: Vec<String>,
    /// The role's maximum TTL
    #[arg(long, value_name = "TTL", default_value = crate::commands::vault::bootstrap::DEFAULT_ROLE_MAX_TTL)]
    pub role_max_ttl: String,
    /// Common name of the intermediate
    #[arg(long, value_name = "NAME", default_value = crate::commands::vault::bootstrap::DEFAULT_COMMON_NAME)]
    pub common_name: String,
    /// Issuing-certificate URL written into Vault's certificates (default ADDR/v1/MOUNT/ca)
    #[arg(long, value_name = "URL")]
    pub issuing_url: Option<String>,
    /// CRL distribution point URL (default ADDR/v1/MOUNT/crl)
    #[arg(long, value_name = "URL")]
    pub crl_url: Option<String>,
    /// Key type of the intermediate
    #[arg(long, value_enum, default_value_t = KeyType::EcP256)]
    pub key: KeyType,
}

#[derive(Debug, Args)]
pub struct VaultBootstrapArgs {
    /// CA directory
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub conn: VaultConnectionArgs,
    #[command(flatten)]
    pub role: VaultRoleArgs,
    /// csr: Vault makes the intermediate key; import: uca makes it and imports the bundle
    #[arg(long, value_enum, default_value_t = crate::commands::vault::bootstrap::BootstrapMode::Csr)]
    pub mode: crate::commands::vault::bootstrap::BootstrapMode,
    /// Validity of the intermediate in days
    #[arg(long, value_name = "N", default_value_t = crate::commands::vault::bootstrap::DEFAULT_DAYS)]
    pub days: u32,
    /// Narrow the intermediate's name constraints (repeatable; each within the root's)
    #[arg(long, value_name = "SUFFIX_OR_CIDR")]
    pub permit: Vec<String>,
    /// The root's CRL URL to put into the intermediate (default: the CA's, from uca init --crl-url)
    #[arg(long, value_name = "URL")]
    pub root_crl_url: Option<String>,
    /// Let the role issue IP SANs
    #[arg(long)]
    pub allow_ip_sans: bool,
    /// Let the role issue wildcard certificates
    #[arg(long)]
    pub allow_wildcards: bool,
    /// Let the role issue for the allowed domains themselves, not only subdomains
    #[arg(long)]
    pub allow_bare_domains: bool,
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
    /// Raft node identity for retry_join (repeatable)
    #[arg(long = "node", value_name = "NAME")]
    pub nodes: Vec<String>,
    /// PostgreSQL storage reached over mutual TLS, as postgresql://ROLE@HOST[:PORT]/DATABASE: the database's certificate, Vault's client identity (CN = ROLE) and storage.hcl
    #[arg(long, value_name = "URL")]
    pub storage: Option<String>,
    /// Address the listener binds
    #[arg(long, value_name = "IP", default_value = "0.0.0.0")]
    pub address: String,
    /// API port (the cluster port is PORT+1)
    #[arg(long, value_name = "PORT", default_value_t = 8200)]
    pub port: u16,
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
    #[command(flatten)]
    pub role: VaultRoleArgs,
    /// The CLI to print commands for
    #[arg(long, value_name = "CLI", default_value = "bao", value_parser = ["bao", "vault"])]
    pub cli: String,
}

/// Runs a `uca vault` subcommand.
pub fn run(cmd: VaultCommand, out: &mut Stdout) -> Result<u8> {
    match cmd {
        VaultCommand::Bootstrap(a) => run_vault_bootstrap(*a, out),
        VaultCommand::Tls(a) => run_vault_tls(a, out),
        VaultCommand::Commands(a) => run_vault_commands(a, out),
    }
}

fn run_vault_bootstrap(a: VaultBootstrapArgs, out: &mut Stdout) -> Result<u8> {
    let req = bootstrap::BootstrapRequest {
        dir: a.dir,
        conn: Connection {
            addr: a.conn.addr,
            cacert: a.conn.cacert,
            client_cert: a.conn.client_cert,
            client_key: a.conn.client_key,
            token_file: a.conn.token_file,
            namespace: a.conn.namespace,
        },
        mount: a.role.mount,
        max_ttl: a.role.max_ttl,
        role: a.role.role,
        allowed_domains: a.role.allowed_domains,
        role_max_ttl: a.role.role_max_ttl,
        allow_ip_sans: a.allow_ip_sans,
        allow_wildcards: a.allow_wildcards,
        allow_bare_domains: a.allow_bare_domains,
        issuing_url: a.role.issuing_url,
        crl_url: a.role.crl_url,
        mode: a.mode,
        common_name: a.role.common_name,
        key: a.role.key,
        days: a.days,
        permits: a.permit,
        root_crl_url: a.root_crl_url,
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
            req.mount
        )
    } else {
        format!("Vault was bootstrapped under {}", req.mount)
    });
    if kept {
        writeln!(
            out,
            "already bootstrapped: kept the intermediate; the URLs, role {} and a probe certificate are in place",
            req.role
        )?;
    } else {
        writeln!(
            out,
            "bootstrap complete: Vault issues under {} as an intermediate of this root",
            req.mount
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
        "wrote {} (paste into Vault's configuration)",
        report.listener_hcl.display()
    )?;
    if let Some(r) = &report.retry_join_hcl {
        writeln!(
            out,
            "wrote {} (retry_join blocks for storage \"raft\")",
            r.display()
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
        mount: a.role.mount,
        max_ttl: a.role.max_ttl,
        common_name: a.role.common_name,
        key_type: bootstrap::vault_key_type(a.role.key),
        role: a.role.role,
        allowed_domains: a.role.allowed_domains,
        role_max_ttl: a.role.role_max_ttl,
        issuing_url: a.role.issuing_url,
        crl_url: a.role.crl_url,
    };
    req.validate()?;
    write!(out, "{}", offline::render(&req))?;
    Ok(0)
}
