//! `uca vault bootstrap`: turn the sealed-to-be root into the parent of a
//! Vault/OpenBao PKI intermediate, step by step, checking what Vault did at
//! each step rather than assuming it.

use std::path::PathBuf;

use serde_json::{json, Value};

use super::client::{vault_errors, Connection, VaultClient};
use crate::ca::issuance::Key;
pub use crate::ca::sections::{
    BootstrapMode, VaultSection, DEFAULT_COMMON_NAME, DEFAULT_DAYS, DEFAULT_MAX_TTL, DEFAULT_MOUNT,
    DEFAULT_ROLE, DEFAULT_ROLE_MAX_TTL,
};
use crate::ca::signing::{self, SignOptions};
use crate::ca::store::{CaStore, Signer};
use crate::pki::constraints::NameConstraints;
use crate::pki::keys::{KeyType, PrivateKey};
use crate::pki::names::{self, San};
use crate::pki::profile::Profile;
use crate::pki::x509;
use crate::support::error::{Error, Result};

pub struct BootstrapRequest {
    pub dir: PathBuf,
    pub conn: Connection,
    pub mount: String,
    pub max_ttl: String,
    pub role: String,
    pub allowed_domains: Vec<String>,
    pub role_max_ttl: String,
    pub allow_ip_sans: bool,
    pub allow_wildcards: bool,
    pub allow_bare_domains: bool,
    pub issuing_url: Option<String>,
    pub crl_url: Option<String>,
    pub mode: BootstrapMode,
    pub common_name: String,
    pub key: KeyType,
    pub days: u32,
    pub permits: Vec<String>,
    /// The root's CRL URL for the intermediate (else the CA's `crl_url`).
    pub root_crl_url: Option<String>,
    pub force: bool,
    pub passphrase_file: Option<PathBuf>,
}

impl VaultSection {
    /// The request this section describes, with paths resolved against
    /// `base` (the plan's directory) and the CA directory `dir`.
    pub fn to_request(&self, base: &std::path::Path, dir: PathBuf) -> BootstrapRequest {
        let rel = |p: &Option<PathBuf>| {
            p.as_ref().map(|p| {
                if p.is_absolute() {
                    p.clone()
                } else {
                    base.join(p)
                }
            })
        };
        BootstrapRequest {
            dir,
            conn: Connection {
                addr: self.addr.clone(),
                cacert: rel(&self.cacert),
                client_cert: rel(&self.client_cert),
                client_key: rel(&self.client_key),
                token_file: rel(&self.token_file),
                namespace: self.namespace.clone(),
            },
            mount: self.mount.clone(),
            max_ttl: self.max_ttl.clone(),
            role: self.role.clone(),
            allowed_domains: self.allowed_domains.clone(),
            role_max_ttl: self.role_max_ttl.clone(),
            allow_ip_sans: self.allow_ip_sans,
            allow_wildcards: self.allow_wildcards,
            allow_bare_domains: self.allow_bare_domains,
            issuing_url: self.issuing_url.clone(),
            crl_url: self.crl_url.clone(),
            mode: self.mode,
            common_name: self.common_name.clone(),
            key: self.key,
            days: self.days,
            permits: self.permit.clone(),
            root_crl_url: None,
            force: false,
            passphrase_file: None,
        }
    }
}

/// What a bootstrap did to the mount's issuer.
pub struct BootstrapOutcome {
    /// The serial of the intermediate this run signed; `None` when the
    /// mount's intermediate from this root was kept.
    pub new_intermediate: Option<String>,
}

/// The mount, role and intermediate settings `uca vault bootstrap` sends to
/// Vault and `uca vault commands` prints for a shell, validated the same
/// way for both.
pub struct RoleSettings<'a> {
    pub mount: &'a str,
    pub max_ttl: &'a str,
    pub role: &'a str,
    pub allowed_domains: &'a [String],
    pub role_max_ttl: &'a str,
    pub issuing_url: Option<&'a str>,
    pub crl_url: Option<&'a str>,
    pub common_name: &'a str,
}

