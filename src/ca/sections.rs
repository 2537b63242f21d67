//! The settings of a plan file's `[registry]` and `[vault]` sections, which
//! `uca registry` and `uca vault bootstrap` share with it: data and their
//! defaults only. The commands act on them.

use std::path::PathBuf;

use serde::Deserialize;

use crate::pki::keys::KeyType;

/// What to issue: the command line's arguments or a plan's `[registry]`.
///
/// ```toml
/// [registry]
/// hosts = ["registry.internal:5000", "10.0.0.5:5000"]
/// client_auth = true
/// clients = ["ci1.internal", "build1.internal"]
/// sans = ["DNS:registry.svc.internal"]
/// key = "ec-p256"                     # optional
/// days = 397                          # optional
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrySpec {
    pub hosts: Vec<String>,
    #[serde(default)]
    pub client_auth: bool,
    #[serde(default)]
    pub clients: Vec<String>,
    #[serde(default)]
    pub sans: Vec<String>,
    /// http.addr: IP:PORT or :PORT; by default :PORT of the first host.
    #[serde(default)]
    pub listen: Option<String>,
    #[serde(default = "default_key")]
    pub key: KeyType,
    #[serde(default = "default_days")]
    pub days: u32,
}

fn default_key() -> KeyType {
    KeyType::EcP256
}
fn default_days() -> u32 {
    397
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BootstrapMode {
    /// Vault generates the intermediate key and a CSR; the key never leaves Vault
    Csr,
    /// uca generates the intermediate key and certificate and imports the bundle
    Import,
}

// The Vault settings below are one set of types for the command line and
// the plan file: each field is a `uca vault` flag (clap) and a `[vault]`
// key (serde) of the same name, so a setting and its default are declared
// once. The doc comments are the flags' help text.

/// How to reach and authenticate to Vault/OpenBao.
#[derive(Clone, Debug, clap::Args, Deserialize)]
pub struct VaultConnection {
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

/// The PKI mount, its intermediate's name and key, and the role that
/// issues: what `uca vault bootstrap` sends and `uca vault commands` prints.
#[derive(Clone, Debug, clap::Args, Deserialize)]
pub struct VaultPki {
    /// The PKI mount path
    #[arg(long, value_name = "PATH", default_value = DEFAULT_MOUNT)]
    #[serde(default = "d_mount")]
    pub mount: String,
    /// The mount's maximum lease TTL
    #[arg(long, value_name = "TTL", default_value = DEFAULT_MAX_TTL)]
    #[serde(default = "d_max_ttl")]
    pub max_ttl: String,
    /// Role to create
    #[arg(long, value_name = "NAME", default_value = DEFAULT_ROLE)]
    #[serde(default = "d_role")]
    pub role: String,
    /// Domain the role may issue for (repeatable; subdomains allowed, the bare domain only with --allow-bare-domains)
    #[arg(long = "allowed-domain", value_name = "DOMAIN")]
    #[serde(default)]
    pub allowed_domains: Vec<String>,
    /// The role's maximum TTL
    #[arg(long, value_name = "TTL", default_value = DEFAULT_ROLE_MAX_TTL)]
    #[serde(default = "d_role_max_ttl")]
    pub role_max_ttl: String,
    /// Common name of the intermediate
    #[arg(long, value_name = "NAME", default_value = DEFAULT_COMMON_NAME)]
    #[serde(default = "d_common_name")]
    pub common_name: String,
    /// Issuing-certificate URL written into Vault's certificates (default ADDR/v1/MOUNT/ca)
    #[arg(long, value_name = "URL")]
    pub issuing_url: Option<String>,
    /// CRL distribution point URL (default ADDR/v1/MOUNT/crl)
    #[arg(long, value_name = "URL")]
    pub crl_url: Option<String>,
    /// The cluster's load-balanced address, e.g. https://vault.internal:8200: the issuing and CRL URLs name it rather than one node (--issuing-url and --crl-url still win)
    #[arg(long, value_name = "URL")]
    pub cluster_addr: Option<String>,
    /// Key type of the intermediate
    #[arg(long, value_enum, default_value_t = DEFAULT_KEY)]
    #[serde(default = "d_key")]
    pub key: KeyType,
}

/// Everything `uca vault bootstrap` does to a mount; in a plan, the
/// `[vault]` section that `uca ceremony` runs after issuing and before
/// sealing (paths there are relative to the plan file: see
/// [`VaultSettings::resolve_paths`]).
#[derive(Clone, Debug, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultSettings {
    #[command(flatten)]
    #[serde(flatten)]
    pub conn: VaultConnection,
    #[command(flatten)]
    #[serde(flatten)]
    pub pki: VaultPki,
    /// csr: Vault makes the intermediate key; import: uca makes it and imports the bundle
    #[arg(long, value_enum, default_value_t = DEFAULT_MODE)]
    #[serde(default = "d_mode")]
    pub mode: BootstrapMode,
    /// Validity of the intermediate in days
    #[arg(long, value_name = "N", default_value_t = DEFAULT_DAYS)]
    #[serde(default = "d_days")]
    pub days: u32,
    /// Narrow the intermediate's name constraints (repeatable; each within the root's)
    #[arg(long, value_name = "SUFFIX_OR_CIDR")]
    #[serde(default)]
    pub permit: Vec<String>,
    /// The root's CRL URL to put into the intermediate (default: the CA's, from uca init --crl-url)
    #[arg(long, value_name = "URL")]
    pub root_crl_url: Option<String>,
    /// Let the role issue IP SANs
    #[arg(long)]
    #[serde(default)]
    pub allow_ip_sans: bool,
    /// Let the role issue wildcard certificates
    #[arg(long)]
    #[serde(default)]
    pub allow_wildcards: bool,
    /// Let the role issue for the allowed domains themselves, not only subdomains
    #[arg(long)]
    #[serde(default)]
    pub allow_bare_domains: bool,
    #[command(flatten)]
    #[serde(flatten)]
    pub acme: VaultAcme,
}

/// The mount's ACME server (`uca vault bootstrap --acme`): who may use it,
/// where clients reach it, and the Kubernetes files that point at it.
#[derive(Clone, Debug, Default, clap::Args, Deserialize)]
pub struct VaultAcme {
    /// Turn on the mount's ACME server for the role, so ACME clients get certificates without a Vault token
    #[arg(long)]
    #[serde(default)]
    pub acme: bool,
    /// Role ACME clients may use (repeatable; must exist; default --role); the first also serves the mount's default directory
    #[arg(long = "acme-role", value_name = "NAME", requires = "acme")]
    #[serde(default)]
    pub acme_roles: Vec<String>,
    /// External account binding: who may open an ACME account [default: always-required]
    #[arg(long, value_enum, value_name = "POLICY", requires = "acme")]
    pub acme_eab: Option<AcmeEab>,
    /// Address ACME clients reach Vault by, e.g. https://vault.internal:8200 (default --cluster-addr, else --addr)
    #[arg(long, value_name = "URL", requires = "acme")]
    pub acme_base_url: Option<String>,
    /// Write a cert-manager ClusterIssuer (ACME) and a trust bundle ConfigMap of the root into DIR
    #[arg(long, value_name = "DIR", requires = "acme")]
    pub k8s_out: Option<PathBuf>,
}

/// Who may open an ACME account: Vault's `eab_policy`. External account
/// binding ties each account to a key the operator made for its directory
/// (`MOUNT/roles/ROLE/acme/new-eab`), so reaching the directory is not
/// enough.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AcmeEab {
    /// Every account, old or new, needs a key made for its directory (MOUNT/roles/ROLE/acme/new-eab)
    #[default]
    AlwaysRequired,
    /// New accounts need a key; accounts opened before without one keep working
    NewAccountRequired,
    /// Anyone who reaches the directory and passes a challenge for an allowed name
    NotRequired,
}

