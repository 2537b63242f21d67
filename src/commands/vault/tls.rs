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

use crate::ca::bulk::{self, Existing, IssuedCert, RunOptions};
use crate::ca::plan::{Group, NamePattern, Plan};
use crate::ca::store::CaStore;
use crate::commands::vault::storage::PostgresStorage;
use crate::pki::keys::KeyType;
use crate::pki::names::San;
use crate::pki::profile::{Profile, Validity};
use crate::support::error::{Error, Result};
use crate::support::fsutil::{self, Mode};
use crate::support::output;

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

pub fn run(req: &TlsRequest) -> Result<TlsReport> {
    let store = CaStore::open(&req.dir)?;
    store.ensure_unsealed()?;
    store.refuse_private_output(&req.out)?;
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
    let storage = req
        .storage
        .as_deref()
        .map(PostgresStorage::parse)
        .transpose()?;
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
    let mut plan = Plan::single_group(
        store.constraints.clone(),
        Group::pem(
            "--host",
            vec![NamePattern::literal_in(&first, "listener")],
            Profile::Both,
            req.key,
            req.days,
            validity,
            hosts[1..].to_vec(),
            "",
        ),
    );
    if !req.operators.is_empty() {
        let patterns = req
            .operators
            .iter()
            .map(|n| NamePattern::literal(n))
            .collect();
        plan.push(Group::pem(
            "--operator",
            patterns,
            Profile::Client,
            req.key,
            req.days,
            validity,
            Vec::new(),
            "operators",
        ));
    }
    if !req.nodes.is_empty() {
        let patterns = req.nodes.iter().map(|n| NamePattern::literal(n)).collect();
        plan.push(Group::pem(
            "--node",
            patterns,
            Profile::Both,
            req.key,
            req.days,
            validity,
            hosts.clone(),
            "nodes",
        ));
    }
    if let Some(st) = &storage {
        plan.push(Group::pem(
            "--storage",
            vec![NamePattern::literal_in(&st.host, "server")],
            Profile::Server,
            req.key,
            req.days,
            validity,
            Vec::new(),
            "storage",
        ));
        plan.push(Group::pem(
            "--storage",
            vec![NamePattern::literal_in(&st.role, "client")],
            Profile::Client,
            req.key,
            req.days,
            validity,
            Vec::new(),
            "storage",
        ));
    }
    let existing = plan.validate_all(&req.out)?;
    store.refuse_ca_targets(&plan, &req.out)?;
    let listener_hcl = req.out.join("listener.hcl");
    let retry_join_hcl = (!req.nodes.is_empty()).then(|| req.out.join("retry_join.hcl"));
    let storage_hcl = storage.as_ref().map(|_| req.out.join("storage.hcl"));
    if !req.force {
        if let Some(e) = existing.first() {
            return Err(Error::Exists(e.clone()));
        }
        for file in [
            Some(&listener_hcl),
            retry_join_hcl.as_ref(),
            storage_hcl.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            output::check_free(file, false)?;
        }
    }
    let signer = store.unlock(req.passphrase_file.as_ref())?;
    let lock = store.ledger().lock()?;
    let opts = RunOptions {
        existing: Existing::Refuse,
        force: req.force,
        progress: false,
    };
    let mut issued = Vec::new();
    bulk::execute(&store, &signer, &plan, &req.out, &lock, &opts, &mut |c| {
        issued.push(c.clone())
    })?;
    let out_abs = fsutil::resolve(&req.out)?;
    fsutil::write_atomic(
        &listener_hcl,
        listener_stanza(&out_abs, &req.address, req.port, !req.nodes.is_empty()).as_bytes(),
        Mode::Public,
        req.force,
        true,
    )?;
    if let Some(r) = &retry_join_hcl {
        fsutil::write_atomic(
            r,
            retry_join_stanza(&out_abs, &req.nodes, req.port).as_bytes(),
            Mode::Public,
            req.force,
            true,
        )?;
    }
    if let (Some(st), Some(file)) = (&storage, &storage_hcl) {
        let dir = out_abs.join("storage");
        fsutil::write_atomic(
            file,
            st.stanza(&dir.join("server"), &dir.join("client"))
                .as_bytes(),
            Mode::Public,
            req.force,
            true,
        )?;
    }
    Ok(TlsReport {
        issued,
        listener_hcl,
        retry_join_hcl,
        storage_hcl,
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