impl RoleSettings<'_> {
    /// Validates names and durations that Vault would otherwise reject
    /// half-way (or a shell would misread): mount and role are path-safe
    /// identifiers, every allowed domain a host name.
    pub fn validate(&self) -> Result<()> {
        validate_mount(self.mount)?;
        validate_role_name(self.role)?;
        for (flag, ttl) in [
            ("--max-ttl", self.max_ttl),
            ("--role-max-ttl", self.role_max_ttl),
        ] {
            parse_ttl(ttl).ok_or_else(|| {
                Error::invalid(flag, ttl, "expected a duration like 8760h, 30d or 3600s")
            })?;
        }
        if parse_ttl(self.role_max_ttl) > parse_ttl(self.max_ttl) {
            return Err(Error::invalid(
                "--role-max-ttl",
                self.role_max_ttl,
                format!("longer than the mount's --max-ttl {}", self.max_ttl),
            ));
        }
        if self.allowed_domains.is_empty() {
            return Err(Error::msg("give the role at least one --allowed-domain (e.g. svc.internal): a role without one would refuse everything"));
        }
        for d in self.allowed_domains {
            allowed_domain(d)?;
        }
        for (flag, url) in [
            ("--issuing-url", self.issuing_url),
            ("--crl-url", self.crl_url),
        ] {
            if let Some(u) = url {
                names::uri(u)?;
                if !(u.starts_with("http://") || u.starts_with("https://")) {
                    return Err(Error::invalid(
                        flag,
                        u,
                        "expected an http:// or https:// URL",
                    ));
                }
            }
        }
        crate::pki::names::validate_ca_name(self.common_name)
    }
}

fn validate_mount(mount: &str) -> Result<()> {
    let mount_ok = !mount.is_empty()
        && !mount.starts_with('/')
        && !mount.ends_with('/')
        && !mount.contains("//")
        && mount
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '/'));
    if !mount_ok || mount.starts_with("sys") {
        return Err(Error::invalid(
            "--mount",
            names::printable(mount),
            "expected a path like pki_int (letters, digits, '_', '-', '/')",
        ));
    }
    Ok(())
}

fn validate_role_name(role: &str) -> Result<()> {
    if role.is_empty()
        || !role
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
    {
        return Err(Error::invalid(
            "--role",
            names::printable(role),
            "expected a name like web (letters, digits, '_', '-')",
        ));
    }
    Ok(())
}

/// An `--allowed-domain`: a host name. No wildcard: the role is created
/// with allow_glob_domains=false, where Vault would take `*.x` literally,
/// and allow_subdomains=true already covers every name below the domain.
pub fn allowed_domain(d: &str) -> Result<String> {
    names::dns_name(d, false).map_err(|e| match e {
        Error::Invalid { expected, .. } => {
            Error::invalid("--allowed-domain", names::printable(d), expected)
        }
        other => other,
    })
}

impl BootstrapRequest {
    pub fn role_settings(&self) -> RoleSettings<'_> {
        RoleSettings {
            mount: &self.mount,
            max_ttl: &self.max_ttl,
            role: &self.role,
            allowed_domains: &self.allowed_domains,
            role_max_ttl: &self.role_max_ttl,
            issuing_url: self.issuing_url.as_deref(),
            crl_url: self.crl_url.as_deref(),
            common_name: &self.common_name,
        }
    }
}

/// Validates everything bootstrap sends to Vault, and everything signing
/// the intermediate will check, against the root's constraints, path
/// length and expiry, before Vault is changed at all.
pub fn validate(
    req: &BootstrapRequest,
    constraints: &NameConstraints,
    root_pathlen: Option<u8>,
    root_not_after: time::OffsetDateTime,
) -> Result<()> {
    req.role_settings().validate()?;
    if u64::from(req.days) * 86_400 < parse_ttl(&req.max_ttl).unwrap_or(0) {
        return Err(Error::invalid(
            "--max-ttl",
            req.max_ttl.as_str(),
            format!(
                "longer than the intermediate's validity of {} days",
                req.days
            ),
        ));
    }
    for d in &req.allowed_domains {
        constraints.check(&San::Dns(allowed_domain(d)?))?;
    }
    if root_pathlen == Some(0) {
        return Err(Error::msg("the root has path length 0, so it cannot sign Vault's intermediate; create the root with --pathlen 1 or more"));
    }
    crate::pki::profile::Validity::days_from_now(req.days)?.within(root_not_after, req.days)?;
    signing::intermediate_constraints(constraints, &req.permits)?;
    Ok(())
}

