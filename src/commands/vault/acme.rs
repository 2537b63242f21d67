//! `uca vault bootstrap --acme`: the mount's ACME server, so a workload
//! gets certificates that chain to the root with any ACME client and no
//! Vault token, and the files a Kubernetes cluster needs to use it (a
//! cert-manager `ClusterIssuer` and a trust bundle `ConfigMap`). Every step
//! reads Vault's state first and writes only what differs, so a re-run
//! changes nothing and an interrupted one completes.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::client::VaultClient;
pub use crate::ca::sections::{AcmeEab, VaultAcme};
use crate::ca::store::CaStore;
use crate::pki::formats::k8s_configmap;
use crate::pki::names;
use crate::support::error::{Error, Result};
use crate::support::fsutil::{self, Mode};

/// Headers ACME clients need to see in Vault's answers (RFC 8555: the
/// nonce, the account and order locations, the directory link) and the one
/// they send that Vault must pass on to the mount.
const RESPONSE_HEADERS: [&str; 4] = ["Replay-Nonce", "Link", "Location", "Last-Modified"];
const REQUEST_HEADERS: [&str; 1] = ["If-Modified-Since"];

/// The ClusterIssuer, ConfigMap and EAB Secret names in the Kubernetes files.
const ISSUER_NAME: &str = "uca-acme";
const ROOTS_NAME: &str = "uca-roots";
const ACCOUNT_KEY_SECRET: &str = "uca-acme-account-key";
const EAB_SECRET: &str = "uca-acme-eab";

// The settings are one type with the command line and the plan's [vault]
// (`VaultAcme`); what they mean for Vault is worked out here.
impl VaultAcme {
    /// The roles ACME may use, the bootstrap's own when none were named.
    /// The first serves the mount's default directory.
    pub fn roles<'a>(&'a self, bootstrap_role: &'a str) -> Vec<&'a str> {
        if self.acme_roles.is_empty() {
            vec![bootstrap_role]
        } else {
            self.acme_roles.iter().map(String::as_str).collect()
        }
    }

    pub fn eab(&self) -> AcmeEab {
        self.acme_eab.unwrap_or_default()
    }

    /// Checks the settings before Vault is touched: ACME options need
    /// `--acme`, each role is a path-safe name, the base URL an http(s)
    /// address without path, query or fragment.
    pub fn validate(&self) -> Result<()> {
        if !self.acme {
            let given = [
                ("--acme-role", !self.acme_roles.is_empty()),
                ("--acme-eab", self.acme_eab.is_some()),
                ("--acme-base-url", self.acme_base_url.is_some()),
                ("--k8s-out", self.k8s_out.is_some()),
            ];
            if let Some((flag, _)) = given.iter().find(|(_, set)| *set) {
                return Err(Error::msg(format!(
                    "{flag} configures the ACME server: add --acme (acme = true in a plan) or leave {flag} out"
                )));
            }
            return Ok(());
        }
        for role in &self.acme_roles {
            let ok = !role.is_empty()
                && role
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
            if !ok {
                return Err(Error::invalid(
                    "--acme-role",
                    names::printable(role),
                    "expected a role name like web (letters, digits, '_', '-')",
                ));
            }
        }
        if let Some(url) = &self.acme_base_url {
            base_url(url)?;
        }
        Ok(())
    }
}

/// An `--acme-base-url`: `http(s)://HOST[:PORT]`, without a trailing slash.
fn base_url(url: &str) -> Result<&str> {
    let trimmed = url.trim_end_matches('/');
    let authority = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"));
    let ok = names::uri(trimmed).is_ok()
        && authority.is_some_and(|a| !a.is_empty() && !a.contains(['/', '?', '#', '@']));
    if !ok {
        return Err(Error::invalid(
            "--acme-base-url",
            names::printable(url),
            "expected the address ACME clients reach Vault by, like https://vault.internal:8200 (no path)",
        ));
    }
    Ok(trimmed)
}

