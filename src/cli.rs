//! The command line, defined once: `main` parses it, and the man pages and
//! shell completions are generated from it.

use std::path::PathBuf;

pub use crate::commands::verify::VerifyArgs;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::pki::keys::KeyType;
use crate::pki::profile::Profile;

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
    /// Write the signed manifest and destroy the passphrase: the CA never signs again
    Seal(SealArgs),
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

#[derive(Debug, Args)]
pub struct PassphraseArgs {
    /// Read the CA passphrase from FILE (one line; a trailing newline is ignored)
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// CA directory to create (must be new or empty)
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// The CA's common name, e.g. "Acme Internal Root"
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// Key type of the CA
    #[arg(long, value_enum, default_value_t = KeyType::EcP256)]
    pub key: KeyType,
    /// Validity of the CA certificate in days
    #[arg(long, value_name = "N", default_value_t = 3650)]
    pub days: u32,
    /// How many intermediate CAs may hang below the root (1 lets Vault/OpenBao be one)
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub pathlen: u8,
    /// Permitted name subtree (repeatable): a DNS suffix such as `internal` or an IP range such as 10.0.0.0/8
    #[arg(long, value_name = "SUFFIX_OR_CIDR")]
    pub permit: Vec<String>,
    /// Default SAN rule for `uca issue` (repeatable): base, none, or a template like '{base}.svc.internal'
    #[arg(long, value_name = "RULE")]
    pub san_rule: Vec<String>,
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
    /// Generate a random passphrase and store it in DIR/private/passphrase (0400) until `uca seal`
    #[arg(long, conflicts_with = "passphrase_file")]
    pub generate_passphrase: bool,
}

/// Key type and validity of the certificates a command issues, and whether
/// it may replace what is there: the same for issue, registry and vault tls.
#[derive(Debug, Args)]
pub struct LeafArgs {
    /// Key type of the issued keys
    #[arg(long, value_enum, default_value_t = KeyType::EcP256)]
    pub key: KeyType,
    /// Validity in days
    #[arg(long, value_name = "N", default_value_t = 397)]
    pub days: u32,
    /// Replace existing output
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct IssueArgs {
    /// CA directory
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Output directory: each NAME gets OUT/NAME/{cert,key,chain,ca}.pem
    #[arg(long, value_name = "OUT")]
    pub out: PathBuf,
    /// Certificate names (host names or IP addresses); each is the CN and a SAN
    #[arg(
        value_name = "NAME",
        required_unless_present = "plan",
        conflicts_with = "plan"
    )]
    pub names: Vec<String>,
    /// Issue every certificate of a plan file instead of NAMEs (re-running completes an interrupted run)
    #[arg(long, value_name = "PLAN")]
    pub plan: Option<PathBuf>,
    /// Print a JSON summary instead of one line per certificate
    #[arg(long)]
    pub json: bool,
    /// What the certificates may be used for
    #[arg(long, value_enum, default_value_t = Profile::Both)]
    pub profile: Profile,
    /// Extra SAN for every certificate (repeatable): DNS:x, IP:x, EMAIL:x or URI:x
    #[arg(long, value_name = "KIND:VALUE")]
    pub san: Vec<String>,
    /// SAN rule (repeatable; replaces the CA's default rules): base, none, or a template like '{name}.svc.internal'
    #[arg(long, value_name = "RULE")]
    pub san_rule: Vec<String>,
    #[command(flatten)]
    pub leaf: LeafArgs,
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
}

#[derive(Debug, Args)]
pub struct CeremonyArgs {
    /// The plan file (TOML) with a [ca] section and certificate groups
    #[arg(value_name = "PLAN")]
    pub plan: PathBuf,
    /// New or empty output directory: OUT/ca (sealed CA) and OUT/certs
    #[arg(long, value_name = "OUT")]
    pub out: PathBuf,
    /// Keep an encrypted copy of the CA key in OUT/ca/private and write its passphrase to FILE (outside OUT) for offline escrow
    #[arg(long, value_name = "FILE")]
    pub escrow_passphrase: Option<PathBuf>,
    /// Print a JSON summary
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// CA directory
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// The certificate signing request (PEM or DER)
    #[arg(value_name = "CSR")]
    pub csr: PathBuf,
    /// What a leaf certificate may be used for (ignored with --intermediate)
    #[arg(long, value_enum, default_value_t = Profile::Both)]
    pub profile: Profile,
    /// Sign as an intermediate CA (e.g. for Vault/OpenBao)
    #[arg(long)]
    pub intermediate: bool,
    /// Path length of the intermediate
    #[arg(long, value_name = "N", default_value_t = 0, requires = "intermediate")]
    pub pathlen: u8,
    /// Narrow the intermediate's name constraints (repeatable; each within the root's)
    #[arg(long, value_name = "SUFFIX_OR_CIDR", requires = "intermediate")]
    pub permit: Vec<String>,
    /// Extra SAN for a leaf (repeatable)
    #[arg(long, value_name = "KIND:VALUE", conflicts_with = "intermediate")]
    pub san: Vec<String>,
    /// Validity in days (default 397 for leaves, 1825 for intermediates)
    #[arg(long, value_name = "N")]
    pub days: Option<u32>,
    /// Write the certificate to FILE instead of standard output
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Append the CA certificate after the new certificate
    #[arg(long)]
    pub chain: bool,
    /// Replace an existing --out file
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
}

#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// CA directory
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Output directory: OUT/server, OUT/config.yml, OUT/registry.env, OUT/clients/NAME
    #[arg(long, value_name = "OUT")]
    pub out: PathBuf,
    /// Names clients use for the registry: host name or IP address, optional port (e.g. registry.internal:5000, [fd00::5]:5000); it listens on the first one's port (443 if none)
    #[arg(value_name = "HOST[:PORT]", required = true)]
    pub hosts: Vec<String>,
    /// Require client certificates from this CA (http.tls.clientcas)
    #[arg(long)]
    pub client_auth: bool,
    /// Issue a client identity NAME with ready Docker and Podman certs.d folders (repeatable: one per Docker host or CI runner)
    #[arg(long = "client", value_name = "NAME")]
    pub clients: Vec<String>,
    /// Extra SAN for the registry's certificate (repeatable): DNS:x, IP:x, EMAIL:x or URI:x
    #[arg(long, value_name = "KIND:VALUE")]
    pub san: Vec<String>,
    #[command(flatten)]
    pub leaf: LeafArgs,
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
}

#[derive(Debug, Args)]
pub struct SealArgs {
    /// CA directory
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Also destroy the encrypted CA key
    #[arg(long)]
    pub destroy_key: bool,
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A PEM or DER file: certificate, chain, CSR, public or private key
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Certificate files or directories (searched for .pem, .crt and .cert files)
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,
    /// Warn when a certificate expires within this period (e.g. 30d, 12h, 2w)
    #[arg(long, value_name = "PERIOD", default_value = "30d")]
    pub within: String,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Elvish,
    Powershell,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to generate completions for
    #[arg(value_enum)]
    pub shell: Shell,
}

/// The clap command, for man pages and completions.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

#[derive(Debug, Subcommand)]
pub enum VaultCommand {
    /// Make a Vault/OpenBao PKI mount an intermediate CA of this root, with a safe role, and prove it with a probe certificate
    Bootstrap(VaultBootstrapArgs),
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