/// Seconds in a Vault duration (`90s`, `15m`, `8760h`, `30d`, or plain seconds).
pub fn parse_ttl(s: &str) -> Option<u64> {
    let (num, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: u64 = num.parse().ok().filter(|n| *n > 0)?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// Vault's `key_type`/`key_bits` for a uca key type.
pub fn vault_key_type(k: KeyType) -> (&'static str, u32) {
    match k {
        KeyType::EcP256 => ("ec", 256),
        KeyType::EcP384 => ("ec", 384),
        KeyType::Ed25519 => ("ed25519", 0),
        KeyType::Rsa2048 => ("rsa", 2048),
        KeyType::Rsa3072 => ("rsa", 3072),
        KeyType::Rsa4096 => ("rsa", 4096),
    }
}

fn data<'a>(v: &'a Value, field: &str) -> Option<&'a Value> {
    v.get("data").and_then(|d| d.get(field))
}

/// Whether `pem` (Vault's current CA) was issued by our root.
fn issued_by_root(pem_text: &str, store: &CaStore) -> Result<(bool, String)> {
    let block = pem::parse(pem_text)
        .map_err(|e| Error::msg(format!("Vault returned an unreadable CA certificate: {e}")))?;
    let cert = x509::parse(block.contents()).map_err(Error::msg)?;
    let root = x509::parse(&store.cert_der).map_err(Error::msg)?;
    let ours = cert.issuer().as_raw() == root.subject().as_raw()
        && cert.verify_signature(Some(root.public_key())).is_ok();
    Ok((
        ours,
        format!("{} (issued by {})", cert.subject(), cert.issuer()),
    ))
}

/// Issues one certificate through the new role and verifies that it chains
/// to the root; then revokes it, since it was only a probe.
fn probe(
    client: &VaultClient,
    req: &BootstrapRequest,
    store: &CaStore,
    say: &mut dyn FnMut(&str),
) -> Result<()> {
    let domain = &req.allowed_domains[0];
    let name = format!("uca-probe.{domain}");
    let v = client.write(
        &format!("{}/issue/{}", req.mount, req.role),
        &json!({"common_name": name, "ttl": "5m"}),
        "issue the probe certificate through the new role",
    )?;
    let leaf_pem = data(&v, "certificate")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::msg("Vault's issue response has no certificate"))?;
    let mut chain_pems: Vec<String> = data(&v, "ca_chain")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|c| c.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if chain_pems.is_empty() {
        if let Some(ca) = data(&v, "issuing_ca").and_then(Value::as_str) {
            chain_pems.push(ca.to_string());
        }
    }
    let leaf_der = pem::parse(leaf_pem)
        .map_err(|e| Error::msg(format!("Vault's probe certificate is not PEM: {e}")))?
        .into_contents();
    let mut chain = vec![leaf_der];
    chain.extend(
        chain_pems
            .iter()
            .filter_map(|p| pem::parse(p).ok().map(|b| b.into_contents()))
            .filter(|d| *d != store.cert_der),
    );
    crate::pki::verify::verify_der(
        &chain,
        std::slice::from_ref(&store.cert_der),
        &crate::pki::verify::Purpose::Server(Some(name.clone())),
    )
    .map_err(|e| {
        Error::msg(format!(
            "the probe certificate Vault issued does not chain to the root: {e}; the role issues from another issuer than the intermediate uca signed (see {}/config/issuers)",
            req.mount
        ))
    })?;
    say(&format!(
        "issued a probe certificate for {name} through role {} and verified it chains to {}",
        req.role, store.name
    ));
    if let Some(serial) = data(&v, "serial_number").and_then(Value::as_str) {
        let (status, body) = client.post(
            &format!("{}/revoke", req.mount),
            &json!({"serial_number": serial}),
        )?;
        if (200..300).contains(&status) {
            say(&format!("revoked the probe certificate {serial}"));
        } else {
            say(&format!(
                "note: could not revoke the probe certificate {serial}: {}",
                vault_errors(&body)
            ));
        }
    }
    Ok(())
}

