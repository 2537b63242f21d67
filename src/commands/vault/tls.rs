//! `uca vault tls`: certificates for Vault/OpenBao itself, issued from the
//! root before Vault can start: the listener (server and client use, so a
//! raft node can present it when it joins), operator client identities,
//! node identities, and complete OpenBao configurations that point at them
//! and start as written.
//!
//! ```text
//! OUT/listener/{cert,key,chain,ca}.pem     the listener certificate
//! OUT/operators/NAME/{cert,key,chain,ca}.pem
//! OUT/nodes/NAME/{cert,key,chain,ca}.pem   each --node's certificate (server +
//!                                          client): NAME and every --host; the
//!                                          node's API listener serves it and it
//!                                          is the node's identity when it joins
//!                                          the others (retry_join). Raft traffic
//!                                          on the cluster port uses OpenBao's
//!                                          own certificates, not these.
//! OUT/nodes/NAME/openbao.hcl               with --node: that node's complete
//!                                          configuration (see server_config.rs)
//! OUT/openbao.hcl                          without --node: a single server's
//! OUT/listener.hcl                         listener "tcp" { ... } (a stanza)
//! OUT/retry_join.hcl                       only with --node (stanzas)
//! OUT/storage/..., OUT/storage.hcl          only with --storage (see storage.rs)
//! ```

use std::path::{Path, PathBuf};

use crate::ca::bulk::{Existing, IssuedCert};
use crate::ca::issuance::{Issuance, Key};
use crate::ca::plan::{NamePattern, PemGroups, Plan};
use crate::ca::store::CaStore;
use crate::commands::vault::server_config::{hcl_path, url_host, ServerConfig, ServerStorage};
use crate::commands::vault::storage::PostgresStorage;
use crate::pki::keys::KeyType;
use crate::pki::names::San;
use crate::pki::profile::{Lifetime, Profile};
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
    /// The IP address every listener binds; `None`: see `listen_address`.
    pub address: Option<String>,
    pub port: u16,
    /// The cluster port; `None`: PORT+1.
    pub cluster_port: Option<u16>,
    /// Raft data goes in DIR/NAME; `None`: OUT/raft.
    pub raft_dir: Option<PathBuf>,
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
    /// The complete server configurations, with the server each is for.
    pub server_configs: Vec<(String, PathBuf)>,
}

/// The `listener "tcp"` stanza. Without `--node` it serves the listener
/// certificate; with `--node` every node serves its own certificate, which
/// names the node and every `--host` name, so that a node answers to the
/// name the others join it by and to the names clients use. Then the
/// stanza is the same file on every node, with NODE standing for that
/// node's own name, and `api_addr`/`cluster_addr` name the node too: a
/// standby reports the active node by its `api_addr`, and clients sent
/// there check the certificate against that name. Each node's complete
/// configuration (`nodes/NAME/openbao.hcl`) needs no such replacing.
fn listener_stanza(out: &Path, address: &str, ports: Ports, per_node: bool) -> String {
    let (dir, head) = if per_node {
        (
            out.join("nodes").join("NODE"),
            "# Vault/OpenBao listener with mutual TLS, from uca vault tls: the same on every node,\n\
             # with NODE replaced by that node's own --node name (an IPv6 address in [] inside URLs).\n\
             # nodes/NAME/openbao.hcl is each node's complete configuration, ready to start.\n",
        )
    } else {
        (
            out.join("listener"),
            "# Vault/OpenBao listener with mutual TLS, from uca vault tls.\n\
             # openbao.hcl is the complete configuration of a single server, ready to start.\n",
        )
    };
    let Ports { api, cluster } = ports;
    let listen = url_host(address);
    let mut s = format!(
        "{head}listener \"tcp\" {{\n  address = \"{listen}:{api}\"\n  cluster_address = \"{listen}:{cluster}\"\n  \
         tls_cert_file = {cert}\n  tls_key_file = {key}\n  tls_client_ca_file = {ca}\n  \
         tls_require_and_verify_client_cert = true\n  tls_min_version = \"tls12\"\n}}\n",
        cert = hcl_path(&dir.join("cert.pem")),
        key = hcl_path(&dir.join("key.pem")),
        ca = hcl_path(&dir.join("ca.pem")),
    );
    if per_node {
        s.push_str(&format!(
            "api_addr = \"https://NODE:{api}\"\ncluster_addr = \"https://NODE:{cluster}\"\n"
        ));
    }
    s
}

