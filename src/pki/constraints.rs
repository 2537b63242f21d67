//! X.509 name constraints (`--permit`): written into the CA certificate and
//! enforced by uca itself before signing, because rcgen does not enforce them
//! and a refused certificate is better found at issue time than at 4 a.m.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::pki::names::{self, San};
use crate::support::error::{Error, Result};

/// One permitted subtree: a DNS suffix or an IP range.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Permit {
    Dns(String),
    Ip { network: IpAddr, prefix: u8 },
}

impl fmt::Display for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Permit::Dns(d) => write!(f, "{d}"),
            Permit::Ip { network, prefix } => write!(f, "{network}/{prefix}"),
        }
    }
}

impl From<Permit> for String {
    fn from(p: Permit) -> String {
        p.to_string()
    }
}

impl TryFrom<String> for Permit {
    type Error = Error;
    fn try_from(s: String) -> Result<Permit> {
        Permit::parse(&s)
    }
}

impl Permit {
    /// `internal`, `.internal`, `acme.internal` (DNS suffix) or `10.0.0.0/8`,
    /// `fd00::/8` (IP range, host bits must be zero).
    pub fn parse(input: &str) -> Result<Permit> {
        names::check_typography("--permit value", input)?;
        if let Some((addr, prefix)) = input.split_once('/') {
            let expected = "expected a DNS suffix like internal or an IP range like 10.0.0.0/8";
            let network: IpAddr = addr
                .parse()
                .map_err(|_| Error::invalid("--permit value", input, expected))?;
            let max = if network.is_ipv4() { 32 } else { 128 };
            let prefix: u8 = prefix.parse().ok().filter(|p| *p <= max).ok_or_else(|| {
                Error::invalid(
                    "--permit value",
                    input,
                    format!("the prefix length must be 0 to {max}"),
                )
            })?;
            if mask(network, prefix) != network {
                return Err(Error::invalid(
                    "--permit value",
                    input,
                    format!(
                        "host bits are set; did you mean {}/{prefix}?",
                        mask(network, prefix)
                    ),
                ));
            }
            return Ok(Permit::Ip { network, prefix });
        }
        if input.parse::<IpAddr>().is_ok() {
            return Err(Error::invalid(
                "--permit value",
                input,
                "a single address needs a prefix length, e.g. 10.0.0.5/32",
            ));
        }
        let suffix = input.strip_prefix('.').unwrap_or(input);
        let dns = names::dns_name(suffix, false).map_err(|e| match e {
            Error::Invalid { expected, .. } => Error::invalid("--permit value", input, expected),
            other => other,
        })?;
        Ok(Permit::Dns(dns))
    }

    fn permits(&self, san: &San) -> bool {
        match (self, san) {
            (Permit::Dns(suffix), San::Dns(name)) => {
                let name = name.strip_prefix("*.").unwrap_or(name);
                name == suffix || name.ends_with(&format!(".{suffix}"))
            }
            (Permit::Ip { network, prefix }, San::Ip(ip)) => {
                network.is_ipv4() == ip.is_ipv4() && mask(*ip, *prefix) == *network
            }
            _ => false,
        }
    }