pub fn run(req: &BootstrapRequest, say: &mut dyn FnMut(&str)) -> Result<BootstrapOutcome> {
    let store = CaStore::open(&req.dir)?;
    validate(req, &store.constraints, store.pathlen, store.not_after)?;
    // Unlocked only when a new intermediate is signed: a no-op second run
    // asks for no passphrase.
    let key = Key::Unlock(req.passphrase_file.as_ref());
    execute(req, &store, key, say)
}

/// What bootstrap needs before it changes anything, and what a ceremony
/// checks before it makes a root: Vault answers, is initialised and
/// unsealed, the namespace exists and the token may list its mounts (a bad
/// token gets its own 403 error). Returns the line to report and the mounts.
pub fn preflight(client: &VaultClient) -> Result<(String, Value)> {
    // Is Vault there, initialised and unsealed?
    let (status, health) = client.get("sys/health")?;
    match status {
        200 | 429 | 472 | 473 => {}
        501 => {
            return Err(Error::msg(format!(
                "Vault at {} is not initialised: run `bao operator init` first",
                client.addr()
            )))
        }
        503 => {
            return Err(Error::msg(format!(
                "Vault at {} is sealed: unseal it first",
                client.addr()
            )))
        }
        other => {
            return Err(Error::msg(format!(
                "Vault at {} answered {other} to a health check: {}",
                client.addr(),
                vault_errors(&health)
            )))
        }
    }
    let version = health
        .get("version")
        .and_then(Value::as_str)
        .unwrap_or("unknown version")
        .to_string();
    let within = client
        .namespace()
        .map(|ns| format!("; working in namespace {ns}"))
        .unwrap_or_default();
    let connected = format!(
        "connected to {} ({version}), initialised and unsealed{within}",
        client.addr()
    );

    // The namespace and the token: listing the mounts needs both.
    let mounts = match client.read("sys/mounts", "list secrets engines")? {
        Some(m) => m,
        None => match client.namespace() {
            // Vault answers 404 "namespace not found" for every path in it.
            Some(ns) => {
                return Err(Error::msg(format!(
                    "Vault at {} has no namespace '{ns}': create it first (bao namespace create {ns}) or fix --namespace",
                    client.addr()
                )))
            }
            None => Value::Null,
        },
    };
    Ok((connected, mounts))
}

/// Runs a validated bootstrap against Vault. Every step checks its own
/// state and completes what is missing, so a bootstrap that was stopped
/// half-way converges when run again: the mount, the intermediate (signed
/// only when the mount has none from this root, or with --force), the URLs,
/// the role and the probe.
pub fn execute(
    req: &BootstrapRequest,
    store: &CaStore,
    source: Key<'_>,
    say: &mut dyn FnMut(&str),
) -> Result<BootstrapOutcome> {
    let (client, clustered) = active_node(VaultClient::connect(&req.conn)?, say)?;
    let (connected, mounts) = preflight(&client)?;
    say(&connected);
    let state = inspect_mount(&client, req, store, &mounts)?;
    let sign_new = req.force || !matches!(state, MountState::Ours(_));
    // A sealed root can still complete URLs, role and probe for the
    // intermediate it signed before the seal, but never sign a new one:
    // refuse that before anything in Vault changes.
    if sign_new && matches!(source, Key::Unlock(_)) {
        store.ensure_unsealed()?;
    }
    ensure_mount(&client, req, store, &state, say)?;
    let serial = match state {
        MountState::Ours(who) if !req.force => {
            say(&format!(
                "mount {} already has an intermediate from this root: {who}; kept (--force adds a new one)",
                req.mount
            ));
            None
        }
        MountState::Ours(_) => {
            say(&format!(
                "mount {} already has an intermediate from this root; --force: adding a new one",
                req.mount
            ));
            Some(install_intermediate(&client, req, store, source, say)?)
        }
        MountState::Absent | MountState::Empty => {
            Some(install_intermediate(&client, req, store, source, say)?)
        }
    };
    configure_urls(&client, req, clustered, say)?;
    ensure_role(&client, req, say)?;
    probe(&client, req, store, say)?;
    Ok(BootstrapOutcome {
        new_intermediate: serial,
    })
}

