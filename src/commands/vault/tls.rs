//! `uca vault tls`: certificates for Vault/OpenBao itself, issued from the
//! root before Vault can start: the listener (server and client use, so a
//! raft node can present it when it joins), operator client identities, raft
//! node identities, and the ready-made `listener "tcp"` and `retry_join`
//! stanzas that point at them.
//!
//! ```text
//! OUT/listener/{cert,key,chain,ca}.pem     the listener certificate
//! OUT/operators/NAME/{cert,key,chain,ca}.pem
//! OUT/nodes/NAME/{cert,key,chain,ca}.pem   raft members (server + client):
//!                                          NAME and every --host; with --node
//!                                          each node's listener certificate
//! OUT/listener.hcl                         listener "tcp" { ... }
//! OUT/retry_join.hcl                       only with --node
//! OUT/storage/..., OUT/storage.hcl          only with --storage (see storage.rs)
//! ```

use std::path::{Path, PathBuf};

use crate::ca::bulk::{Existing, IssuedCert};
use crate::ca::issuance::{Issuance, Key};
use crate::ca::plan::{NamePattern, PemGroups, Plan};
use crate::ca::store::CaStore;
use crate::commands::vault::storage::PostgresStorage;
use crate::pki::keys::KeyType;
use crate::pki::names::San;
use crate::pki::profile::{Profile, Validity};
use crate::support::error::{Error, Result};
use crate::support::fsutil::{self, Mode};

pub struct TlsRequest {
    pub dir: PathBuf,
    pub out: PathBuf,
    pub hosts: Vec<String>,
    pub operators: Vec<String>,
    pub nodes: Vec<String>,
    /// `postgresql://ROLE@HOST[:PORT]/DATABASE` for storage "postgresql".
    pub storage: Option<String>,
    pub address: String,
    pub port: u16,
    pub key: KeyType,
    pub days: u32,
    pub force: bool,
    pub passphrase_file: Option<PathBuf>,
}

pub struct TlsReport {
    pub issued: Vec<IssuedCert>,
    pub listener_hcl: PathBuf,
    pub retry_join_hcl: Option<PathBuf>,
    pub storage_hcl: Option<PathBuf>,
}

fn hcl_string(p: &Path) -> String {
    format!(
        "\"{}\"",
        p.display()
            .to_string()
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
    )
}

/// The `listener "tcp"` stanza. Without `--node` it serves the listener
/// certificate; with `--node` every node serves its own certificate, which
/// names the node and every `--host` name, so that a node answers to the
/// name the others join it by and to the names clients use. Then the
/// stanza is the same file on every node, with NODE standing for that
/// node's own name, and `api_addr`/`cluster_addr` name the node too: a
/// standby reports the active node by its `api_addr`, and clients sent
/// there check the certificate against that name.
fn listener_stanza(out: &Path, address: &str, port: u16, per_node: bool) -> String {
    let (dir, head) = if per_node {
        (
            out.join("nodes").join("NODE"),
            "# Vault/OpenBao listener with mutual TLS, from uca vault tls: the same on every node,\n\
             # with NODE replaced by that node's own --node name (an IPv6 address in [] inside URLs).\n",
        )
    } else {
        (
            out.join("listener"),
            "# Vault/OpenBao listener with mutual TLS, from uca vault tls.\n",
        )
    };
    let cluster = port.saturating_add(1);
    let mut s = format!(
        "{head}listener \"tcp\" {{\n  address = \"{address}:{port}\"\n  cluster_address = \"{address}:{cluster}\"\n  \
         tls_cert_file = {cert}\n  tls_key_file = {key}\n  tls_client_ca_file = {ca}\n  \
         tls_require_and_verify_client_cert = true\n  tls_min_version = \"tls12\"\n}}\n",
        cert = hcl_string(&dir.join("cert.pem")),
        key = hcl_string(&dir.join("key.pem")),
        ca = hcl_string(&dir.join("ca.pem")),
    );
    if per_node {
        s.push_str(&format!(
            "api_addr = \"https://NODE:{port}\"\ncluster_addr = \"https://NODE:{cluster}\"\n"
        ));
    }
    s
}

fn retry_join_stanza(out: &Path, nodes: &[String], port: u16) -> String {
    let mut s = String::from(
        "# Inside storage \"raft\" { ... } on each node; NODE is that node's own name.\n",
    );
    for n in nodes {
        let host = if n.contains(':') {
            format!("[{n}]")
        } else {
            n.clone()
        };
        s.push_str(&format!(
            "retry_join {{\n  leader_api_addr = \"https://{host}:{port}\"\n  leader_ca_cert_file = {ca}\n  \
             leader_client_cert_file = {cert}\n  leader_client_key_file = {key}\n}}\n",
            ca = hcl_string(&out.join("nodes").join("NODE").join("ca.pem")),
            cert = hcl_string(&out.join("nodes").join("NODE").join("cert.pem")),
            key = hcl_string(&out.join("nodes").join("NODE").join("key.pem")),
        ));
    }
    s
}

/// The side files, beside the certificates: listener.hcl always,
/// retry_join.hcl with `--node`, storage.hcl with `--storage`.
struct HclFiles {
    listener: PathBuf,
    retry_join: Option<PathBuf>,
    storage: Option<PathBuf>,
}

impl HclFiles {
    fn of(req: &TlsRequest, storage: Option<&PostgresStorage>) -> HclFiles {
        HclFiles {
            listener: req.out.join("listener.hcl"),
            retry_join: (!req.nodes.is_empty()).then(|| req.out.join("retry_join.hcl")),
            storage: storage.map(|_| req.out.join("storage.hcl")),
        }
    }

