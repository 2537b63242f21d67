//! Vault/OpenBao storage in PostgreSQL over mutual TLS: the one storage
//! backend besides raft that OpenBao ships, and the one reached over the
//! network. uca issues the database server's certificate and the client
//! identity Vault presents; PostgreSQL's `cert` authentication takes the role
//! name from that certificate's CN, so no password exists anywhere.
//!
//! ```text
//! OUT/storage/server/{cert,key,chain,ca}.pem   PostgreSQL's ssl_cert_file ...
//! OUT/storage/client/{cert,key,chain,ca}.pem   what Vault presents (CN = role)
//! OUT/storage.hcl                              storage "postgresql" { ... }
//! ```

use std::path::Path;

use crate::support::error::{Error, Result};

/// Where Vault's PostgreSQL storage lives, from
/// `postgresql://ROLE@HOST[:PORT]/DATABASE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostgresStorage {
    /// The database role; the client certificate's CN.
    pub role: String,
    /// The name or IP address Vault connects to; the server certificate's.
    pub host: String,
    pub port: u16,
    pub database: String,
}

pub const DEFAULT_PORT: u16 = 5432;

fn bad(url: &str, expected: &str) -> Error {
    Error::invalid("--storage", url, expected)
}

impl PostgresStorage {
    pub fn parse(url: &str) -> Result<PostgresStorage> {
        const FORM: &str = "expected postgresql://ROLE@HOST[:PORT]/DATABASE";
        let rest = url
            .strip_prefix("postgresql://")
            .or_else(|| url.strip_prefix("postgres://"))
            .ok_or_else(|| bad(url, FORM))?;
        if rest.contains('?') || rest.contains('#') {
            return Err(bad(
                url,
                "no query or fragment: uca writes the TLS parameters itself (postgresql://ROLE@HOST[:PORT]/DATABASE)",
            ));
        }
        let (userinfo, hostpath) = rest.rsplit_once('@').ok_or_else(|| {
            bad(
                url,
                "a ROLE@ part: the role is the client certificate's CN (postgresql://ROLE@HOST[:PORT]/DATABASE)",
            )
        })?;
        if userinfo.contains(':') {
            return Err(bad(
                url,
                "no password: the client certificate authenticates Vault, and secrets never go on the command line",
            ));
        }
        let (hostport, database) = hostpath.split_once('/').ok_or_else(|| bad(url, FORM))?;
        let (host, port) = split_host_port(hostport).ok_or_else(|| {
            bad(
                url,
                "HOST or HOST:PORT with a port from 1 to 65535 ([v6]:PORT for IPv6)",
            )
        })?;
        let name_ok =
            |s: &str| !s.is_empty() && s.len() <= 63 && s.bytes().all(|b| b.is_ascii_graphic());
        if !name_ok(userinfo) || userinfo.parse::<std::net::IpAddr>().is_ok() {
            return Err(bad(
                url,
                "a role name (becomes the client certificate's CN, e.g. openbao or vault.db.internal)",
            ));
        }
        if !name_ok(database) || database.contains('/') {
            return Err(bad(url, "a database name after the host, e.g. /openbao"));
        }
        Ok(PostgresStorage {
            role: userinfo.to_string(),
            host,
            port,
            database: database.to_string(),
        })
    }

