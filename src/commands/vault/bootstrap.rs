//! `uca vault bootstrap`: turn the sealed-to-be root into the parent of a
//! Vault/OpenBao PKI intermediate, step by step, checking what Vault did at
//! each step rather than assuming it.

use std::path::PathBuf;

use serde_json::{json, Value};

use super::acme;
use super::client::{vault_errors, VaultClient};
use super::pending;
use crate::ca::issuance::Key;
use crate::ca::sections::{BootstrapMode, VaultPki, VaultSettings};
use crate::ca::signing::{self, SignOptions};
use crate::ca::store::{CaStore, Signer};
use crate::pki::constraints::NameConstraints;
use crate::pki::keys::{KeyType, PrivateKey};
use crate::pki::names::{self, San};
use crate::pki::profile::Profile;
use crate::pki::x509;
use crate::support::error::{Error, Result};

/// One bootstrap: the CA directory, what to do to Vault, and how the CA
/// key is unlocked.
pub struct BootstrapRequest {
    pub dir: PathBuf,
    pub vault: VaultSettings,
    pub force: bool,
    pub passphrase_file: Option<PathBuf>,
}

/// What a bootstrap did to the mount's issuer.
pub struct BootstrapOutcome {
    /// The serial of the intermediate this run signed; `None` when the
    /// mount's intermediate from this root was kept.
    pub new_intermediate: Option<String>,
}