    fn paths(&self) -> Vec<&Path> {
        [
            Some(&self.listener),
            self.retry_join.as_ref(),
            self.storage.as_ref(),
        ]
        .into_iter()
        .flatten()
        .map(PathBuf::as_path)
        .collect()
    }

    /// Writes the stanzas, naming the certificates by absolute paths.
    fn write(&self, req: &TlsRequest, storage: Option<&PostgresStorage>) -> Result<()> {
        let out_abs = fsutil::resolve(&req.out)?;
        let write = |file: &Path, text: String| {
            fsutil::write_atomic(file, text.as_bytes(), Mode::Public, req.force, true)
        };
        let per_node = !req.nodes.is_empty();
        write(
            &self.listener,
            listener_stanza(&out_abs, &req.address, req.port, per_node),
        )?;
        if let Some(r) = &self.retry_join {
            write(r, retry_join_stanza(&out_abs, &req.nodes, req.port))?;
        }
        if let (Some(st), Some(file)) = (storage, &self.storage) {
            let dir = out_abs.join("storage");
            write(file, st.stanza(&dir.join("server"), &dir.join("client")))?;
        }
        Ok(())
    }
}

/// `--host`, `--port` and `--address`, before anything else is read.
fn check_listener(req: &TlsRequest) -> Result<()> {
    if req.hosts.is_empty() {
        return Err(Error::msg("give the listener's names with --host (DNS names and IP addresses clients use to reach Vault)"));
    }
    if req.port == 0 || req.port == u16::MAX {
        return Err(Error::invalid(
            "--port",
            req.port.to_string(),
            "expected 1 to 65534 (the cluster port is PORT+1)",
        ));
    }
    if req.address.parse::<std::net::IpAddr>().is_err() {
        return Err(Error::invalid(
            "--address",
            req.address.as_str(),
            "expected the IP address to listen on, e.g. 0.0.0.0",
        ));
    }
    Ok(())
}

/// The plan: the listener, then operators, nodes and the storage server
/// and client, each group named by the option that asked for it.
fn tls_plan(store: &CaStore, req: &TlsRequest, storage: Option<&PostgresStorage>) -> Result<Plan> {
    let validity = Validity::days_from_now(req.days)?.within(store.not_after, req.days)?;
    let hosts: Vec<San> = req
        .hosts
        .iter()
        .map(|h| San::for_name(h))
        .collect::<Result<_>>()?;
    let first = match &hosts[0] {
        San::Ip(ip) => ip.to_string(),
        other => other.to_string().trim_start_matches("DNS:").to_string(),
    };
    let groups = PemGroups {
        key: req.key,
        days: req.days,
        validity,
    };
    let literals = |names: &[String]| names.iter().map(|n| NamePattern::literal(n)).collect();
    let listener = vec![NamePattern::literal_in(&first, "listener")];
    let mut plan = Plan::single_group(
        store.constraints.clone(),
        groups
            .group("--host", Profile::Both, "", listener)
            .with_extra(hosts[1..].to_vec()),
    );
    if !req.operators.is_empty() {
        let operators = literals(&req.operators);
        plan.push(groups.group("--operator", Profile::Client, "operators", operators));
    }
    if !req.nodes.is_empty() {
        let nodes = literals(&req.nodes);
        plan.push(
            groups
                .group("--node", Profile::Both, "nodes", nodes)
                .with_extra(hosts),
        );
    }
    if let Some(st) = storage {
        let server = vec![NamePattern::literal_in(&st.host, "server")];
        let client = vec![NamePattern::literal_in(&st.role, "client")];
        plan.push(groups.group("--storage", Profile::Server, "storage", server));
        plan.push(groups.group("--storage", Profile::Client, "storage", client));
    }
    Ok(plan)
}

/// Checks everything, issues, then writes the HCL stanzas while the CA's
/// lock is still held.
pub fn run(req: &TlsRequest) -> Result<TlsReport> {
    let store = CaStore::open(&req.dir)?;
    store.ensure_unsealed()?;
    store.refuse_private_output(&req.out)?;
    check_listener(req)?;
    let storage = req
        .storage
        .as_deref()
        .map(PostgresStorage::parse)
        .transpose()?;
    let plan = tls_plan(&store, req, storage.as_ref())?;
    let hcl = HclFiles::of(req, storage.as_ref());
    let issuance = Issuance::prepare(
        &store,
        plan,
        &req.out,
        Existing::Refuse,
        req.force,
        &hcl.paths(),
    )?;
    let key = Key::Unlock(req.passphrase_file.as_ref());
    issuance.run_then(&store, key, |issued| {
        hcl.write(req, storage.as_ref())?;
        Ok(TlsReport {
            issued,
            listener_hcl: hcl.listener,
            retry_join_hcl: hcl.retry_join,
            storage_hcl: hcl.storage,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::listener_stanza;
    use std::path::Path;

    #[test]
    fn with_nodes_each_node_serves_its_own_certificate_and_advertises_its_name() {
        let single = listener_stanza(Path::new("/v"), "0.0.0.0", 8200, false);
        assert!(single.contains("tls_cert_file = \"/v/listener/cert.pem\""));
        assert!(!single.contains("NODE") && !single.contains("api_addr"));
        let nodes = listener_stanza(Path::new("/v"), "0.0.0.0", 8200, true);
        for line in [
            "tls_cert_file = \"/v/nodes/NODE/cert.pem\"",
            "tls_key_file = \"/v/nodes/NODE/key.pem\"",
            "api_addr = \"https://NODE:8200\"",
            "cluster_addr = \"https://NODE:8201\"",
        ] {
            assert!(nodes.contains(line), "{line} missing in:\n{nodes}");
        }
    }
}
