//! Subject alternative names: parsing `KIND:value`, and validating every kind
//! before anything is signed. Certificates are only as good as the names in
//! them, and a name pasted from a word processor must fail loudly here rather
//! than quietly at a TLS client months later.

use std::fmt;
use std::net::IpAddr;

use crate::support::error::{Error, Result};

/// One subject alternative name, already validated and normalised.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum San {
    Dns(String),
    Ip(IpAddr),
    Email(String),
    Uri(String),
}

impl fmt::Display for San {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            San::Dns(v) => write!(f, "DNS:{v}"),
            San::Ip(v) => write!(f, "IP:{v}"),
            San::Email(v) => write!(f, "EMAIL:{v}"),
            San::Uri(v) => write!(f, "URI:{v}"),
        }
    }
}

impl San {
    /// Parses `DNS:x`, `IP:x`, `EMAIL:x` or `URI:x` (kind case-insensitive).
    pub fn parse(input: &str) -> Result<San> {
        check_typography("SAN", input)?;
        let Some((kind, value)) = input.split_once(':') else {
            return Err(Error::invalid(
                "SAN",
                input,
                "expected KIND:VALUE with KIND one of DNS, IP, EMAIL, URI (e.g. DNS:web.internal)",
            ));
        };
        match kind.to_ascii_uppercase().as_str() {
            "DNS" => Ok(San::Dns(dns_name(value, true)?)),
            "IP" => Ok(San::Ip(ip_address(value)?)),
            "EMAIL" | "RFC822" => Ok(San::Email(email(value)?)),
            "URI" => Ok(San::Uri(uri(value)?)),
            _ => Err(Error::invalid(
                "SAN",
                input,
                format!("unknown kind '{kind}'; expected DNS, IP, EMAIL or URI"),
            )),
        }
    }

    /// A certificate's own NAME: an IP address if it parses as one, else a
    /// host name (no wildcard: a NAME also names an output directory).
    pub fn for_name(name: &str) -> Result<San> {
        check_typography("name", name)?;
        if let Ok(ip) = name.parse::<IpAddr>() {
            return Ok(San::Ip(ip_address(&ip.to_string())?));
        }
        Ok(San::Dns(dns_name(name, false).map_err(|e| match e {
            Error::Invalid {
                value, expected, ..
            } => Error::Invalid {
                what: "name",
                value,
                expected,
            },
            other => other,
        })?))
    }

    pub fn to_rcgen(&self) -> Result<rcgen::SanType> {
        let ia5 = |s: &str| {
            rcgen::string::Ia5String::try_from(s.to_string())
                .map_err(|_| Error::invalid("SAN", s, "must be ASCII"))
        };
        Ok(match self {
            San::Dns(v) => rcgen::SanType::DnsName(ia5(v)?),
            San::Ip(v) => rcgen::SanType::IpAddress(*v),
            San::Email(v) => rcgen::SanType::Rfc822Name(ia5(v)?),
            San::Uri(v) => rcgen::SanType::URI(ia5(v)?),
        })
    }
}

/// A CA's name, the common name of a CA certificate: a label, not a host
/// name; printable ASCII, not blank, at most 64 characters.
pub fn validate_ca_name(name: &str) -> Result<()> {
    check_typography("CA name", name)?;
    if name.trim().is_empty() {
        return Err(Error::invalid("CA name", name, "it is empty"));
    }
    if name.len() > 64 {
        return Err(Error::invalid(
            "CA name",
            name,
            format!(
                "it is {} characters; a common name holds at most 64",
                name.len()
            ),
        ));
    }
    Ok(())
}