/// Validates the mount, role and intermediate settings that `uca vault
/// bootstrap` sends to Vault and `uca vault commands` prints for a shell,
/// the same way for both: names and durations that Vault would otherwise
/// reject half-way (or a shell would misread); mount and role are path-safe
/// identifiers, every allowed domain a host name.
pub fn check_pki_settings(pki: &VaultPki) -> Result<()> {
    validate_mount(&pki.mount)?;
    validate_role_name(&pki.role)?;
    for (flag, ttl) in [
        ("--max-ttl", &pki.max_ttl),
        ("--role-max-ttl", &pki.role_max_ttl),
    ] {
        parse_ttl(ttl).ok_or_else(|| {
            Error::invalid(flag, ttl, "expected a duration like 8760h, 30d or 3600s")
        })?;
    }
    if parse_ttl(&pki.role_max_ttl) > parse_ttl(&pki.max_ttl) {
        return Err(Error::invalid(
            "--role-max-ttl",
            &pki.role_max_ttl,
            format!("longer than the mount's --max-ttl {}", &pki.max_ttl),
        ));
    }
    if pki.allowed_domains.is_empty() {
        return Err(Error::msg("give the role at least one --allowed-domain (e.g. svc.internal): a role without one would refuse everything"));
    }
    for d in &pki.allowed_domains {
        allowed_domain(d)?;
    }
    for (flag, url) in [
        ("--issuing-url", pki.issuing_url.as_deref()),
        ("--crl-url", pki.crl_url.as_deref()),
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
    if let Some(c) = &pki.cluster_addr {
        check_cluster_addr(c)?;
    }
    crate::pki::names::validate_ca_name(&pki.common_name)
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

/// Validates everything bootstrap sends to Vault, and everything signing
/// the intermediate will check, against the root's constraints, path
/// length and expiry, before Vault is changed at all.
pub fn validate(
    req: &BootstrapRequest,
    constraints: &NameConstraints,
    root_pathlen: Option<u8>,
    root_not_after: time::OffsetDateTime,
) -> Result<()> {
    check_pki_settings(&req.vault.pki)?;
    if u64::from(req.vault.days) * 86_400 < parse_ttl(&req.vault.pki.max_ttl).unwrap_or(0) {
        return Err(Error::invalid(
            "--max-ttl",
            req.vault.pki.max_ttl.as_str(),
            format!(
                "longer than the intermediate's validity of {} days",
                req.vault.days
            ),
        ));
    }
    for d in &req.vault.pki.allowed_domains {
        constraints.check(&San::Dns(allowed_domain(d)?))?;
    }
    if root_pathlen == Some(0) {
        return Err(Error::msg("the root has path length 0, so it cannot sign Vault's intermediate; create the root with --pathlen 1 or more"));
    }
    crate::pki::profile::Lifetime::days(req.vault.days)?.within(root_not_after)?;
    signing::intermediate_constraints(constraints, &req.vault.permit)?;
    req.vault.acme.validate()
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
    let domain = &req.vault.pki.allowed_domains[0];
    let name = format!("uca-probe.{domain}");
    let v = client.write(
        &format!("{}/issue/{}", req.vault.pki.mount, req.vault.pki.role),
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
            .filter(|d| d.as_slice() != store.anchor_der()),
    );
    crate::pki::verify::verify_der(
        &chain,
        &[store.anchor_der().to_vec()],
        &crate::pki::verify::Purpose::Server(Some(name.clone())),
    )
    .map_err(|e| {
        Error::msg(format!(
            "the probe certificate Vault issued does not chain to the root: {e}; the role issues from another issuer than the intermediate uca signed (see {}/config/issuers)",
            req.vault.pki.mount
        ))
    })?;
    say(&format!(
        "issued a probe certificate for {name} through role {} and verified it chains to {}",
        req.vault.pki.role, store.name
    ));
    if let Some(serial) = data(&v, "serial_number").and_then(Value::as_str) {
        let (status, body) = client.post(
            &format!("{}/revoke", req.vault.pki.mount),
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
    let (client, clustered) = active_node(VaultClient::connect(&req.vault.conn)?, say)?;
    let (connected, mounts) = preflight(&client)?;
    say(&connected);
    let state = inspect_mount(&client, req, store, &mounts)?;
    // --force asks for a new intermediate: a kept one is not resumed.
    let kept = match state {
        MountState::Empty if !req.force => {
            let file = pending::path(store, client.namespace(), &req.vault.pki.mount);
            pending::find(&client, store, &file, &req.vault.pki.mount)?.map(|k| (file, k))
        }
        _ => None,
    };
    let sign_new = req.force || !(matches!(state, MountState::Ours(_)) || kept.is_some());
    // A sealed root can still complete URLs, role and probe for the
    // intermediate it signed before the seal, but never sign a new one:
    // refuse that before anything in Vault changes.
    if sign_new && matches!(source, Key::Unlock(_)) {
        store.ensure_unsealed()?;
    }
    let k8s = prepare_k8s(req, store)?;
    ensure_mount(&client, req, store, &state, say)?;
    let serial = match state {
        MountState::Ours(who) if !req.force => {
            say(&format!(
                "mount {} already has an intermediate from this root: {who}; kept (--force adds a new one)",
                req.vault.pki.mount
            ));
            complete_issuer(&client, req, say)?;
            None
        }
        MountState::Ours(_) => {
            say(&format!(
                "mount {} already has an intermediate from this root; --force: adding a new one",
                req.vault.pki.mount
            ));
            Some(install_intermediate(&client, req, store, source, say)?)
        }
        MountState::Empty if kept.is_some() => {
            resume_intermediate(&client, req, store, kept, say)?;
            None
        }
        MountState::Absent | MountState::Empty => {
            Some(install_intermediate(&client, req, store, source, say)?)
        }
    };
    configure_urls(&client, req, clustered, say)?;
    ensure_role(&client, req, say)?;
    probe(&client, req, store, say)?;
    enable_acme(&client, req, clustered, k8s, say)?;
    Ok(BootstrapOutcome {
        new_intermediate: serial,
    })
}

/// Where the mount answers ACME clients: `--acme-base-url`, else
/// `--cluster-addr`, else the address bootstrap was given (not the active
/// node it may have moved to, which is one node among several).
fn acme_mount_url(req: &BootstrapRequest) -> String {
    let v = &req.vault;
    let addr = v.pki.cluster_addr.as_deref().unwrap_or(&v.conn.addr);
    acme::mount_url(&v.acme, addr, v.conn.namespace.as_deref(), &v.pki.mount)
}

/// The `--k8s-out` files, rendered and checked before Vault is changed.
fn prepare_k8s(req: &BootstrapRequest, store: &CaStore) -> Result<Option<Vec<acme::K8sFile>>> {
    let v = &req.vault;
    let Some(out) = v.acme.k8s_out.as_deref().filter(|_| v.acme.acme) else {
        return Ok(None);
    };
    let role = v.acme.roles(&v.pki.role)[0];
    let directory = acme::directory_url(&acme_mount_url(req), role);
    let new_eab = acme::new_eab_command(v.conn.namespace.as_deref(), &v.pki.mount, role);
    let files = acme::k8s_files(out, &directory, v.acme.eab(), &new_eab, store);
    acme::check_k8s(out, &files)?;
    Ok(Some(files))
}

/// With `--acme`, once the probe has proved the role: the mount's ACME
/// server, then the Kubernetes files that point at it.
fn enable_acme(
    client: &VaultClient,
    req: &BootstrapRequest,
    clustered: bool,
    k8s: Option<Vec<acme::K8sFile>>,
    say: &mut dyn FnMut(&str),
) -> Result<()> {
    let v = &req.vault;
    if !v.acme.acme {
        return Ok(());
    }
    let mount_url = acme_mount_url(req);
    acme::enable(
        client,
        v.conn.namespace.as_deref(),
        &v.pki.mount,
        &v.pki.role,
        &v.acme,
        &mount_url,
        say,
    )?;
    if clustered && v.acme.acme_base_url.is_none() && v.pki.cluster_addr.is_none() {
        say(&format!(
            "note: in an HA cluster ACME clients should reach every node by one name, not {}: pass --cluster-addr (or --acme-base-url) with a name all nodes answer to",
            v.conn.addr
        ));
    }
    if let (Some(files), Some(out)) = (k8s, v.acme.k8s_out.as_deref()) {
        acme::write_k8s(out, &files, say)?;
    }
    Ok(())
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
    let key = format!("{}/", req.vault.pki.mount);
    let mount = mounts
        .get("data")
        .and_then(|d| d.get(&key))
        .or_else(|| mounts.get(&key));
    match mount.and_then(|m| m.get("type")).and_then(Value::as_str) {
        None => Ok(MountState::Absent),
        Some("pki") => {
            let pem_text = current_ca(client, &req.vault.pki.mount)?;
            if pem_text.trim().is_empty() {
                return Ok(MountState::Empty);
            }
            let (ours, who) = issued_by_root(&pem_text, store)?;
            if !ours {
                return Err(Error::msg(format!(
                    "the mount {} already has a different CA: {who}, which does not chain to {}; choose another --mount or disable that one first",
                    req.vault.pki.mount, store.name
                )));
            }
            Ok(MountState::Ours(who))
        }
        Some(other) => Err(Error::msg(format!(
            "the mount {} exists but is a '{other}' secrets engine, not pki",
            req.vault.pki.mount
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
                &format!("sys/mounts/{}", req.vault.pki.mount),
                &json!({"type": "pki", "description": format!("intermediate CA under {}", store.name), "config": {"max_lease_ttl": req.vault.pki.max_ttl}}),
                "enable the PKI secrets engine",
            )?;
            say(&format!(
                "enabled the PKI secrets engine at {}",
                req.vault.pki.mount
            ));
        }
        MountState::Empty => say(&format!(
            "mount {} exists as a PKI mount without a CA",
            req.vault.pki.mount
        )),
        MountState::Ours(_) => {}
    }
    client.write(
        &format!("sys/mounts/{}/tune", req.vault.pki.mount),
        &json!({"max_lease_ttl": req.vault.pki.max_ttl}),
        "tune the mount",
    )?;
    say(&format!(
        "set the mount's max lease TTL to {}",
        req.vault.pki.max_ttl
    ));
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

/// An empty mount that holds the key of an intermediate an interrupted run
/// signed and kept (see [`pending`]): that intermediate is imported and made
/// the default issuer, and nothing new is signed.
fn resume_intermediate(
    client: &VaultClient,
    req: &BootstrapRequest,
    store: &CaStore,
    kept: Option<(PathBuf, (Vec<u8>, String))>,
    say: &mut dyn FnMut(&str),
) -> Result<()> {
    let Some((file, (der, serial))) = kept else {
        return Ok(());
    };
    say(&format!(
        "mount {} holds the key of the intermediate (serial {serial}) an interrupted run signed, kept in {}: importing it, signing nothing new",
        req.vault.pki.mount,
        file.display()
    ));
    let issuer = import_intermediate(client, req, store, &der, None, say)?;
    make_default_issuer(client, req, &issuer, &serial, say)
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
        permits: req.vault.permit.clone(),
        sans: Vec::new(),
        days: Some(req.vault.days),
        ends_with_issuer: false,
        crl_url: req.vault.root_crl_url.clone(),
    };
    let keep_at = pending::path(store, client.namespace(), &req.vault.pki.mount);
    let (int_der, serial, import_key) = match req.vault.mode {
        BootstrapMode::Csr => {
            let (kt, bits) = vault_key_type(req.vault.pki.key);
            let v = client.write(
                &format!("{}/intermediate/generate/internal", req.vault.pki.mount),
                &json!({"common_name": req.vault.pki.common_name, "key_type": kt, "key_bits": bits}),
                "generate the intermediate key and CSR",
            )?;
            let csr_pem = data(&v, "csr")
                .and_then(Value::as_str)
                .ok_or_else(|| Error::msg("Vault's answer has no CSR"))?;
            say(&format!(
                "Vault generated the intermediate key ({kt} {bits}) and a CSR for CN={}",
                req.vault.pki.common_name
            ));
            let der = pem::parse(csr_pem)
                .map_err(|e| Error::msg(format!("Vault's CSR is not PEM: {e}")))?
                .into_contents();
            let (d, s) = sign_csr(store, signer, lock, &der, &opts, &keep_at)?;
            (d, s, None)
        }
        BootstrapMode::Import => {
            let (key, pair) = req.vault.pki.key.generate_with_pair()?;
            let mut params = rcgen::CertificateParams::default();
            params.distinguished_name = crate::pki::profile::subject_cn(&req.vault.pki.common_name);
            let csr = params
                .serialize_request(&pair)
                .map_err(|e| Error::msg(format!("cannot make the intermediate CSR: {e}")))?;
            let (d, s) = sign_csr(store, signer, lock, csr.der(), &opts, &keep_at)?;
            say(&format!(
                "made the intermediate key ({}) here",
                req.vault.pki.key
            ));
            (d, s, Some(key))
        }
    };
    say(&format!(
        "signed the intermediate CN={} (pathlen 0, serial {serial}) with {}",
        req.vault.pki.common_name, store.name
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
    // The chain above the intermediate: the root, or this CA and its own
    // chain when another root signed it.
    let root_pem = store.chain_pem();
    let v = match &import_key {
        None => client.write(
            &format!("{}/intermediate/set-signed", req.vault.pki.mount),
            &json!({"certificate": format!("{int_pem}{root_pem}")}),
            "import the signed intermediate (Vault refused the chain)",
        )?,
        Some(key) => client.write(
            &format!("{}/config/ca", req.vault.pki.mount),
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
        &format!("{}/issuer/{issuer}", req.vault.pki.mount),
        &json!({"issuer_name": issuer_name, "leaf_not_after_behavior": "err"}),
        "name the new issuer",
    )?;
    say(&format!(
        "named issuer {issuer} '{issuer_name}' (leaves may not outlive it)"
    ));
    let issuers = client.read(
        &format!("{}/config/issuers", req.vault.pki.mount),
        "read the default issuer",
    )?;
    let default = issuers
        .as_ref()
        .and_then(|v| data(v, "default"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if default != issuer {
        client.write(
            &format!("{}/config/issuers", req.vault.pki.mount),
            &json!({"default": issuer}),
            "set the default issuer",
        )?;
        say(&format!("set the default issuer to {issuer}"));
    } else {
        say(&format!("the default issuer is {issuer}"));
    }
    Ok(())
}

/// The default issuer of a mount that already holds this root's
/// intermediate, as [`make_default_issuer`] leaves it: named (after its
/// serial, unless it has a name) and letting no leaf outlive it. A run cut
/// off after Vault imported the chain but before that is completed here.
fn complete_issuer(
    client: &VaultClient,
    req: &BootstrapRequest,
    say: &mut dyn FnMut(&str),
) -> Result<()> {
    let mount = &req.vault.pki.mount;
    let Some(v) = client.read(
        &format!("{mount}/issuer/default"),
        "read the default issuer",
    )?
    else {
        return Ok(());
    };
    let field = |f: &str| data(&v, f).and_then(Value::as_str).unwrap_or("");
    let (id, name) = (field("issuer_id"), field("issuer_name"));
    if id.is_empty() || (!name.is_empty() && field("leaf_not_after_behavior") == "err") {
        return Ok(());
    }
    let serial = pem::parse(field("certificate"))
        .ok()
        .and_then(|b| x509::parse(b.contents()).ok().map(|c| x509::serial_hex(&c)))
        .ok_or_else(|| {
            Error::msg(format!(
                "Vault's default issuer {id} on {mount} has no readable certificate"
            ))
        })?;
    let issuer_name = if name.is_empty() {
        issuer_name_for(&serial)
    } else {
        name.to_string()
    };
    client.write(
        &format!("{mount}/issuer/{id}"),
        &json!({"issuer_name": issuer_name, "leaf_not_after_behavior": "err"}),
        "name the issuer",
    )?;
    say(&format!(
        "completed issuer {id}: named '{issuer_name}' (leaves may not outlive it)"
    ));
    Ok(())
}

/// The issuing and CRL URLs, written before the first certificate. They
/// name `--cluster-addr` (the cluster's load-balanced address) when given,
/// else `--addr` as given, never the active node bootstrap may have moved
/// to, which is one node among several. In an HA cluster bootstrap says
/// whether that address is one node's `api_addr` (so the URLs die with
/// it), with the option that fixes it. In a namespace the path names it,
/// since whoever fetches the URL sends no namespace header.
fn configure_urls(
    client: &VaultClient,
    req: &BootstrapRequest,
    clustered: bool,
    say: &mut dyn FnMut(&str),
) -> Result<()> {
    let pki = &req.vault.pki;
    let (addr, why) = match &pki.cluster_addr {
        Some(c) => (c.trim_end_matches('/'), "--cluster-addr"),
        None => (req.vault.conn.addr.trim_end_matches('/'), "--addr"),
    };
    let ns = client
        .namespace()
        .map(|n| format!("{n}/"))
        .unwrap_or_default();
    let base = format!("{addr}/v1/{ns}{}", pki.mount);
    let issuing = pki
        .issuing_url
        .clone()
        .unwrap_or_else(|| format!("{base}/ca"));
    let crl = pki.crl_url.clone().unwrap_or_else(|| format!("{base}/crl"));
    client.write(
        &format!("{}/config/urls", pki.mount),
        &json!({"issuing_certificates": [issuing], "crl_distribution_points": [crl]}),
        "configure the issuing and CRL URLs",
    )?;
    say(&format!("configured URLs: issuing {issuing}, CRL {crl}"));
    let fix = "pass --cluster-addr with the cluster's load-balanced address (e.g. https://vault.internal:8200, a --host name of uca vault tls) and run bootstrap again";
    if pki.issuing_url.is_some() && pki.crl_url.is_some() {
        say("AIA/CRL URLs as given by --issuing-url and --crl-url");
    } else if !clustered || pki.cluster_addr.is_some() {
        say(&format!("AIA/CRL URLs use {addr} ({why})"));
    } else {
        match node_api_addrs(client) {
            Some(nodes) if nodes.iter().any(|n| same_addr(n, addr)) => say(&format!(
                "warning: AIA/CRL URLs use {addr}, one node of the cluster: they stop answering when that node is down; {fix}"
            )),
            Some(_) => say(&format!(
                "AIA/CRL URLs use {addr} (--addr, no single node's api_addr: the cluster's address)"
            )),
            None => say(&format!(
                "warning: AIA/CRL URLs use {addr} (--addr); if that is one node of the cluster rather than its load-balanced name, they stop answering when that node is down; {fix}"
            )),
        }
    }
    Ok(())
}

/// Every cluster node's `api_addr`, from `sys/ha-status`; `None` when the
/// token may not read it.
fn node_api_addrs(client: &VaultClient) -> Option<Vec<String>> {
    let (status, v) = client.get("sys/ha-status").ok()?;
    if !(200..300).contains(&status) {
        return None;
    }
    let nodes = v
        .get("nodes")
        .or_else(|| v.get("data").and_then(|d| d.get("nodes")))?
        .as_array()?;
    Some(
        nodes
            .iter()
            .filter_map(|n| n.get("api_address").and_then(Value::as_str))
            .map(str::to_string)
            .collect(),
    )
}

/// Two `scheme://host:port` addresses the same, up to case and a
/// trailing '/'.
fn same_addr(a: &str, b: &str) -> bool {
    a.trim_end_matches('/')
        .eq_ignore_ascii_case(b.trim_end_matches('/'))
}

/// `--cluster-addr`: `http(s)://HOST[:PORT]`, the address clients reach
/// the cluster at; bootstrap appends `/v1/MOUNT/...` itself.
pub fn check_cluster_addr(url: &str) -> Result<()> {
    let bad = || {
        Error::invalid(
            "--cluster-addr",
            names::printable(url),
            "expected the cluster's address as https://HOST[:PORT], e.g. https://vault.internal:8200",
        )
    };
    let rest = url.trim_end_matches('/');
    let rest = rest
        .strip_prefix("https://")
        .or_else(|| rest.strip_prefix("http://"))
        .ok_or_else(bad)?;
    let (host, port) = match rest.strip_prefix('[') {
        Some(v6) => v6.split_once(']').ok_or_else(bad)?,
        None => rest.rsplit_once(':').unwrap_or((rest, "")),
    };
    let port = port.strip_prefix(':').unwrap_or(port);
    let port_ok = port.is_empty()
        || (port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok_and(|p| p > 0));
    if !port_ok || San::for_name(host).is_err() {
        return Err(bad());
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
        &format!("{}/roles/{}", req.vault.pki.mount, req.vault.pki.role),
        &json!({
            "allowed_domains": req.vault.pki.allowed_domains,
            "allow_subdomains": true,
            "allow_bare_domains": req.vault.allow_bare_domains,
            "allow_glob_domains": false,
            "allow_wildcard_certificates": req.vault.allow_wildcards,
            "allow_ip_sans": req.vault.allow_ip_sans,
            "allow_localhost": false,
            "allow_any_name": false,
            "enforce_hostnames": true,
            "server_flag": true,
            "client_flag": true,
            "key_type": kt,
            "key_bits": bits,
            "max_ttl": req.vault.pki.role_max_ttl,
            "ttl": req.vault.pki.role_max_ttl,
            "no_store": false,
        }),
        "create the role",
    )?;
    say(&format!(
        "role {} set: subdomains of {} only; IP SANs {}, wildcards {}, bare domains {}; max TTL {}",
        req.vault.pki.role,
        req.vault.pki.allowed_domains.join(", "),
        if req.vault.allow_ip_sans {
            "allowed"
        } else {
            "refused"
        },
        if req.vault.allow_wildcards {
            "allowed"
        } else {
            "refused"
        },
        if req.vault.allow_bare_domains {
            "allowed"
        } else {
            "refused"
        },
        req.vault.pki.role_max_ttl
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

/// Signs the intermediate and keeps it at `keep_at` before the ledger
/// records it, so a run cut off before Vault has it can import it later.
fn sign_csr(
    store: &CaStore,
    signer: &Signer,
    lock: &crate::ca::ledger::LedgerLock,
    der: &[u8],
    opts: &SignOptions,
    keep_at: &std::path::Path,
) -> Result<(Vec<u8>, String)> {
    let csr = signing::parse_csr(der)
        .map_err(|why| Error::msg(format!("the intermediate CSR is unusable: {why}")))?;
    let prepared = signing::prepare(store, &csr, "Vault's intermediate CSR", opts)?;
    let recorded_at = Some(keep_at.display().to_string());
    signing::sign_prepared(store, signer, lock, prepared, recorded_at, |der| {
        pending::keep(keep_at, der)
    })
}