    /// The connection URL for Vault: verify-full checks the server's
    /// certificate and name; sslcert/sslkey are Vault's identity.
    pub fn connection_url(&self, client_dir: &Path) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let file = |f: &str| percent_encode(&client_dir.join(f).display().to_string());
        format!(
            "postgres://{role}@{host}:{port}/{db}?sslmode=verify-full&sslrootcert={ca}&sslcert={cert}&sslkey={key}",
            role = percent_encode(&self.role),
            port = self.port,
            db = percent_encode(&self.database),
            ca = file("ca.pem"),
            cert = file("cert.pem"),
            key = file("key.pem"),
        )
    }

    /// `storage "postgresql"` for Vault, with the PostgreSQL side's settings
    /// as comments (they belong to the database server, not to Vault).
    pub fn stanza(&self, server_dir: &Path, client_dir: &Path) -> String {
        let server = |f: &str| server_dir.join(f).display().to_string().replace('\'', "''");
        let mut s = String::from(
            "# Vault/OpenBao storage in PostgreSQL with mutual TLS, from uca vault tls.\n\
             # On the PostgreSQL server (postgresql.conf; the key file must belong to\n\
             # the postgres user and stay mode 0600):\n",
        );
        s.push_str(&format!(
            "#   ssl = on\n#   ssl_cert_file = '{}'\n#   ssl_key_file = '{}'\n#   ssl_ca_file = '{}'\n",
            server("cert.pem"),
            server("key.pem"),
            server("ca.pem"),
        ));
        s.push_str(&format!(
            "# pg_hba.conf (cert: the client certificate's CN must equal the role):\n\
             #   hostssl {db} {role} 0.0.0.0/0 cert\n\
             #   hostssl {db} {role} ::/0 cert\n\
             # and, once: CREATE ROLE \"{role}\" LOGIN; CREATE DATABASE \"{db}\" OWNER \"{role}\";\n",
            db = self.database,
            role = self.role,
        ));
        s.push_str(&format!(
            "storage \"postgresql\" {{\n  connection_url = \"{}\"\n}}\n",
            self.connection_url(client_dir)
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
        ));
        s
    }
}

/// `host`, `host:port` or `[v6]:port`; the port defaults to 5432.
fn split_host_port(s: &str) -> Option<(String, u16)> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        match after {
            "" => (h, None),
            p => (h, Some(p.strip_prefix(':')?)),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, Some(p)),
            Some(_) => return None,
            None => (s, None),
        }
    };
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => return None,
        },
    };
    (!host.is_empty()).then(|| (host.to_string(), port))
}

/// RFC 3986 percent-encoding of everything but unreserved characters and
/// '/', so file paths with spaces or '&' survive inside the URL.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_people_write() {
        let p = PostgresStorage::parse("postgresql://openbao@db.internal/openbao").unwrap();
        assert_eq!(
            p,
            PostgresStorage {
                role: "openbao".into(),
                host: "db.internal".into(),
                port: 5432,
                database: "openbao".into()
            }
        );
        let p =
            PostgresStorage::parse("postgres://vault.db.internal@[fd00::5]:6432/vault").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("fd00::5", 6432));
        let p = PostgresStorage::parse("postgres://r@10.0.0.5:5433/d").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("10.0.0.5", 5433));
    }

    #[test]
    fn refuses_passwords_queries_and_missing_parts() {
        for (url, needle) in [
            ("mysql://r@h/d", "postgresql://ROLE@HOST"),
            ("postgresql://r:secret@h/d", "no password"),
            ("postgresql://h/d", "ROLE@"),
            ("postgresql://r@h", "postgresql://ROLE@HOST"),
            ("postgresql://r@h/", "database name"),
            ("postgresql://r@h:0/d", "port from 1"),
            ("postgresql://r@h:70000/d", "port from 1"),
            ("postgresql://r@h:+5/d", "port from 1"),
            ("postgresql://r@fd00::5/d", "[v6]:PORT"),
            ("postgresql://r@h/d?sslmode=disable", "no query"),
            ("postgresql://10.0.0.1@h/d", "role name"),
            ("postgresql://@h/d", "role name"),
        ] {
            let e = PostgresStorage::parse(url).unwrap_err().to_string();
            assert!(e.contains(needle), "{url}: {e}");
            assert!(e.contains(url), "{url}: {e}");
        }
    }

    #[test]
    fn the_url_encodes_paths_and_asks_for_full_verification() {
        let p = PostgresStorage::parse("postgresql://openbao@db.internal:5433/openbao").unwrap();
        let url = p.connection_url(Path::new("/srv/a b&c/storage/client"));
        assert_eq!(
            url,
            "postgres://openbao@db.internal:5433/openbao?sslmode=verify-full\
             &sslrootcert=/srv/a%20b%26c/storage/client/ca.pem\
             &sslcert=/srv/a%20b%26c/storage/client/cert.pem\
             &sslkey=/srv/a%20b%26c/storage/client/key.pem"
        );
    }
}