/// Where the mount answers ACME clients: BASE/v1/[NAMESPACE/]MOUNT.
pub fn mount_url(acme: &VaultAcme, addr: &str, namespace: Option<&str>, mount: &str) -> String {
    let base = acme
        .acme_base_url
        .as_deref()
        .map_or(addr.trim_end_matches('/'), |u| u.trim_end_matches('/'));
    match namespace {
        Some(ns) => format!("{base}/v1/{}/{mount}", ns.trim_matches('/')),
        None => format!("{base}/v1/{mount}"),
    }
}

/// The ACME directory of `role` under the mount's URL.
pub fn directory_url(mount_url: &str, role: &str) -> String {
    format!("{mount_url}/roles/{role}/acme/directory")
}

/// Turns the mount's ACME server on: the response headers tuned, the
/// cluster path set to `mount_url`, and `config/acme` (enabled, the roles,
/// the default directory bound to the first role, the default issuer only,
/// the EAB policy). Then reads the directory back through Vault.
pub fn enable(
    client: &VaultClient,
    namespace: Option<&str>,
    mount: &str,
    bootstrap_role: &str,
    acme: &VaultAcme,
    mount_url: &str,
    say: &mut dyn FnMut(&str),
) -> Result<()> {
    ensure_headers(client, mount, say)?;
    ensure_cluster_path(client, mount, mount_url, say)?;
    ensure_config(client, mount, bootstrap_role, acme, say)?;
    check_directory(client, mount, mount_url)?;
    let roles = acme.roles(bootstrap_role);
    say(&format!(
        "ACME directory: {} (role {}; the mount's default directory {mount_url}/acme/directory uses it too)",
        directory_url(mount_url, roles[0]),
        roles[0]
    ));
    for role in &roles[1..] {
        say(&format!(
            "ACME directory: {} (role {role})",
            directory_url(mount_url, role)
        ));
    }
    match acme.eab() {
        AcmeEab::NotRequired => say("EAB not required: any client that reaches a directory and passes a challenge for a name its role allows gets a certificate"),
        policy => say(&format!(
            "EAB {}: each ACME client needs a key of the directory it uses (its id and key are the client's EAB key id and HMAC key), made with: {}",
            policy.as_vault(),
            roles
                .iter()
                .map(|r| new_eab_command(namespace, mount, r))
                .collect::<Vec<_>>()
                .join("; ")
        )),
    }
    Ok(())
}

/// The command that makes an EAB key for the role's ACME directory: a key
/// is bound to the directory it was made for.
pub fn new_eab_command(namespace: Option<&str>, mount: &str, role: &str) -> String {
    let ns = namespace
        .map(|n| format!("-namespace={} ", n.trim_matches('/')))
        .unwrap_or_default();
    format!("bao write {ns}-f {mount}/roles/{role}/acme/new-eab")
}

fn data<'a>(v: &'a Value, field: &str) -> Option<&'a Value> {
    v.get("data")
        .and_then(|d| d.get(field))
        .or_else(|| v.get(field))
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Adds the ACME headers to the mount's tuning, keeping any the operator
/// allowed already; written only when one is missing.
fn ensure_headers(client: &VaultClient, mount: &str, say: &mut dyn FnMut(&str)) -> Result<()> {
    let tune_path = format!("sys/mounts/{mount}/tune");
    let tune = client
        .read(&tune_path, "read the mount's tuning")?
        .unwrap_or(Value::Null);
    let merged = |field: &str, wanted: &[&str]| {
        let mut have = strings(data(&tune, field));
        let missing: Vec<String> = wanted
            .iter()
            .filter(|w| !have.iter().any(|h| h.eq_ignore_ascii_case(w)))
            .map(|w| w.to_string())
            .collect();
        let changed = !missing.is_empty();
        have.extend(missing);
        (have, changed)
    };
    let (response, response_changed) = merged("allowed_response_headers", &RESPONSE_HEADERS);
    let (request, request_changed) = merged("passthrough_request_headers", &REQUEST_HEADERS);
    if response_changed || request_changed {
        client.write(
            &tune_path,
            &json!({"allowed_response_headers": response, "passthrough_request_headers": request}),
            "let the mount answer with the headers ACME needs",
        )?;
        say(&format!(
            "tuned the mount for ACME: response headers {}, request header {}",
            RESPONSE_HEADERS.join(", "),
            REQUEST_HEADERS.join(", ")
        ));
    } else {
        say("the mount already passes the headers ACME needs");
    }
    Ok(())
}