/// The node bootstrap talks to. A standby answers reads from state that
/// lags the active node (a mount just enabled is not there yet), so
/// bootstrap moves to the active node the standby names in sys/leader,
/// with the same TLS settings, client certificate, token and namespace;
/// the active node's certificate must name the address it advertises. If
/// the active node cannot be used, bootstrap stays on the given node and
/// makes every request wait until that node has applied our last write.
/// A node that is not part of an HA cluster, or that is not unsealed
/// (preflight says which), is used as given. Also says whether the node
/// is part of an HA cluster.
fn active_node(client: VaultClient, say: &mut dyn FnMut(&str)) -> Result<(VaultClient, bool)> {
    let (status, leader) = client.get("sys/leader")?;
    let clustered = status == 200 && leader.get("ha_enabled") == Some(&Value::Bool(true));
    let standby = clustered && leader.get("is_self") == Some(&Value::Bool(false));
    if !standby {
        return Ok((client, clustered));
    }
    let active = leader
        .get("leader_address")
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim_end_matches('/');
    if active.is_empty() {
        return Err(Error::msg(format!(
            "Vault at {} is a standby and names no active node (an election may be under way): try again shortly, or pass the active node's address as --addr",
            client.addr()
        )));
    }
    let active_text = names::printable(active);
    match usable_active_node(&client, active) {
        Ok(node) => {
            say(&format!(
                "node {} is a standby; bootstrapping through the active node {active_text}",
                client.addr()
            ));
            Ok((node, true))
        }
        Err(why) => {
            say(&format!(
                "node {} is a standby and the active node {active_text} cannot be used ({why}); bootstrapping through {} and making each step wait until it has applied the previous write",
                client.addr(),
                client.addr()
            ));
            Ok((client.reading_own_writes(), true))
        }
    }
}

/// The active node at `active`, reached with `client`'s settings, if it
/// answers and says it is the active node.
fn usable_active_node(client: &VaultClient, active: &str) -> Result<VaultClient> {
    let scheme = |a: &str| a.split_once("://").map(|(s, _)| s.to_string());
    let well_formed = active.chars().all(|c| c.is_ascii_graphic());
    if !well_formed || scheme(active).is_none() || scheme(active) != scheme(client.addr()) {
        return Err(Error::msg(format!(
            "its address is not a {} URL",
            scheme(client.addr()).unwrap_or_default()
        )));
    }
    let node = client.for_node(active);
    let (status, leader) = node.get("sys/leader")?;
    if status == 200 && leader.get("is_self") == Some(&Value::Bool(true)) {
        Ok(node)
    } else {
        Err(Error::msg(format!(
            "it answered HTTP {status} and does not say it is the active node"
        )))
    }
}

/// What the mount holds before bootstrap changes anything.
enum MountState {
    Absent,
    /// A PKI mount without a CA (a bootstrap stopped before the import).
    Empty,
    /// A PKI mount whose default issuer this root signed: its description.
    Ours(String),
}