    /// The kind of name this permit constrains. IPv4 and IPv6 are kinds of
    /// their own: clients match an address only against ranges of its family.
    fn kind(&self) -> &'static str {
        match self {
            Permit::Dns(_) => "DNS",
            Permit::Ip { network, .. } if network.is_ipv4() => "IPv4",
            Permit::Ip { .. } => "IPv6",
        }
    }

    /// Whether every name this permit allows is also allowed by `outer`.
    pub fn within(&self, outer: &Permit) -> bool {
        match (self, outer) {
            (Permit::Dns(inner), Permit::Dns(outer)) => {
                inner == outer || inner.ends_with(&format!(".{outer}"))
            }
            (
                Permit::Ip { network, prefix },
                Permit::Ip {
                    network: outer_net,
                    prefix: outer_prefix,
                },
            ) => {
                network.is_ipv4() == outer_net.is_ipv4()
                    && prefix >= outer_prefix
                    && mask(*network, *outer_prefix) == *outer_net
            }
            _ => false,
        }
    }

    fn constrains(&self, san: &San) -> bool {
        matches!(
            (self, san),
            (Permit::Dns(_), San::Dns(_)) | (Permit::Ip { .. }, San::Ip(_))
        )
    }

    pub fn to_rcgen(&self) -> rcgen::GeneralSubtree {
        match self {
            Permit::Dns(d) => rcgen::GeneralSubtree::DnsName(d.clone()),
            Permit::Ip { network, prefix } => rcgen::GeneralSubtree::IpAddress(
                rcgen::CidrSubnet::from_addr_prefix(*network, *prefix),
            ),
        }
    }
}

fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let m = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - prefix)
            };
            IpAddr::V4((bits & m).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let m = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - prefix)
            };
            IpAddr::V6((bits & m).into())
        }
    }
}

/// The CA's permitted subtrees. As in RFC 5280, a name type with no permit
/// of its own kind is unconstrained: DNS permits do not restrict IP SANs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NameConstraints(pub Vec<Permit>);

impl NameConstraints {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Refuses a SAN the CA's name constraints do not permit.
    pub fn check(&self, san: &San) -> Result<()> {
        let relevant: Vec<&Permit> = self.0.iter().filter(|p| p.constrains(san)).collect();
        if relevant.is_empty() || relevant.iter().any(|p| p.permits(san)) {
            return Ok(());
        }
        let allowed = relevant
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        Err(Error::invalid(
            "SAN",
            san.to_string(),
            format!("outside the CA's name constraints (permitted: {allowed})"),
        ))
    }

    /// These constraints narrowed by `narrower` (for an intermediate): each
    /// kind of name it names (DNS, IPv4, IPv6) is replaced by its permits,
    /// and every other kind keeps these constraints, so narrowing DNS never
    /// frees IP addresses. A kind these constraints leave open stays open
    /// unless `narrower` names it. Returns the first permit that is not
    /// within these constraints as the error.
    pub fn narrowed(&self, narrower: &[Permit]) -> std::result::Result<NameConstraints, Permit> {
        for p in narrower {
            let same_kind: Vec<&Permit> = self.0.iter().filter(|r| r.kind() == p.kind()).collect();
            if !same_kind.is_empty() && !same_kind.iter().any(|r| p.within(r)) {
                return Err(p.clone());
            }
        }
        let mut out: Vec<Permit> = self
            .0
            .iter()
            .filter(|r| !narrower.iter().any(|p| p.kind() == r.kind()))
            .cloned()
            .collect();
        out.extend(narrower.iter().cloned());
        Ok(NameConstraints(out))
    }

    pub fn to_rcgen(&self) -> Option<rcgen::NameConstraints> {
        if self.0.is_empty() {
            return None;
        }
        Some(rcgen::NameConstraints {
            permitted_subtrees: self.0.iter().map(Permit::to_rcgen).collect(),
            excluded_subtrees: Vec::new(),
        })
    }

    /// Reads the permitted subtrees of a CA certificate, so a CA directory
    /// whose settings were edited still enforces what the certificate says.
    pub fn from_certificate(cert: &x509_parser::certificate::X509Certificate<'_>) -> Result<Self> {
        use x509_parser::extensions::{GeneralName, ParsedExtension};
        let mut permits = Vec::new();
        for ext in cert.extensions() {
            if let ParsedExtension::NameConstraints(nc) = ext.parsed_extension() {
                if nc.excluded_subtrees.as_ref().is_some_and(|e| !e.is_empty()) {
                    return Err(Error::msg(
                        "the CA certificate has excluded name subtrees, which uca does not support",
                    ));
                }
                for subtree in nc.permitted_subtrees.iter().flatten() {
                    match &subtree.base {
                        GeneralName::DNSName(d) => permits.push(Permit::Dns(d.trim_start_matches('.').to_ascii_lowercase())),
                        GeneralName::IPAddress(bytes) => permits.push(ip_subtree(bytes)?),
                        other => {
                            return Err(Error::msg(format!(
                                "the CA certificate has a name constraint uca does not support: {other:?}"
                            )))
                        }
                    }
                }
            }
        }
        Ok(NameConstraints(permits))
    }
}