/// The mount's cluster path, from which Vault builds every ACME URL.
fn ensure_cluster_path(
    client: &VaultClient,
    mount: &str,
    mount_url: &str,
    say: &mut dyn FnMut(&str),
) -> Result<()> {
    let path = format!("{mount}/config/cluster");
    let current = client.read(&path, "read the mount's cluster path")?;
    let have = current
        .as_ref()
        .and_then(|v| data(v, "path"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if have == mount_url {
        say(&format!("the mount's cluster path is {mount_url}"));
        return Ok(());
    }
    client.write(
        &path,
        &json!({"path": mount_url}),
        "set the mount's cluster path (ACME's base URL)",
    )?;
    say(&format!("set the mount's cluster path to {mount_url}"));
    Ok(())
}

/// `config/acme` as this bootstrap wants it.
fn wanted_config(bootstrap_role: &str, acme: &VaultAcme) -> Value {
    let roles = acme.roles(bootstrap_role);
    json!({
        "enabled": true,
        "allowed_roles": roles,
        "allowed_issuers": ["default"],
        "allow_role_ext_key_usage": false,
        "default_directory_policy": format!("role:{}", roles[0]),
        "eab_policy": acme.eab().as_vault(),
    })
}

fn ensure_config(
    client: &VaultClient,
    mount: &str,
    bootstrap_role: &str,
    acme: &VaultAcme,
    say: &mut dyn FnMut(&str),
) -> Result<()> {
    let path = format!("{mount}/config/acme");
    let wanted = wanted_config(bootstrap_role, acme);
    let current = client
        .read(&path, "read the ACME configuration")?
        .unwrap_or(Value::Null);
    let same = wanted
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| data(&current, k) == Some(v));
    let summary = format!(
        "roles {}, default directory {}, issuer default, EAB {}",
        acme.roles(bootstrap_role).join(", "),
        wanted["default_directory_policy"].as_str().unwrap_or(""),
        acme.eab().as_vault()
    );
    if same {
        say(&format!("ACME is already on: {summary}"));
        return Ok(());
    }
    client.write(&path, &wanted, "turn on ACME")?;
    say(&format!("turned on ACME: {summary}"));
    Ok(())
}

/// Reads the default directory back: Vault must serve it, naming URLs
/// under the mount's cluster path.
fn check_directory(client: &VaultClient, mount: &str, mount_url: &str) -> Result<()> {
    let path = format!("{mount}/acme/directory");
    let (status, dir) = client.get(&path)?;
    let new_account = dir.get("newAccount").and_then(Value::as_str).unwrap_or("");
    if status != 200 || !new_account.starts_with(mount_url) {
        return Err(Error::msg(format!(
            "Vault does not serve the ACME directory as configured (HTTP {status} on /v1/{path}): {}",
            super::client::vault_errors(&dir)
        )));
    }
    Ok(())
}

/// The names of the `--k8s-out` files.
const K8S_FILES: [&str; 2] = ["cluster-issuer-acme.yaml", "trust-bundle-configmap.yaml"];

/// Checks, before a ceremony makes its root, that `--k8s-out` can be
/// written and holds none of the files yet: they will name a root that
/// does not exist, so a file already there can only be another's.
pub fn check_k8s_for_new_root(out: &Path) -> Result<()> {
    fsutil::check_dir_creatable("k8s_out", out)?;
    for name in K8S_FILES {
        let path = out.join(name);
        if std::fs::symlink_metadata(&path).is_ok() {
            // A ceremony has no --force: say what to do instead.
            return Err(Error::msg(format!(
                "{} already exists, and would name a root that does not exist yet; move it away or choose another k8s_out",
                path.display()
            )));
        }
    }
    Ok(())
}

/// A file bootstrap writes for Kubernetes.
pub struct K8sFile {
    pub path: PathBuf,
    pub contents: String,
}

/// The Kubernetes files for `--k8s-out DIR`: an ACME `ClusterIssuer` for
/// cert-manager (the first role's directory, the root as the CA bundle
/// that checks Vault's listener, an http-01 solver, and the EAB binding
/// when the policy needs one) and a `ConfigMap` with the root under
/// `ca.crt` for the workloads that must trust what it issues.
pub fn k8s_files(
    out: &Path,
    directory: &str,
    eab: AcmeEab,
    new_eab: &str,
    store: &CaStore,
) -> Vec<K8sFile> {
    let root_pem = crate::pki::x509::pem_certificate(store.anchor_der());
    let ca_bundle = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        root_pem.as_bytes(),
    );
    let eab_block = match eab {
        AcmeEab::NotRequired => String::new(),
        _ => format!(
            "    # EAB {policy}: make a key with `{new_eab}`, put its id\n    # below and its key in the Secret: kubectl -n cert-manager create secret\n    # generic {EAB_SECRET} --from-literal=key=KEY\n    externalAccountBinding:\n      keyID: \"EAB-KEY-ID\"\n      keySecretRef:\n        name: {EAB_SECRET}\n        key: key\n",
            policy = eab.as_vault()
        ),
    };
    let issuer = format!(
        "# cert-manager ClusterIssuer: certificates from Vault's ACME server,\n# chaining to {root}.\napiVersion: cert-manager.io/v1\nkind: ClusterIssuer\nmetadata:\n  name: {ISSUER_NAME}\nspec:\n  acme:\n    server: {server}\n    caBundle: {ca_bundle}\n    privateKeySecretRef:\n      name: {ACCOUNT_KEY_SECRET}\n{eab_block}    solvers:\n      - http01:\n          ingress: {{}}\n",
        root = names::printable(&store.name),
        server = serde_json::Value::String(directory.to_string()),
    );
    let roots = format!(
        "# The root that Vault's certificates chain to, for workloads to trust.\n{}",
        k8s_configmap(ROOTS_NAME, None, &root_pem)
    );
    vec![
        K8sFile {
            path: out.join(K8S_FILES[0]),
            contents: issuer,
        },
        K8sFile {
            path: out.join(K8S_FILES[1]),
            contents: roots,
        },
    ]
}