/// Reads the mount's state, changing nothing. A mount of another type, or
/// one holding a CA that does not chain to this root, is refused.
fn inspect_mount(
    client: &VaultClient,
    req: &BootstrapRequest,
    store: &CaStore,
    mounts: &Value,
) -> Result<MountState> {
    let key = format!("{}/", req.mount);
    let mount = mounts
        .get("data")
        .and_then(|d| d.get(&key))
        .or_else(|| mounts.get(&key));
    match mount.and_then(|m| m.get("type")).and_then(Value::as_str) {
        None => Ok(MountState::Absent),
        Some("pki") => {
            let pem_text = current_ca(client, &req.mount)?;
            if pem_text.trim().is_empty() {
                return Ok(MountState::Empty);
            }
            let (ours, who) = issued_by_root(&pem_text, store)?;
            if !ours {
                return Err(Error::msg(format!(
                    "the mount {} already has a different CA: {who}, which does not chain to {}; choose another --mount or disable that one first",
                    req.mount, store.name
                )));
            }
            Ok(MountState::Ours(who))
        }
        Some(other) => Err(Error::msg(format!(
            "the mount {} exists but is a '{other}' secrets engine, not pki",
            req.mount
        ))),
    }
}

/// The mount enabled as PKI (when absent) and tuned.
fn ensure_mount(
    client: &VaultClient,
    req: &BootstrapRequest,
    store: &CaStore,
    state: &MountState,
    say: &mut dyn FnMut(&str),
) -> Result<()> {
    match state {
        MountState::Absent => {
            client.write(
                &format!("sys/mounts/{}", req.mount),
                &json!({"type": "pki", "description": format!("intermediate CA under {}", store.name), "config": {"max_lease_ttl": req.max_ttl}}),
                "enable the PKI secrets engine",
            )?;
            say(&format!("enabled the PKI secrets engine at {}", req.mount));
        }
        MountState::Empty => say(&format!(
            "mount {} exists as a PKI mount without a CA",
            req.mount
        )),
        MountState::Ours(_) => {}
    }
    client.write(
        &format!("sys/mounts/{}/tune", req.mount),
        &json!({"max_lease_ttl": req.max_ttl}),
        "tune the mount",
    )?;
    say(&format!("set the mount's max lease TTL to {}", req.max_ttl));
    Ok(())
}

/// The PEM of the mount's default issuer, empty when it has none. An
/// empty PKI mount answers 404 in Vault and 400 "no default issuer
/// currently configured" in OpenBao 2.x: both mean "no CA yet".
fn current_ca(client: &VaultClient, mount: &str) -> Result<String> {
    let path = format!("{mount}/cert/ca");
    let (status, v) = client.get(&path)?;
    let no_issuer = status == 400 && vault_errors(&v).contains("no default issuer");
    match status {
        200..=299 => Ok(data(&v, "certificate")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()),
        404 => Ok(String::new()),
        _ if no_issuer => Ok(String::new()),
        _ => Err(Error::msg(format!(
            "Vault refused to read the mount's CA (HTTP {status} on /v1/{path}): {}",
            vault_errors(&v)
        ))),
    }
}

