//! A registry's `HOST[:PORT]` as Docker, Podman and containerd name it:
//! a host name or IP address, an optional port, and the certs.d folder
//! name those clients look up for it.

use std::net::{IpAddr, Ipv6Addr};

use crate::pki::names::{self, San};
use crate::support::error::{Error, Result};

/// The port Docker assumes when an image reference has none.
pub const DEFAULT_PORT: u16 = 443;

/// One `HOST[:PORT]` as given: a host name or IP address and an optional port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    pub san: San,
    pub port: Option<u16>,
}

/// A port number from 1 to 65535, written in decimal digits only.
pub fn parse_port(p: &str) -> Option<u16> {
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse::<u32>()
        .ok()
        .filter(|n| (1..=65535).contains(n))
        .map(|n| n as u16)
}

impl Host {
    /// Parses `registry.internal`, `registry.internal:5000`, `10.0.0.5:5000`,
    /// `[fd00::5]:5000` or `fd00::5`.
    pub fn parse(input: &str) -> Result<Host> {
        const WHAT: &str = "registry host";
        names::check_typography(WHAT, input)?;
        let bad = |why: String| Error::invalid(WHAT, names::printable(input), why);
        let (host, port) = if let Some(rest) = input.strip_prefix('[') {
            let (addr, after) = rest.split_once(']').ok_or_else(|| {
                bad("a '[' is not closed; write an IPv6 address as [fd00::5]:5000".into())
            })?;
            if addr.parse::<Ipv6Addr>().is_err() {
                return Err(bad(format!(
                    "'{addr}' is not an IPv6 address; only those go in [brackets]"
                )));
            }
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| bad(format!("expected :PORT after ']', found '{p}'")))?,
                ),
            };
            (addr, port)
        } else if input.matches(':').count() > 1 {
            if input.parse::<Ipv6Addr>().is_err() {
                return Err(bad(
                    "expected HOST[:PORT]; write an IPv6 address with a port as [ADDR]:PORT".into(),
                ));
            }
            (input, None)
        } else {
            match input.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (input, None),
            }
        };
        let port = port
            .map(|p| {
                parse_port(p).ok_or_else(|| {
                    bad(format!(
                        "the port '{p}' is not a number from 1 to 65535; expected HOST[:PORT]"
                    ))
                })
            })
            .transpose()?;
        if host.is_empty() {
            return Err(bad("the host is empty; expected HOST[:PORT]".into()));
        }
        let san = San::for_name(host).map_err(|e| match e {
            Error::Invalid { expected, .. } => bad(expected),
            other => other,
        })?;
        Ok(Host { san, port })
    }

    /// The host without port or brackets: the name that goes in a SAN.
    pub fn name(&self) -> String {
        match &self.san {
            San::Dns(d) => d.clone(),
            San::Ip(ip) => ip.to_string(),
            other => other.to_string(),
        }
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(DEFAULT_PORT)
    }

    /// The host as it appears in an image reference (IPv6 in brackets).
    pub fn reference_host(&self) -> String {
        match &self.san {
            San::Ip(IpAddr::V6(v6)) => format!("[{v6}]"),
            _ => self.name(),
        }
    }

    /// The certs.d directory Docker and Podman look in for this host.
    pub fn certs_d_dir(&self) -> String {
        match self.port() {
            DEFAULT_PORT => self.reference_host(),
            p => format!("{}:{p}", self.reference_host()),
        }
    }
}

/// The file names of a containerd registry folder (`certs.d/HOSTDIR/`).
pub const CONTAINERD_HOSTS_FILE: &str = "hosts.toml";
pub const CONTAINERD_CA_FILE: &str = "ca.crt";
pub const CONTAINERD_CLIENT_CERT_FILE: &str = "client.cert";
pub const CONTAINERD_CLIENT_KEY_FILE: &str = "client.key";

/// A TOML basic string.
fn toml_quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// containerd's hosts.toml for `host`, written by `writer` (a uca
/// command): the registry itself is the server and the one host, trusted
/// to pull and resolve (containerd never pushes through this
/// configuration), with the CA and, when `client`, the client pair beside
/// it, by paths relative to the folder as containerd resolves them.
pub fn containerd_hosts_toml(host: &Host, client: bool, writer: &str) -> String {
    let url = format!("https://{}", host.certs_d_dir());
    let mut t = format!(
        "# Written by {writer} for {host}: copy this folder into\n\
         # containerd's config_path (e.g. /etc/containerd/certs.d/).\n\
         server = {}\n\n[host.{}]\n  capabilities = [\"pull\", \"resolve\"]\n  ca = {}\n",
        toml_quoted(&url),
        toml_quoted(&url),
        toml_quoted(CONTAINERD_CA_FILE)
    );
    if client {
        t.push_str(&format!(
            "  client = [[{}, {}]]\n",
            toml_quoted(CONTAINERD_CLIENT_CERT_FILE),
            toml_quoted(CONTAINERD_CLIENT_KEY_FILE)
        ));
    }
    t
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.port {
            Some(p) => write!(f, "{}:{p}", self.reference_host()),
            None => f.write_str(&self.reference_host()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_parse() {
        let h = Host::parse("Registry.Internal:5000").unwrap();
        assert_eq!(h.name(), "registry.internal");
        assert_eq!(h.certs_d_dir(), "registry.internal:5000");
        let h = Host::parse("registry.internal").unwrap();
        assert_eq!(
            (h.port(), h.certs_d_dir().as_str()),
            (443, "registry.internal")
        );
        assert_eq!(
            Host::parse("r.internal:443").unwrap().certs_d_dir(),
            "r.internal"
        );
        assert_eq!(
            Host::parse("10.0.0.5:5000").unwrap().certs_d_dir(),
            "10.0.0.5:5000"
        );
        let h = Host::parse("[fd00::5]:5000").unwrap();
        assert_eq!(
            (h.name().as_str(), h.certs_d_dir().as_str()),
            ("fd00::5", "[fd00::5]:5000")
        );
        assert_eq!(Host::parse("fd00::5").unwrap().certs_d_dir(), "[fd00::5]");
        for bad in [
            "r.internal:99999",
            "r.internal:0",
            "r.internal:",
            "r.internal:+50",
            "r.internal:50x",
            "bad_host",
            ":5000",
            "[fd00::5",
            "[r.internal]:5000",
            "[fd00::5]5000",
            "a:b:c",
        ] {
            assert!(Host::parse(bad).is_err(), "{bad} parsed");
        }
        let e = Host::parse("r.internal:99999").unwrap_err().to_string();
        assert!(
            e.contains("'r.internal:99999'") && e.contains("1 to 65535"),
            "{e}"
        );
    }
}
