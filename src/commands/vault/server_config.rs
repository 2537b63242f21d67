//! A complete OpenBao server configuration, one per server, that starts as
//! written (`bao server -config=FILE`): storage (raft with `retry_join` to
//! every other node, or PostgreSQL), the `listener "tcp"` with mutual TLS,
//! `api_addr` and `cluster_addr`. `uca vault tls` writes one for each
//! `--node`, and one for a single server without `--node`.

use std::path::{Path, PathBuf};

/// Where a server keeps its data.
pub enum ServerStorage {
    /// Integrated storage in `path`, joining `peers` (the other nodes'
    /// names) through their API listeners.
    Raft { path: PathBuf, peers: Vec<String> },
    /// `storage "postgresql"` with this `connection_url`; `ha` when several
    /// nodes share the database, so that only one of them is active.
    Postgres { connection_url: String, ha: bool },
}

/// One server: its name (what clients and the other nodes reach it by,
/// its raft node id), the directory with its `{cert,key,ca}.pem`, the IP
/// address it binds, and its ports.
pub struct ServerConfig<'a> {
    pub name: &'a str,
    pub tls_dir: &'a Path,
    pub listen: &'a str,
    pub port: u16,
    pub cluster_port: u16,
    pub storage: ServerStorage,
}

/// A string for HCL, quoted and escaped.
pub fn hcl_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A path for HCL.
pub fn hcl_path(p: &Path) -> String {
    hcl_quote(&p.display().to_string())
}

/// A host for a URL or a listen address: an IPv6 address goes in [].
pub fn url_host(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

impl ServerConfig<'_> {
    fn file(&self, name: &str) -> String {
        hcl_path(&self.tls_dir.join(name))
    }

    fn header(&self) -> String {
        let storage = match &self.storage {
            ServerStorage::Raft { path, .. } => format!(
                "# Raft data: {}\n\
                 # (--raft-dir DIR puts it in DIR/{}; OpenBao creates it, mode 0700, on first start).\n",
                path.display(),
                self.name
            ),
            ServerStorage::Postgres { .. } => {
                "# Data: PostgreSQL over mutual TLS (--storage); storage.hcl's comments say\n\
                 # what the database server needs.\n"
                    .to_string()
            }
        };
        format!(
            "# OpenBao server {name}, from uca vault tls: complete, start it as written with\n\
             #   bao server -config=THIS_FILE\n\
             # Paths are absolute (OpenBao reads a relative path from its working directory,\n\
             # not from this file's): the files must be at these paths on the server.\n\
             # uca's certificates secure the API listener (clients and operators, on any\n\
             # node) and the raft joins (retry_join); OpenBao secures its own traffic\n\
             # between nodes on the cluster port with certificates it makes.\n\
             {storage}",
            name = self.name
        )
    }

    fn storage_block(&self) -> String {
        match &self.storage {
            ServerStorage::Raft { path, peers } => {
                let mut s = format!(
                    "storage \"raft\" {{\n  path = {}\n  node_id = {}\n",
                    hcl_path(path),
                    hcl_quote(self.name)
                );
                for peer in peers {
                    s.push_str(&format!(
                        "  retry_join {{\n    leader_api_addr = \"https://{}:{}\"\n    \
                         leader_ca_cert_file = {}\n    leader_client_cert_file = {}\n    \
                         leader_client_key_file = {}\n  }}\n",
                        url_host(peer),
                        self.port,
                        self.file("ca.pem"),
                        self.file("cert.pem"),
                        self.file("key.pem"),
                    ));
                }
                s.push_str("}\n");
                s
            }
            ServerStorage::Postgres { connection_url, ha } => {
                let ha_line = if *ha {
                    "  # Several nodes share the database: only the one holding the lock is active.\n  ha_enabled = \"true\"\n"
                } else {
                    ""
                };
                format!(
                    "storage \"postgresql\" {{\n  connection_url = {}\n{ha_line}}}\n",
                    hcl_quote(connection_url)
                )
            }
        }
    }

    fn listener_block(&self) -> String {
        let listen = url_host(self.listen);
        format!(
            "listener \"tcp\" {{\n  address = \"{listen}:{port}\"\n  cluster_address = \"{listen}:{cluster}\"\n  \
             tls_cert_file = {cert}\n  tls_key_file = {key}\n  tls_client_ca_file = {ca}\n  \
             tls_require_and_verify_client_cert = true\n  tls_min_version = \"tls12\"\n}}\n",
            port = self.port,
            cluster = self.cluster_port,
            cert = self.file("cert.pem"),
            key = self.file("key.pem"),
            ca = self.file("ca.pem"),
        )
    }

    /// The whole file.
    pub fn render(&self) -> String {
        let host = url_host(self.name);
        format!(
            "{header}\n{storage}\n{listener}\n\
             # A standby sends clients to the active node by its api_addr, and they check\n\
             # its certificate against that name: the node's own, which its certificate has.\n\
             api_addr = \"https://{host}:{port}\"\n\
             cluster_addr = \"https://{host}:{cluster}\"\n\n\
             # OpenBao recommends this with integrated storage, and locking memory needs\n\
             # CAP_IPC_LOCK; where the service has it and swap is not encrypted, consider false.\n\
             disable_mlock = true\n",
            header = self.header(),
            storage = self.storage_block(),
            listener = self.listener_block(),
            port = self.port,
            cluster = self.cluster_port,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_node_is_bracketed_in_urls_and_listen_addresses() {
        let dir = PathBuf::from("/v/nodes/fd00::2");
        let c = ServerConfig {
            name: "fd00::2",
            tls_dir: &dir,
            listen: "fd00::2",
            port: 8200,
            cluster_port: 8201,
            storage: ServerStorage::Raft {
                path: "/r/fd00::2".into(),
                peers: vec!["fd00::3".into()],
            },
        };
        let text = c.render();
        for line in [
            "address = \"[fd00::2]:8200\"",
            "cluster_address = \"[fd00::2]:8201\"",
            "api_addr = \"https://[fd00::2]:8200\"",
            "leader_api_addr = \"https://[fd00::3]:8200\"",
            "node_id = \"fd00::2\"",
        ] {
            assert!(text.contains(line), "{line} missing in:\n{text}");
        }
    }
}