/// Signs a new intermediate for the mount (from Vault's CSR, or with a key
/// made here and imported), imports it with the root, names it after its
/// serial and makes it the default issuer. Returns the serial.
fn install_intermediate(
    client: &VaultClient,
    req: &BootstrapRequest,
    store: &CaStore,
    source: Key<'_>,
    say: &mut dyn FnMut(&str),
) -> Result<String> {
    // The intermediate: from Vault's CSR, or made here and imported.
    let key = source.take(store)?;
    let (signer, lock) = key.parts();
    let opts = SignOptions {
        profile: Profile::Both,
        intermediate: true,
        pathlen: 0,
        permits: req.permits.clone(),
        sans: Vec::new(),
        days: Some(req.days),
        crl_url: req.root_crl_url.clone(),
    };
    let (int_der, serial, import_key) = match req.mode {
        BootstrapMode::Csr => {
            let (kt, bits) = vault_key_type(req.key);
            let v = client.write(
                &format!("{}/intermediate/generate/internal", req.mount),
                &json!({"common_name": req.common_name, "key_type": kt, "key_bits": bits}),
                "generate the intermediate key and CSR",
            )?;
            let csr_pem = data(&v, "csr")
                .and_then(Value::as_str)
                .ok_or_else(|| Error::msg("Vault's answer has no CSR"))?;
            say(&format!(
                "Vault generated the intermediate key ({kt} {bits}) and a CSR for CN={}",
                req.common_name
            ));
            let der = pem::parse(csr_pem)
                .map_err(|e| Error::msg(format!("Vault's CSR is not PEM: {e}")))?
                .into_contents();
            let (d, s) = sign_csr(store, signer, lock, &der, &opts)?;
            (d, s, None)
        }
        BootstrapMode::Import => {
            let (key, pair) = req.key.generate_with_pair()?;
            let mut params = rcgen::CertificateParams::default();
            params.distinguished_name = crate::pki::profile::subject_cn(&req.common_name);
            let csr = params
                .serialize_request(&pair)
                .map_err(|e| Error::msg(format!("cannot make the intermediate CSR: {e}")))?;
            let (d, s) = sign_csr(store, signer, lock, csr.der(), &opts)?;
            say(&format!("made the intermediate key ({}) here", req.key));
            (d, s, Some(key))
        }
    };
    say(&format!(
        "signed the intermediate CN={} (pathlen 0, serial {serial}) with {}",
        req.common_name, store.name
    ));
    let issuer = import_intermediate(client, req, store, &int_der, import_key, say)?;
    make_default_issuer(client, req, &issuer, &serial, say)?;
    Ok(serial)
}

/// Imports the signed intermediate with the root (and, when made here, its
/// key); returns the id of the issuer Vault mapped to a key.
fn import_intermediate(
    client: &VaultClient,
    req: &BootstrapRequest,
    store: &CaStore,
    int_der: &[u8],
    import_key: Option<PrivateKey>,
    say: &mut dyn FnMut(&str),
) -> Result<String> {
    let int_pem = x509::pem_certificate(int_der);
    let root_pem = store.cert_pem();
    let v = match &import_key {
        None => client.write(
            &format!("{}/intermediate/set-signed", req.mount),
            &json!({"certificate": format!("{int_pem}{root_pem}")}),
            "import the signed intermediate (Vault refused the chain)",
        )?,
        Some(key) => client.write(
            &format!("{}/config/ca", req.mount),
            &json!({"pem_bundle": format!("{}{int_pem}{root_pem}", key.to_pem().as_str())}),
            "import the intermediate bundle (Vault refused the chain)",
        )?,
    };
    drop(import_key);
    // Vault must have mapped the new issuer to its key.
    let mapping = data(&v, "mapping")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mapped: Vec<(&String, &Value)> = mapping
        .iter()
        .filter(|(_, k)| k.as_str().is_some_and(|s| !s.is_empty()))
        .collect();
    if mapped.is_empty() {
        return Err(Error::msg(format!(
            "Vault imported the chain but mapped no issuer to a key (mapping: {}): the intermediate is unusable",
            Value::Object(mapping.clone())
        )));
    }
    say(&format!(
        "imported intermediate + root; issuer {} is mapped to key {}",
        mapped[0].0,
        mapped[0].1.as_str().unwrap_or("")
    ));
    Ok(mapped[0].0.clone())
}

