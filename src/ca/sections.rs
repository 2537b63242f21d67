//! The settings shapes of a plan file's `[registry]` and `[vault]`
//! sections, which `uca registry` and `uca vault bootstrap` share with it:
//! data and their defaults only. The commands act on them.

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

pub const DEFAULT_MOUNT: &str = "pki_int";
pub const DEFAULT_MAX_TTL: &str = "8760h";
pub const DEFAULT_ROLE: &str = "default";
pub const DEFAULT_ROLE_MAX_TTL: &str = "720h";
pub const DEFAULT_COMMON_NAME: &str = "Vault Intermediate CA";
pub const DEFAULT_DAYS: u32 = 1825;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BootstrapMode {
    /// Vault generates the intermediate key and a CSR; the key never leaves Vault
    Csr,
    /// uca generates the intermediate key and certificate and imports the bundle
    Import,
}

/// `[vault]` in a plan: the same settings as `uca vault bootstrap`, run by
/// `uca ceremony` after issuing and before sealing. Paths are relative to
/// the plan file.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultSection {
    pub addr: String,
    pub cacert: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    pub token_file: Option<PathBuf>,
    pub namespace: Option<String>,
    #[serde(default = "d_mount")]
    pub mount: String,
    #[serde(default = "d_max_ttl")]
    pub max_ttl: String,
    #[serde(default = "d_role")]
    pub role: String,
    #[serde(default)]
    pub allowed_domains: Vec<String>,
    #[serde(default = "d_role_max_ttl")]
    pub role_max_ttl: String,
    #[serde(default)]
    pub allow_ip_sans: bool,
    #[serde(default)]
    pub allow_wildcards: bool,
    #[serde(default)]
    pub allow_bare_domains: bool,
    pub issuing_url: Option<String>,
    pub crl_url: Option<String>,
    #[serde(default = "d_mode")]
    pub mode: BootstrapMode,
    #[serde(default = "d_common_name")]
    pub common_name: String,
    #[serde(default = "d_key")]
    pub key: KeyType,
    #[serde(default = "d_days")]
    pub days: u32,
    #[serde(default)]
    pub permit: Vec<String>,
    /// The cluster's load-balanced address for the issuing and CRL URLs.
    pub cluster_addr: Option<String>,
}

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
fn d_mode() -> BootstrapMode {
    BootstrapMode::Csr
}
fn d_common_name() -> String {
    DEFAULT_COMMON_NAME.into()
}
fn d_key() -> KeyType {
    KeyType::EcP256
}
fn d_days() -> u32 {
    DEFAULT_DAYS
}