fn ip_subtree(bytes: &[u8]) -> Result<Permit> {
    let prefix_of = |mask: &[u8]| mask.iter().map(|b| b.count_ones() as u8).sum::<u8>();
    match bytes.len() {
        8 => {
            let a: [u8; 4] = bytes[..4].try_into().expect("length checked");
            Ok(Permit::Ip {
                network: IpAddr::from(a),
                prefix: prefix_of(&bytes[4..]),
            })
        }
        32 => {
            let a: [u8; 16] = bytes[..16].try_into().expect("length checked");
            Ok(Permit::Ip {
                network: IpAddr::from(a),
                prefix: prefix_of(&bytes[16..]),
            })
        }
        _ => Err(Error::msg(
            "the CA certificate has a malformed IP name constraint",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits() {
        let nc = NameConstraints(vec![
            Permit::parse(".internal").unwrap(),
            Permit::parse("10.0.0.0/8").unwrap(),
        ]);
        assert!(nc.check(&San::Dns("web.internal".into())).is_ok());
        assert!(nc.check(&San::Dns("internal".into())).is_ok());
        assert!(nc.check(&San::Dns("*.svc.internal".into())).is_ok());
        assert!(nc.check(&San::Dns("webinternal".into())).is_err());
        assert!(nc.check(&San::Dns("web.example.com".into())).is_err());
        assert!(nc.check(&San::Ip("10.9.9.9".parse().unwrap())).is_ok());
        assert!(nc.check(&San::Ip("192.168.0.1".parse().unwrap())).is_err());
        assert!(nc.check(&San::Ip("::1".parse().unwrap())).is_err());
        assert!(nc.check(&San::Email("a@b.com".into())).is_ok());
        assert!(Permit::parse("10.0.0.1/8")
            .unwrap_err()
            .to_string()
            .contains("10.0.0.0/8"));
        assert!(Permit::parse("10.0.0.1").is_err());
        assert!(Permit::parse("10.0.0.0/33").is_err());
    }

    #[test]
    fn narrowing_keeps_the_other_kinds() {
        let p = |t: &str| Permit::parse(t).unwrap();
        let root = NameConstraints(vec![p("internal"), p("10.0.0.0/8"), p("fd00::/8")]);
        let dns = root.narrowed(&[p("svc.internal")]).unwrap();
        assert_eq!(dns.0, [p("10.0.0.0/8"), p("fd00::/8"), p("svc.internal")]);
        let v4 = root.narrowed(&[p("10.1.0.0/16")]).unwrap();
        assert_eq!(v4.0, [p("internal"), p("fd00::/8"), p("10.1.0.0/16")]);
        let v6 = root.narrowed(&[p("fd00:1::/32")]).unwrap();
        assert_eq!(v6.0, [p("internal"), p("10.0.0.0/8"), p("fd00:1::/32")]);
        assert_eq!(root.narrowed(&[p("evil.com")]), Err(p("evil.com")));
        assert_eq!(root.narrowed(&[p("0.0.0.0/0")]), Err(p("0.0.0.0/0")));
        assert_eq!(root.narrowed(&[p("11.0.0.0/8")]), Err(p("11.0.0.0/8")));
        assert_eq!(root.narrowed(&[p("internalx")]), Err(p("internalx")));
        // An open kind stays open unless narrowed.
        let open = NameConstraints::default();
        assert_eq!(open.narrowed(&[p("internal")]).unwrap().0, [p("internal")]);
    }
}