/// Checks before Vault is touched that every file can be written: its
/// directory can be made, and a file already there holds exactly what
/// would be written (a re-run), never anything else.
pub fn check_k8s(out: &Path, files: &[K8sFile]) -> Result<()> {
    fsutil::check_dir_creatable("--k8s-out", out)?;
    for f in files {
        if std::fs::symlink_metadata(&f.path).is_err() {
            continue;
        }
        let same = fsutil::read_capped_text(&f.path, fsutil::limits::PEM, "read", "--k8s-out file")
            .map(|have| have == f.contents)
            .unwrap_or(false);
        if !same {
            return Err(Error::msg(format!(
                "{} exists with other contents: move it away or choose another --k8s-out; nothing was changed",
                f.path.display()
            )));
        }
    }
    Ok(())
}

/// Writes the files that are not there yet (the others were checked to
/// hold the same contents).
pub fn write_k8s(out: &Path, files: &[K8sFile], say: &mut dyn FnMut(&str)) -> Result<()> {
    fsutil::create_dir(out, 0o755)?;
    for f in files {
        if std::fs::symlink_metadata(&f.path).is_ok() {
            say(&format!("{} is up to date", f.path.display()));
            continue;
        }
        fsutil::write_atomic(&f.path, f.contents.as_bytes(), Mode::Public, false, true)?;
        say(&format!("wrote {}", f.path.display()));
    }
    Ok(())
}
