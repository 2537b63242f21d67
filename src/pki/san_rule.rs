//! SAN rules: how a team describes its naming scheme once, so that `rmq1`
//! also answers as `rmq` and as `rmq.svc.internal` without listing every name.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::pki::names::{self, San};
use crate::support::error::{Error, Result};

/// One rule that derives extra SANs from a certificate's NAME.
///
/// * `base`: NAME without the trailing digits of its first label (`web12` ->
///   `web`, `rmq1.prod` -> `rmq.prod`), so that a numbered instance also
///   answers to the name its whole group shares. The default.
/// * `none`: no derived names at all (NAME itself is always present).
/// * a template such as `{name}.svc.internal`, `{base}.svc.internal` or
///   `URI:spiffe://acme.internal/ns/prod/sa/{base}` (DNS unless a `KIND:` is given).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum SanRule {
    Base,
    None,
    Template(String),
}

impl fmt::Display for SanRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SanRule::Base => f.write_str("base"),
            SanRule::None => f.write_str("none"),
            SanRule::Template(t) => f.write_str(t),
        }
    }
}

impl From<SanRule> for String {
    fn from(r: SanRule) -> String {
        r.to_string()
    }
}

impl TryFrom<String> for SanRule {
    type Error = Error;
    fn try_from(s: String) -> Result<SanRule> {
        SanRule::parse(&s)
    }
}

impl SanRule {
    pub fn parse(input: &str) -> Result<SanRule> {
        names::check_typography("SAN rule", input)?;
        match input {
            "base" => return Ok(SanRule::Base),
            "none" => return Ok(SanRule::None),
            _ => {}
        }
        let mut rest = input;
        while let Some(open) = rest.find('{') {
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| Error::invalid("SAN rule", input, "a '{' is not closed"))?;
            let placeholder = &rest[open + 1..open + close];
            if !PLACEHOLDERS.contains(&placeholder) {
                return Err(Error::invalid(
                    "SAN rule",
                    input,
                    format!("unknown placeholder {{{placeholder}}}; use {{name}}, {{base}}, {{host}} or {{hostbase}}"),
                ));
            }
            rest = &rest[open + close + 1..];
        }
        if rest.contains('}') {
            return Err(Error::invalid(
                "SAN rule",
                input,
                "a '}' has no matching '{'",
            ));
        }
        if !PLACEHOLDERS
            .iter()
            .any(|p| input.contains(&format!("{{{p}}}")))
        {
            return Err(Error::invalid(
                "SAN rule",
                input,
                "expected base, none, or a template containing {name}, {base}, {host} or {hostbase} (e.g. {base}.svc.internal); use --san for fixed names",
            ));
        }
        // Check the template's shape with a sample name now, so a broken rule
        // fails before any certificate is made.
        SanRule::Template(input.to_string()).expand_one("sample1")?;
        Ok(SanRule::Template(input.to_string()))
    }

    fn expand_one(&self, name: &str) -> Result<Option<San>> {
        match self {
            SanRule::None => Ok(None),
            SanRule::Base => {
                let base = base_name(name);
                if base.is_empty() || base == name {
                    return Ok(None);
                }
                San::for_name(&base).map(Some)
            }
            // Templates describe host names; an IP address has none.
            SanRule::Template(_) if name.parse::<std::net::IpAddr>().is_ok() => Ok(None),
            SanRule::Template(t) => {
                let host = name.split('.').next().unwrap_or(name);
                let text = t
                    .replace("{name}", name)
                    .replace("{base}", &base_or_name(name))
                    .replace("{hostbase}", &base_or_name(host))
                    .replace("{host}", host);
                let has_kind = text.split_once(':').is_some_and(|(k, _)| {
                    matches!(
                        k.to_ascii_uppercase().as_str(),
                        "DNS" | "IP" | "EMAIL" | "URI"
                    )
                });
                let san = if has_kind {
                    San::parse(&text)
                } else {
                    San::parse(&format!("DNS:{text}"))
                };
                san.map(Some).map_err(|e| {
                    Error::msg(format!("SAN rule '{t}' gives a bad name for '{name}': {e}"))
                })
            }
        }
    }
}

/// Template placeholders: `{name}` = NAME (`web1.internal`), `{base}` = NAME
/// without the trailing digits of its first label (`web.internal`), `{host}`
/// = NAME's first label (`web1`), `{hostbase}` = that label without its
/// trailing digits (`web`).
const PLACEHOLDERS: &[&str] = &["name", "base", "host", "hostbase"];

/// NAME without the trailing digits (and a dangling '-') of its first label.
pub fn base_name(name: &str) -> String {
    let (first, rest) = match name.find('.') {
        Some(i) => (&name[..i], &name[i..]),
        None => (name, ""),
    };
    if name.parse::<std::net::IpAddr>().is_ok() {
        return name.to_string();
    }
    let stripped = first
        .trim_end_matches(|c: char| c.is_ascii_digit())
        .trim_end_matches('-');
    if stripped.is_empty() {
        return String::new();
    }
    format!("{stripped}{rest}")
}

fn base_or_name(name: &str) -> String {
    let b = base_name(name);
    if b.is_empty() {
        name.to_string()
    } else {
        b
    }
}

/// The SANs of a certificate named NAME: NAME first, then each rule's names
/// and the explicit extras, without duplicates, in a stable order.
pub fn sans_for(name: &str, rules: &[SanRule], extra: &[San]) -> Result<Vec<San>> {
    let mut sans = vec![San::for_name(name)?];
    for rule in rules {
        if let Some(san) = rule.expand_one(name)? {
            if !sans.contains(&san) {
                sans.push(san);
            }
        }
    }
    for san in extra {
        if !sans.contains(san) {
            sans.push(san.clone());
        }
    }
    Ok(sans)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_names() {
        assert_eq!(base_name("rmq1"), "rmq");
        assert_eq!(base_name("web12"), "web");
        assert_eq!(base_name("web-3"), "web");
        assert_eq!(base_name("rmq1.prod"), "rmq.prod");
        assert_eq!(base_name("db"), "db");
        assert_eq!(base_name("123"), "");
        assert_eq!(base_name("10.0.0.1"), "10.0.0.1");
    }

    #[test]
    fn rules_expand() {
        let rules = vec![
            SanRule::Base,
            SanRule::parse("{base}.svc.internal").unwrap(),
            SanRule::parse("URI:spiffe://acme.internal/sa/{base}").unwrap(),
        ];
        let dotted = sans_for(
            "web12.prod.internal",
            &[
                SanRule::parse("{hostbase}.svc.internal").unwrap(),
                SanRule::parse("{host}.lb.internal").unwrap(),
            ],
            &[],
        )
        .unwrap();
        let dotted: Vec<String> = dotted.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            dotted,
            [
                "DNS:web12.prod.internal",
                "DNS:web.svc.internal",
                "DNS:web12.lb.internal"
            ]
        );
        let sans: Vec<String> = sans_for("rmq1", &rules, &[])
            .unwrap()
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            sans,
            [
                "DNS:rmq1",
                "DNS:rmq",
                "DNS:rmq.svc.internal",
                "URI:spiffe://acme.internal/sa/rmq"
            ]
        );
        let sans = sans_for("db", &[SanRule::Base], &[]).unwrap();
        assert_eq!(sans.len(), 1);
        assert!(SanRule::parse("{nam}.x").is_err());
        assert!(SanRule::parse("fixed.internal").is_err());
        assert!(SanRule::parse("{name}..x").is_err());
    }
}