/// Characters that word processors and chat tools substitute for ASCII ones.
const LOOKALIKES: &[(char, &str, &str)] = &[
    ('\u{2018}', "LEFT SINGLE QUOTATION MARK", "'"),
    ('\u{2019}', "RIGHT SINGLE QUOTATION MARK", "'"),
    ('\u{201A}', "SINGLE LOW-9 QUOTATION MARK", "'"),
    ('\u{201C}', "LEFT DOUBLE QUOTATION MARK", "\""),
    ('\u{201D}', "RIGHT DOUBLE QUOTATION MARK", "\""),
    ('\u{201E}', "DOUBLE LOW-9 QUOTATION MARK", "\""),
    ('\u{2010}', "HYPHEN", "-"),
    ('\u{2011}', "NON-BREAKING HYPHEN", "-"),
    ('\u{2012}', "FIGURE DASH", "-"),
    ('\u{2013}', "EN DASH", "-"),
    ('\u{2014}', "EM DASH", "-"),
    ('\u{2015}', "HORIZONTAL BAR", "-"),
    ('\u{2212}', "MINUS SIGN", "-"),
    ('\u{00A0}', "NO-BREAK SPACE", " "),
    ('\u{202F}', "NARROW NO-BREAK SPACE", " "),
    ('\u{2007}', "FIGURE SPACE", " "),
    ('\u{2009}', "THIN SPACE", " "),
    ('\u{200B}', "ZERO WIDTH SPACE", ""),
    ('\u{200C}', "ZERO WIDTH NON-JOINER", ""),
    ('\u{200D}', "ZERO WIDTH JOINER", ""),
    ('\u{2060}', "WORD JOINER", ""),
    ('\u{FEFF}', "ZERO WIDTH NO-BREAK SPACE (BOM)", ""),
    ('\u{00AD}', "SOFT HYPHEN", ""),
    ('\u{2024}', "ONE DOT LEADER", "."),
    ('\u{3002}', "IDEOGRAPHIC FULL STOP", "."),
    ('\u{FF0E}', "FULLWIDTH FULL STOP", "."),
    ('\u{FF1A}', "FULLWIDTH COLON", ":"),
    ('\u{2044}', "FRACTION SLASH", "/"),
];

/// Rejects any character outside printable ASCII, naming typographic
/// look-alikes with their 1-based position and code point.
pub fn check_typography(what: &'static str, input: &str) -> Result<()> {
    check_characters(
        what,
        input,
        "write internationalised names in their xn-- (punycode) form",
    )
}

/// [`check_typography`] for text that is not a host name: the same
/// refusals, with `non_ascii_fix` as the advice for other non-ASCII text.
pub fn check_characters(what: &'static str, input: &str, non_ascii_fix: &str) -> Result<()> {
    // Printable ASCII is never refused below: bulk plans check every name
    // several times, so the common case costs one pass over the bytes.
    if input.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Ok(());
    }
    for (index, c) in input.chars().enumerate() {
        let position = index + 1;
        if let Some((_, name, ascii)) = LOOKALIKES.iter().find(|(l, _, _)| *l == c) {
            let fix = if ascii.is_empty() {
                "delete it".to_string()
            } else if *ascii == " " {
                "it is not allowed here".to_string()
            } else {
                format!("retype it as '{ascii}'")
            };
            return Err(Error::invalid(
                what,
                printable(input),
                format!(
                    "character {position} is U+{:04X} {name}, a typographic look-alike (pasted from a word processor?); {fix}",
                    c as u32
                ),
            ));
        }
        if !c.is_ascii() {
            return Err(Error::invalid(
                what,
                printable(input),
                format!(
                    "character {position} is U+{:04X}, which is not ASCII; {non_ascii_fix}",
                    c as u32
                ),
            ));
        }
        if c.is_ascii_control() {
            return Err(Error::invalid(
                what,
                printable(input),
                format!(
                    "character {position} is the control character U+{:04X}",
                    c as u32
                ),
            ));
        }
    }
    Ok(())
}

/// Makes a value safe to echo on one line of a terminal.
pub fn printable(input: &str) -> String {
    input
        .chars()
        .flat_map(|c| c.escape_debug())
        .collect::<String>()
        .replace("\\'", "'")
        .replace("\\\"", "\"")
}