impl AcmeEab {
    /// The policy's name in Vault's `config/acme`.
    pub fn as_vault(self) -> &'static str {
        match self {
            AcmeEab::AlwaysRequired => "always-required",
            AcmeEab::NewAccountRequired => "new-account-required",
            AcmeEab::NotRequired => "not-required",
        }
    }
}

impl VaultSettings {
    /// Makes the connection's relative paths relative to `base` (a plan
    /// file's directory), as every path in a plan is.
    pub fn resolve_paths(&mut self, base: &std::path::Path) {
        let conn = &mut self.conn;
        for path in [
            &mut conn.cacert,
            &mut conn.client_cert,
            &mut conn.client_key,
            &mut conn.token_file,
            &mut self.acme.k8s_out,
        ]
        .into_iter()
        .flatten()
        {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
    }
}

pub const DEFAULT_MOUNT: &str = "pki_int";
pub const DEFAULT_MAX_TTL: &str = "8760h";
pub const DEFAULT_ROLE: &str = "default";
pub const DEFAULT_ROLE_MAX_TTL: &str = "720h";
pub const DEFAULT_COMMON_NAME: &str = "Vault Intermediate CA";
pub const DEFAULT_KEY: KeyType = KeyType::EcP256;
pub const DEFAULT_MODE: BootstrapMode = BootstrapMode::Csr;
pub const DEFAULT_DAYS: u32 = 1825;

// serde wants functions for defaults; each returns its constant above.
fn d_mount() -> String {
    DEFAULT_MOUNT.into()
}
fn d_max_ttl() -> String {
    DEFAULT_MAX_TTL.into()
}
fn d_role() -> String {
    DEFAULT_ROLE.into()
}
fn d_role_max_ttl() -> String {
    DEFAULT_ROLE_MAX_TTL.into()
}
fn d_common_name() -> String {
    DEFAULT_COMMON_NAME.into()
}
fn d_key() -> KeyType {
    DEFAULT_KEY
}
fn d_mode() -> BootstrapMode {
    DEFAULT_MODE
}
fn d_days() -> u32 {
    DEFAULT_DAYS
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        vault: VaultSettings,
    }