fn retry_join_stanza(out: &Path, nodes: &[String], port: u16) -> String {
    let mut s = String::from(
        "# Inside storage \"raft\" { ... } on each node; NODE is that node's own name.\n\
         # nodes/NAME/openbao.hcl is each node's complete configuration, ready to start.\n",
    );
    for n in nodes {
        s.push_str(&format!(
            "retry_join {{\n  leader_api_addr = \"https://{host}:{port}\"\n  leader_ca_cert_file = {ca}\n  \
             leader_client_cert_file = {cert}\n  leader_client_key_file = {key}\n}}\n",
            host = url_host(n),
            ca = hcl_path(&out.join("nodes").join("NODE").join("ca.pem")),
            cert = hcl_path(&out.join("nodes").join("NODE").join("cert.pem")),
            key = hcl_path(&out.join("nodes").join("NODE").join("key.pem")),
        ));
    }
    s
}

/// The API port and the cluster port (`--cluster-port`, else PORT+1).
#[derive(Clone, Copy)]
struct Ports {
    api: u16,
    cluster: u16,
}

/// The name of a single server without `--node`: the first `--host`.
fn single_server_name(req: &TlsRequest) -> &str {
    &req.hosts[0]
}

/// The address a server binds: `--address` when given; else a node named
/// by an IP address binds that address (several nodes can then share one
/// machine, and a node listens where the others reach it), and anything
/// else binds every address.
fn listen_address<'a>(req: &'a TlsRequest, node: Option<&'a str>) -> &'a str {
    match (&req.address, node) {
        (Some(a), _) => a,
        (None, Some(n)) if n.parse::<std::net::IpAddr>().is_ok() => n,
        (None, _) => "0.0.0.0",
    }
}

/// The side files, beside the certificates: listener.hcl always,
/// retry_join.hcl with `--node`, storage.hcl with `--storage`, and the
/// complete server configurations: nodes/NAME/openbao.hcl per `--node`,
/// or openbao.hcl for a single server.
struct HclFiles {
    listener: PathBuf,
    retry_join: Option<PathBuf>,
    storage: Option<PathBuf>,
    servers: Vec<PathBuf>,
}