/// Validates a DNS name (RFC 1123 host name; a wildcard only as the whole
/// leftmost label when `allow_wildcard`) and returns it lower-cased.
pub fn dns_name(input: &str, allow_wildcard: bool) -> Result<String> {
    let bad = |why: String| Err(Error::invalid("DNS name", printable(input), why));
    check_typography("DNS name", input)?;
    if input.is_empty() {
        return bad("it is empty".into());
    }
    if input.ends_with('.') {
        return bad("remove the trailing dot".into());
    }
    if input.len() > 253 {
        return bad(format!(
            "it is {} characters long; the limit is 253",
            input.len()
        ));
    }
    let name = input.to_ascii_lowercase();
    let labels: Vec<&str> = name.split('.').collect();
    for (i, label) in labels.iter().enumerate() {
        if *label == "*" {
            if i != 0 {
                return bad("a wildcard '*' may only be the whole leftmost label".into());
            }
            if !allow_wildcard {
                return bad(
                    "a wildcard is not allowed here; give it as an extra --san DNS:*.domain".into(),
                );
            }
            if labels.len() < 3 {
                return bad(
                    "a wildcard needs at least two labels after it (e.g. *.svc.internal)".into(),
                );
            }
            continue;
        }
        if label.is_empty() {
            return bad("it has an empty label (two dots in a row, or a leading dot)".into());
        }
        if label.len() > 63 {
            return bad(format!(
                "label '{label}' is {} characters long; the limit is 63",
                label.len()
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            let why = match c {
                '*' => "a wildcard '*' may only be the whole leftmost label".to_string(),
                '_' => format!("label '{label}' contains '_', which host names may not (RFC 1123)"),
                _ => format!(
                    "label '{label}' contains '{c}'; only letters, digits and '-' are allowed"
                ),
            };
            return bad(why);
        }
        if label.starts_with('-') || label.ends_with('-') {
            return bad(format!("label '{label}' starts or ends with '-'"));
        }
    }
    if labels
        .last()
        .is_some_and(|l| l.chars().all(|c| c.is_ascii_digit()))
    {
        return bad("its last label is all digits, so it looks like an IP address; use IP:".into());
    }
    Ok(name)
}

/// Validates an IP address SAN (v4 dotted quad without leading zeros, or v6).
pub fn ip_address(input: &str) -> Result<IpAddr> {
    check_typography("IP address", input)?;
    let ip: IpAddr = input.parse().map_err(|_| {
        Error::invalid(
            "IP address",
            input,
            "expected an IPv4 address like 10.0.0.5 or an IPv6 address like fd00::5",
        )
    })?;
    if ip.is_unspecified() || ip.is_multicast() {
        return Err(Error::invalid(
            "IP address",
            input,
            "an unspecified or multicast address cannot identify a host",
        ));
    }
    Ok(ip)
}

/// Validates an e-mail SAN: `local@domain`, ASCII only, domain a host name.
pub fn email(input: &str) -> Result<String> {
    check_typography("e-mail address", input)?;
    let Some((local, domain)) = input.rsplit_once('@') else {
        return Err(Error::invalid(
            "e-mail address",
            input,
            "expected local@domain",
        ));
    };
    if local.is_empty() || local.len() > 64 {
        return Err(Error::invalid(
            "e-mail address",
            input,
            "the part before '@' must be 1 to 64 characters",
        ));
    }
    if let Some(c) = local.chars().find(|c| {
        c.is_ascii_whitespace()
            || matches!(
                c,
                '@' | '"' | '(' | ')' | ',' | ':' | ';' | '<' | '>' | '[' | '\\' | ']'
            )
    }) {
        return Err(Error::invalid(
            "e-mail address",
            input,
            format!("'{c}' is not allowed before the '@'"),
        ));
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(Error::invalid(
            "e-mail address",
            input,
            "dots before the '@' may not lead, trail or repeat",
        ));
    }
    let domain = dns_name(domain, false).map_err(|e| match e {
        Error::Invalid { expected, .. } => {
            Error::invalid("e-mail address", input, format!("its domain: {expected}"))
        }
        other => other,
    })?;
    Ok(format!("{local}@{domain}"))
}

/// Validates a URI SAN. SPIFFE IDs get the SPIFFE rules: a lower-case trust
/// domain, no port, user info, query or fragment, and clean path segments.
pub fn uri(input: &str) -> Result<String> {
    check_typography("URI", input)?;
    let bad = |why: &str| Err(Error::invalid("URI", input, why.to_string()));
    let Some((scheme, rest)) = input.split_once(':') else {
        return bad("expected scheme:rest, e.g. spiffe://acme.internal/ns/prod/sa/web");
    };
    let scheme_ok = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return bad("the scheme must start with a letter and contain only letters, digits, '+', '-' and '.'");
    }
    if rest.is_empty() {
        return bad("nothing follows the scheme");
    }
    if let Some(c) = rest.chars().find(|c| {
        c.is_ascii_whitespace() || matches!(c, '<' | '>' | '"' | '{' | '}' | '|' | '\\' | '^' | '`')
    }) {
        return Err(Error::invalid(
            "URI",
            input,
            format!("'{}' must be percent-encoded", c.escape_debug()),
        ));
    }
    if scheme.eq_ignore_ascii_case("spiffe") {
        return spiffe_id(input, rest);
    }
    if let Some(after) = rest.strip_prefix("//") {
        let authority = after.split(['/', '?', '#']).next().unwrap_or("");
        if authority.is_empty() {
            return bad("the authority (host) after '//' is empty");
        }
    }
    Ok(input.to_string())
}

fn spiffe_id(input: &str, rest: &str) -> Result<String> {
    let bad = |why: &str| Err(Error::invalid("SPIFFE ID", input, why.to_string()));
    if !input.starts_with("spiffe:") {
        return bad("the scheme must be written in lower case: spiffe://");
    }
    let Some(after) = rest.strip_prefix("//") else {
        return bad("expected spiffe://trust-domain/path");
    };
    if after.contains(['?', '#']) {
        return bad("a SPIFFE ID may not have a query or fragment");
    }
    let (domain, path) = match after.find('/') {
        Some(i) => (&after[..i], &after[i..]),
        None => (after, ""),
    };
    if domain.is_empty() {
        return bad("the trust domain is empty");
    }
    if domain.contains('@') || domain.contains(':') {
        return bad("the trust domain may not contain user info or a port");
    }
    if !domain
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_'))
    {
        return bad(
            "the trust domain may contain only lower-case letters, digits, '.', '-' and '_'",
        );
    }
    if !path.is_empty() {
        if path.ends_with('/') {
            return bad("the path may not end with '/'");
        }
        for segment in path[1..].split('/') {
            if segment.is_empty() {
                return bad("the path has an empty segment");
            }
            if segment == "." || segment == ".." {
                return bad("the path may not contain '.' or '..' segments");
            }
            if !segment
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            {
                return bad("path segments may contain only letters, digits, '.', '-' and '_'");
            }
        }
    }
    Ok(input.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_rules() {
        assert_eq!(dns_name("Web1.Internal", false).unwrap(), "web1.internal");
        assert!(dns_name("*.svc.internal", true).is_ok());
        assert!(dns_name("*.svc.internal", false).is_err());
        assert!(dns_name("a.*.internal", true).is_err());
        assert!(dns_name("w*.internal", true).is_err());
        assert!(dns_name("*.internal", true).is_err());
        assert!(dns_name(&"a".repeat(64), false).is_err());
        assert!(dns_name(&"a".repeat(63), false).is_ok());
        let long = vec!["abcdefghi"; 26].join(".");
        assert!(long.len() > 253);
        assert!(dns_name(&long, false).is_err());
        assert!(dns_name("-web", false).is_err());
        assert!(dns_name("web-", false).is_err());
        assert!(dns_name("we_b", false).is_err());
        assert!(dns_name("a..b", false).is_err());
        assert!(dns_name("web.", false).is_err());
        assert!(dns_name("1.2.3", false).is_err());
        assert!(dns_name("", false).is_err());
    }

    #[test]
    fn lookalikes_are_named_with_position() {
        let err = San::for_name("web\u{2013}1").unwrap_err().to_string();
        assert!(err.contains("character 4 is U+2013 EN DASH"), "{err}");
        let err = San::parse("DNS:a\u{200B}b").unwrap_err().to_string();
        assert!(err.contains("U+200B ZERO WIDTH SPACE"), "{err}");
        let err = San::for_name("caf\u{e9}").unwrap_err().to_string();
        assert!(err.contains("U+00E9"), "{err}");
    }

    #[test]
    fn san_kinds() {
        assert_eq!(
            San::parse("ip:10.0.0.1").unwrap(),
            San::Ip("10.0.0.1".parse().unwrap())
        );
        assert!(San::parse("IP:10.0.0.01").is_err());
        assert!(San::parse("IP:0.0.0.0").is_err());
        assert!(San::parse("EMAIL:ops@acme.internal").is_ok());
        assert!(San::parse("EMAIL:opsacme.internal").is_err());
        assert!(San::parse("URI:spiffe://acme.internal/ns/prod/sa/web").is_ok());
        assert!(San::parse("URI:spiffe://Acme/ns").is_err());
        assert!(San::parse("URI:spiffe://acme/ns/../x").is_err());
        assert!(San::parse("URI:spiffe://acme/ns/").is_err());
        assert!(San::parse("URI:https://x.internal/a b").is_err());
        assert!(San::parse("FOO:x").is_err());
        assert!(San::parse("web").is_err());
        assert_eq!(
            San::for_name("10.1.2.3").unwrap(),
            San::Ip("10.1.2.3".parse().unwrap())
        );
    }
}