    /// A `[vault]` section and the command line, given the same two
    /// required settings, agree on every other one: the defaults are one.
    #[test]
    fn plan_and_command_line_defaults_are_the_same() {
        let from_cli = Cli::try_parse_from([
            "uca",
            "--addr",
            "https://vault.internal:8200",
            "--allowed-domain",
            "svc.internal",
        ])
        .unwrap()
        .vault;
        let from_plan: VaultSettings = toml::from_str(
            "addr = \"https://vault.internal:8200\"\nallowed_domains = [\"svc.internal\"]\n",
        )
        .unwrap();
        assert_eq!(format!("{from_cli:?}"), format!("{from_plan:?}"));
        assert_eq!(from_plan.pki.mount, DEFAULT_MOUNT);
        assert_eq!(from_plan.days, DEFAULT_DAYS);
    }

    #[test]
    fn an_unknown_vault_key_is_refused_by_name() {
        let e = toml::from_str::<VaultSettings>(
            "addr = \"https://v:8200\"\nallowed_domains = [\"svc.internal\"]\nmont = \"x\"\n",
        )
        .unwrap_err();
        assert!(e.message().contains("unknown field `mont`"), "{e}");
    }

    #[test]
    fn relative_paths_are_taken_from_the_plan_directory() {
        let mut v: VaultSettings = toml::from_str(
            "addr = \"https://v:8200\"\ncacert = \"ca.pem\"\ntoken_file = \"/abs/token\"\n",
        )
        .unwrap();
        v.resolve_paths(std::path::Path::new("/plans"));
        assert_eq!(v.conn.cacert.unwrap(), PathBuf::from("/plans/ca.pem"));
        assert_eq!(v.conn.token_file.unwrap(), PathBuf::from("/abs/token"));
    }
}