impl HclFiles {
    fn of(req: &TlsRequest, storage: Option<&PostgresStorage>) -> HclFiles {
        let servers = if req.nodes.is_empty() {
            vec![req.out.join(SERVER_CONFIG)]
        } else {
            let node_file = |n: &String| req.out.join("nodes").join(n).join(SERVER_CONFIG);
            req.nodes.iter().map(node_file).collect()
        };
        HclFiles {
            listener: req.out.join("listener.hcl"),
            retry_join: (!req.nodes.is_empty()).then(|| req.out.join("retry_join.hcl")),
            storage: storage.map(|_| req.out.join("storage.hcl")),
            servers,
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
        .chain(&self.servers)
        .map(PathBuf::as_path)
        .collect()
    }

    /// Writes the stanzas and the server configurations, naming the
    /// certificates by absolute paths.
    fn write(&self, req: &TlsRequest, storage: Option<&PostgresStorage>) -> Result<()> {
        let out_abs = fsutil::resolve(&req.out)?;
        let write = |file: &Path, text: String| {
            fsutil::write_atomic(file, text.as_bytes(), Mode::Public, req.force, true)
        };
        let per_node = !req.nodes.is_empty();
        let ports = ports(req);
        let address = req.address.as_deref().unwrap_or("0.0.0.0");
        write(
            &self.listener,
            listener_stanza(&out_abs, address, ports, per_node),
        )?;
        if let Some(r) = &self.retry_join {
            write(r, retry_join_stanza(&out_abs, &req.nodes, req.port))?;
        }
        if let (Some(st), Some(file)) = (storage, &self.storage) {
            let dir = out_abs.join("storage");
            write(file, st.stanza(&dir.join("server"), &dir.join("client")))?;
        }
        let raft_dir = match &req.raft_dir {
            Some(d) => fsutil::resolve(d)?,
            None => out_abs.join("raft"),
        };
        for (file, text) in self
            .servers
            .iter()
            .zip(server_configs(req, &out_abs, &raft_dir, storage))
        {
            write(file, text)?;
        }
        Ok(())
    }
}

/// The servers `HclFiles::servers` configure, in order.
fn server_names(req: &TlsRequest) -> Vec<String> {
    if req.nodes.is_empty() {
        vec![single_server_name(req).to_string()]
    } else {
        req.nodes.clone()
    }
}

/// The file name of a complete server configuration.
const SERVER_CONFIG: &str = "openbao.hcl";

fn ports(req: &TlsRequest) -> Ports {
    Ports {
        api: req.port,
        cluster: req.cluster_port.unwrap_or(req.port.saturating_add(1)),
    }
}

/// Each server's complete configuration, in the order of `HclFiles::servers`.
fn server_configs(
    req: &TlsRequest,
    out: &Path,
    raft_dir: &Path,
    storage: Option<&PostgresStorage>,
) -> Vec<String> {
    let Ports { api, cluster } = ports(req);
    let storage_of = |name: &str| match storage {
        Some(st) => ServerStorage::Postgres {
            connection_url: st.connection_url(&out.join("storage").join("client")),
            ha: !req.nodes.is_empty(),
        },
        None => ServerStorage::Raft {
            path: raft_dir.join(name),
            peers: req.nodes.iter().filter(|n| *n != name).cloned().collect(),
        },
    };
    if req.nodes.is_empty() {
        let name = single_server_name(req);
        let tls_dir = out.join("listener");
        return vec![ServerConfig {
            name,
            tls_dir: &tls_dir,
            listen: listen_address(req, None),
            port: api,
            cluster_port: cluster,
            storage: storage_of(name),
        }
        .render()];
    }
    req.nodes
        .iter()
        .map(|name| {
            let tls_dir = out.join("nodes").join(name);
            ServerConfig {
                name,
                tls_dir: &tls_dir,
                listen: listen_address(req, Some(name)),
                port: api,
                cluster_port: cluster,
                storage: storage_of(name),
            }
            .render()
        })
        .collect()
}

/// `--host`, `--port`, `--cluster-port`, `--address` and `--raft-dir`,
/// before anything else is read.
fn check_listener(req: &TlsRequest) -> Result<()> {
    if req.hosts.is_empty() {
        return Err(Error::msg("give the listener's names with --host (DNS names and IP addresses clients use to reach Vault)"));
    }
    if req.port == 0 {
        return Err(Error::invalid(
            "--port",
            req.port.to_string(),
            "expected 1 to 65535",
        ));
    }
    match req.cluster_port {
        None if req.port == u16::MAX => {
            return Err(Error::invalid(
                "--port",
                req.port.to_string(),
                "expected 1 to 65534 (the cluster port is PORT+1), or give --cluster-port",
            ))
        }
        Some(c) if c == 0 || c == req.port => {
            return Err(Error::invalid(
                "--cluster-port",
                c.to_string(),
                format!("expected 1 to 65535, other than --port {}", req.port),
            ))
        }
        _ => {}
    }
    if let Some(a) = &req.address {
        if a.parse::<std::net::IpAddr>().is_err() {
            return Err(Error::invalid(
                "--address",
                a.as_str(),
                "expected the IP address to listen on, e.g. 0.0.0.0",
            ));
        }
    }
    if let (Some(dir), Some(_)) = (&req.raft_dir, &req.storage) {
        return Err(Error::invalid(
            "--raft-dir",
            dir.display().to_string(),
            "no raft directory with --storage: the data is in PostgreSQL",
        ));
    }
    Ok(())
}

/// `--out` and `--raft-dir` as the configurations will name them: absolute,
/// and without a control character, which would end a string or a comment
/// line in HCL and let the rest of the path be read as configuration.
fn check_config_paths(req: &TlsRequest) -> Result<()> {
    let dirs = [
        ("--out", Some(&req.out)),
        ("--raft-dir", req.raft_dir.as_ref()),
    ];
    for (flag, dir) in dirs {
        let Some(dir) = dir else { continue };
        let abs = fsutil::resolve(dir)?.display().to_string();
        if abs.chars().any(char::is_control) {
            return Err(Error::invalid(
                flag,
                crate::pki::names::printable(&abs),
                "a directory whose path has no control character: OpenBao's configuration names it",
            ));
        }
    }
    Ok(())
}

/// The plan: the listener, then operators, nodes and the storage server
/// and client, each group named by the option that asked for it.
fn tls_plan(store: &CaStore, req: &TlsRequest, storage: Option<&PostgresStorage>) -> Result<Plan> {
    let validity = Lifetime::days(req.days)?.within(store.not_after)?;
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
    check_config_paths(req)?;
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
            server_configs: server_names(req).into_iter().zip(hcl.servers).collect(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::{listener_stanza, Ports};
    use std::path::Path;

    #[test]
    fn with_nodes_each_node_serves_its_own_certificate_and_advertises_its_name() {
        let ports = Ports {
            api: 8200,
            cluster: 8300,
        };
        let single = listener_stanza(Path::new("/v"), "0.0.0.0", ports, false);
        assert!(single.contains("tls_cert_file = \"/v/listener/cert.pem\""));
        assert!(single.contains("cluster_address = \"0.0.0.0:8300\""));
        assert!(!single.contains("NODE") && !single.contains("api_addr"));
        let nodes = listener_stanza(Path::new("/v"), "::", ports, true);
        for line in [
            "address = \"[::]:8200\"",
            "tls_cert_file = \"/v/nodes/NODE/cert.pem\"",
            "tls_key_file = \"/v/nodes/NODE/key.pem\"",
            "api_addr = \"https://NODE:8200\"",
            "cluster_addr = \"https://NODE:8300\"",
        ] {
            assert!(nodes.contains(line), "{line} missing in:\n{nodes}");
        }
    }
}