/// Names the new issuer after its serial and makes it the mount's default.
fn make_default_issuer(
    client: &VaultClient,
    req: &BootstrapRequest,
    issuer: &str,
    serial: &str,
    say: &mut dyn FnMut(&str),
) -> Result<()> {
    // Named after the serial in uca's ledger and sealed manifest, so Vault's
    // issuer list can be matched to them; leaves may never outlive it.
    let issuer_name = issuer_name_for(serial);
    client.write(
        &format!("{}/issuer/{issuer}", req.mount),
        &json!({"issuer_name": issuer_name, "leaf_not_after_behavior": "err"}),
        "name the new issuer",
    )?;
    say(&format!(
        "named issuer {issuer} '{issuer_name}' (leaves may not outlive it)"
    ));
    let issuers = client.read(
        &format!("{}/config/issuers", req.mount),
        "read the default issuer",
    )?;
    let default = issuers
        .as_ref()
        .and_then(|v| data(v, "default"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if default != issuer {
        client.write(
            &format!("{}/config/issuers", req.mount),
            &json!({"default": issuer}),
            "set the default issuer",
        )?;
        say(&format!("set the default issuer to {issuer}"));
    } else {
        say(&format!("the default issuer is {issuer}"));
    }
    Ok(())
}

/// The issuing and CRL URLs, written before the first certificate. By
/// default they name the node bootstrap talks to, which in a cluster is
/// one node among several: said, with the options that name all of them.
fn configure_urls(
    client: &VaultClient,
    req: &BootstrapRequest,
    clustered: bool,
    say: &mut dyn FnMut(&str),
) -> Result<()> {
    let base = format!("{}/v1/{}", client.addr(), req.mount);
    let issuing = req
        .issuing_url
        .clone()
        .unwrap_or_else(|| format!("{base}/ca"));
    let crl = req.crl_url.clone().unwrap_or_else(|| format!("{base}/crl"));
    client.write(
        &format!("{}/config/urls", req.mount),
        &json!({"issuing_certificates": [issuing], "crl_distribution_points": [crl]}),
        "configure the issuing and CRL URLs",
    )?;
    say(&format!("configured URLs: issuing {issuing}, CRL {crl}"));
    if clustered && (req.issuing_url.is_none() || req.crl_url.is_none()) {
        say(&format!(
            "note: in an HA cluster these URLs should name every node, not {}: pass --issuing-url and --crl-url with a name all nodes answer to (a --host name of uca vault tls)",
            client.addr()
        ));
    }
    Ok(())
}

/// The role, written whole each time: a run after an interruption, or
/// with another --role, leaves the role exactly as asked.
fn ensure_role(
    client: &VaultClient,
    req: &BootstrapRequest,
    say: &mut dyn FnMut(&str),
) -> Result<()> {
    let (kt, bits) = vault_key_type(KeyType::EcP256);
    client.write(
        &format!("{}/roles/{}", req.mount, req.role),
        &json!({
            "allowed_domains": req.allowed_domains,
            "allow_subdomains": true,
            "allow_bare_domains": req.allow_bare_domains,
            "allow_glob_domains": false,
            "allow_wildcard_certificates": req.allow_wildcards,
            "allow_ip_sans": req.allow_ip_sans,
            "allow_localhost": false,
            "allow_any_name": false,
            "enforce_hostnames": true,
            "server_flag": true,
            "client_flag": true,
            "key_type": kt,
            "key_bits": bits,
            "max_ttl": req.role_max_ttl,
            "ttl": req.role_max_ttl,
            "no_store": false,
        }),
        "create the role",
    )?;
    say(&format!(
        "role {} set: subdomains of {} only; IP SANs {}, wildcards {}, bare domains {}; max TTL {}",
        req.role,
        req.allowed_domains.join(", "),
        if req.allow_ip_sans {
            "allowed"
        } else {
            "refused"
        },
        if req.allow_wildcards {
            "allowed"
        } else {
            "refused"
        },
        if req.allow_bare_domains {
            "allowed"
        } else {
            "refused"
        },
        req.role_max_ttl
    ));
    Ok(())
}

/// `uca-` and the first 16 hex digits of the intermediate's serial: unique
/// per mount in practice, and within Vault's rules for issuer names.
fn issuer_name_for(serial: &str) -> String {
    let hex: String = serial
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(16)
        .collect();
    format!("uca-{}", hex.to_ascii_lowercase())
}

fn sign_csr(
    store: &CaStore,
    signer: &Signer,
    lock: &crate::ca::ledger::LedgerLock,
    der: &[u8],
    opts: &SignOptions,
) -> Result<(Vec<u8>, String)> {
    let csr = signing::parse_csr(der)
        .map_err(|why| Error::msg(format!("the intermediate CSR is unusable: {why}")))?;
    let prepared = signing::prepare(store, &csr, "Vault's intermediate CSR", opts)?;
    signing::sign_prepared(store, signer, lock, prepared, None, |_| Ok(()))
}
