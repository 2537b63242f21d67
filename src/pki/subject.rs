//! Subject templates: `--subject 'O=Acme,OU={group},CN={name}'` (and a plan
//! group's `subject = ...`) for the services that read identity from a
//! certificate's subject (PostgreSQL `cert` authentication, mosquitto
//! `use_subject_as_username`, RabbitMQ's EXTERNAL mechanism).
//!
//! The syntax is RFC 4514's (`,` between attributes, `\` escapes of the
//! special characters or of two hex digits); the attributes are encoded in
//! the order written, which is the order `openssl x509 -subject` prints.
//! Values take the SAN-rule placeholders plus `{group}`. uca refuses what
//! it cannot encode faithfully rather than change it: a multi-valued RDN
//! (`+`) and an attribute type given twice (rcgen keeps one value per type),
//! hence also DC, which a domain name needs once per label.

use rcgen::{DistinguishedName, DnType, DnValue};

use crate::pki::names;
use crate::support::error::{Error, Result, Spelling};

/// The attribute types a template may use, with their RFC 4514 names, OIDs
/// and upper bounds (RFC 5280 Appendix A).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Attribute {
    CommonName,
    Organization,
    OrganizationalUnit,
    Country,
    State,
    Locality,
    Street,
    UserId,
    SerialNumber,
    Title,
}

/// Name, attribute, longest value. A lookup table, kept in one place.
const ATTRIBUTES: &[(&str, Attribute, usize)] = &[
    ("CN", Attribute::CommonName, 64),
    ("O", Attribute::Organization, 64),
    ("OU", Attribute::OrganizationalUnit, 64),
    ("C", Attribute::Country, 2),
    ("ST", Attribute::State, 128),
    ("L", Attribute::Locality, 128),
    ("STREET", Attribute::Street, 128),
    ("UID", Attribute::UserId, 256),
    ("serialNumber", Attribute::SerialNumber, 64),
    ("title", Attribute::Title, 64),
];

const KNOWN: &str = "CN, O, OU, C, ST, L, STREET, UID, serialNumber or title";

/// ISO 3166-1 alpha-2 country codes (with XK), and XX for "unknown" as the
/// CA/Browser Forum allows: the codes pkilint accepts. A lookup table.
const COUNTRIES: &str = concat!(
    "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI ",
    "BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN ",
    "CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK ",
    "FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM ",
    "HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN ",
    "KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ",
    "ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP ",
    "NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW ",
    "SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF ",
    "TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI ",
    "VN VU WF WS XK YE YT ZA ZM ZW ",
    "XX"
);

/// Placeholders a value may hold: the SAN rules' and the plan group's name.
const PLACEHOLDERS: &[&str] = &["name", "base", "host", "hostbase", "group"];

impl Attribute {
    fn name(self) -> &'static str {
        ATTRIBUTES
            .iter()
            .find(|(_, a, _)| *a == self)
            .map(|(n, _, _)| *n)
            .expect("every attribute is in the table")
    }

    fn longest(self) -> usize {
        ATTRIBUTES
            .iter()
            .find(|(_, a, _)| *a == self)
            .map(|(_, _, n)| *n)
            .expect("every attribute is in the table")
    }

    /// The attribute type's OID arcs, for a subject uca encodes itself.
    fn oid(self) -> &'static [u64] {
        match self {
            Attribute::CommonName => &[2, 5, 4, 3],
            Attribute::Organization => &[2, 5, 4, 10],
            Attribute::OrganizationalUnit => &[2, 5, 4, 11],
            Attribute::Country => &[2, 5, 4, 6],
            Attribute::State => &[2, 5, 4, 8],
            Attribute::Locality => &[2, 5, 4, 7],
            Attribute::Street => &[2, 5, 4, 9],
            Attribute::UserId => &[0, 9, 2342, 19_200_300, 100, 1, 1],
            Attribute::SerialNumber => &[2, 5, 4, 5],
            Attribute::Title => &[2, 5, 4, 12],
        }
    }

    fn dn_type(self) -> DnType {
        match self {
            Attribute::CommonName => DnType::CommonName,
            Attribute::Organization => DnType::OrganizationName,
            Attribute::OrganizationalUnit => DnType::OrganizationalUnitName,
            Attribute::Country => DnType::CountryName,
            Attribute::State => DnType::StateOrProvinceName,
            Attribute::Locality => DnType::LocalityName,
            Attribute::Street => DnType::CustomDnType(vec![2, 5, 4, 9]),
            Attribute::UserId => DnType::CustomDnType(vec![0, 9, 2342, 19_200_300, 100, 1, 1]),
            Attribute::SerialNumber => DnType::CustomDnType(vec![2, 5, 4, 5]),
            Attribute::Title => DnType::CustomDnType(vec![2, 5, 4, 12]),
        }
    }
}

/// One part of a value: literal text or a placeholder.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Placeholder(&'static str),
}

/// A parsed `--subject` template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubjectTemplate {
    /// `--subject` or `subject`, as the user wrote it.
    what: &'static str,
    text: String,
    attributes: Vec<(Attribute, Vec<Piece>)>,
    /// An attribute type is given more than once (decided when parsed,
    /// not for every certificate of a bulk run).
    repeats: bool,
}

/// What the placeholders stand for in one certificate.
pub struct SubjectValues<'a> {
    pub name: &'a str,
    /// The plan group's name; `None` on the command line.
    pub group: Option<&'a str>,
}

impl SubjectTemplate {
    /// Parses `text`, refusing (in one line naming the template) look-alike
    /// and non-ASCII characters, unknown attributes and placeholders,
    /// malformed escapes, multi-valued RDNs and a repeated CN or C.
    pub fn parse(text: &str) -> Result<SubjectTemplate> {
        SubjectTemplate::parse_spelled(text, Spelling::Flag)
    }

    /// [`parse`](Self::parse), its errors naming the setting as `spelling`
    /// says (a plan's `subject`).
    pub fn parse_spelled(text: &str, spelling: Spelling) -> Result<SubjectTemplate> {
        let what = spelling.of("--subject", "subject");
        let bad = |why: String| Error::invalid(what, shown(text), why);
        // A look-alike of an ASCII letter (Cyrillic 'а' for 'a') would make
        // a subject that reads the same and maps to another user.
        names::check_characters(
            what,
            text,
            "uca writes subjects in ASCII, so a look-alike letter cannot pose as another name",
        )?;
        let mut attributes: Vec<(Attribute, Vec<Piece>)> = Vec::new();
        for (index, rdn) in split_rdns(text).map_err(&bad)?.into_iter().enumerate() {
            let (attribute, value) =
                parse_rdn(&rdn).map_err(|why| bad(format!("attribute {}: {why}", index + 1)))?;
            // Other attributes may repeat (OU=db,OU=ops), kept in order;
            // a certificate has one common name (a SAN) and one country.
            let single = matches!(attribute, Attribute::CommonName | Attribute::Country);
            if single && attributes.iter().any(|(a, _)| *a == attribute) {
                return Err(bad(format!(
                    "{} is given twice; a certificate has one",
                    attribute.name()
                )));
            }
            attributes.push((attribute, value));
        }
        if attributes.is_empty() {
            return Err(bad("expected at least one attribute, like CN={name}".into()));
        }
        let repeats = attributes
            .iter()
            .enumerate()
            .any(|(i, (a, _))| attributes[..i].iter().any(|(b, _)| b == a));
        Ok(SubjectTemplate {
            what,
            text: text.to_string(),
            attributes,
            repeats,
        })
    }

    /// The subject of one certificate, each value checked after the
    /// placeholders are filled in.
    pub fn render(&self, values: &SubjectValues<'_>) -> Result<DistinguishedName> {
        let mut dn = DistinguishedName::new();
        for (attribute, pieces) in &self.attributes {
            dn.push(attribute.dn_type(), self.value(*attribute, pieces, values)?);
        }
        Ok(dn)
    }

    /// Whether an attribute type is given more than once: rcgen writes one
    /// value per type, so such a subject is encoded by [`render_der`].
    ///
    /// [`render_der`]: Self::render_der
    pub fn repeats(&self) -> bool {
        self.repeats
    }

    /// The whole subject as a DER Name, every attribute in the order written,
    /// one per RDN, each value in the string type [`render`] gives it.
    ///
    /// [`render`]: Self::render
    pub fn render_der(&self, values: &SubjectValues<'_>) -> Result<Vec<u8>> {
        let mut rdns = Vec::new();
        for (attribute, pieces) in &self.attributes {
            let (tag, text) = match self.value(*attribute, pieces, values)? {
                DnValue::PrintableString(p) => (0x13, p.as_str().to_string()),
                DnValue::Utf8String(u) => (0x0c, u),
                _ => unreachable!("encoded gives printable or UTF-8 strings"),
            };
            let pair = der_tlv(
                0x30,
                &[der_oid(attribute.oid()), der_tlv(tag, text.as_bytes())].concat(),
            );
            rdns.extend(der_tlv(0x31, &pair));
        }
        Ok(der_tlv(0x30, &rdns))
    }

    /// One attribute's value for one certificate: placeholders filled in,
    /// then [`encoded`](Self::encoded).
    fn value(
        &self,
        attribute: Attribute,
        pieces: &[Piece],
        values: &SubjectValues<'_>,
    ) -> Result<DnValue> {
        let value = fill(pieces, values).ok_or_else(|| {
            Error::invalid(
                self.what,
                shown(&self.text),
                "{group} stands for a plan group's name; on the command line write the value itself",
            )
        })?;
        self.encoded(attribute, &value)
    }

    /// The value in the string type RFC 5280 asks for, after its checks.
    fn encoded(&self, attribute: Attribute, value: &str) -> Result<DnValue> {
        let bad = |why: String| {
            Error::invalid(
                self.what,
                shown(&self.text),
                format!("{}={}: {why}", attribute.name(), names::printable(value)),
            )
        };
        if value.is_empty() {
            return Err(bad("the value is empty".into()));
        }
        // A hex escape (`\E2\80\90`) spells a character the template's own
        // check never saw: a look-alike is named here as it is there.
        if !value.is_ascii() {
            names::check_characters(self.what, value, "uca writes subjects in ASCII").map_err(
                |e| match e {
                    Error::Invalid { expected, .. } => bad(expected),
                    other => other,
                },
            )?;
        }
        if let Some(c) = value.chars().find(|c| !(' '..='~').contains(c)) {
            return Err(bad(format!(
                "U+{:04X} is not a printable ASCII character",
                c as u32
            )));
        }
        if attribute == Attribute::Country && !COUNTRIES.split(' ').any(|c| c == value) {
            return Err(bad(
                "expected a two-letter ISO 3166 country code in capitals like DE".into(),
            ));
        }
        if value.len() > attribute.longest() {
            return Err(bad(format!(
                "{} characters; {} holds at most {}",
                value.len(),
                attribute.name(),
                attribute.longest()
            )));
        }
        match attribute {
            Attribute::Country => {
                printable(value).ok_or_else(|| bad("not a PrintableString".into()))
            }
            Attribute::SerialNumber => printable(value)
                .ok_or_else(|| bad("expected letters, digits, spaces and '()+,-./:=?".into())),
            _ => Ok(DnValue::Utf8String(value.to_string())),
        }
    }
}

/// The template as the user typed it, its backslashes (RFC 4514's escape
/// character) kept single; other characters as `names::printable` shows them.
fn shown(text: &str) -> String {
    text.split('\\')
        .map(names::printable)
        .collect::<Vec<_>>()
        .join("\\")
}

fn printable(value: &str) -> Option<DnValue> {
    rcgen::string::PrintableString::try_from(value)
        .ok()
        .map(DnValue::PrintableString)
}

/// One DER element: tag, definite length, contents.
fn der_tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
    [
        crate::pki::x509::der_header(tag, contents.len()).as_slice(),
        contents,
    ]
    .concat()
}

/// An OBJECT IDENTIFIER from its arcs (the first two joined, base 128).
fn der_oid(arcs: &[u64]) -> Vec<u8> {
    let mut body = Vec::new();
    let first = std::iter::once(arcs[0] * 40 + arcs[1]);
    for arc in first.chain(arcs[2..].iter().copied()) {
        let mut groups = vec![(arc & 0x7f) as u8];
        let mut rest = arc >> 7;
        while rest > 0 {
            groups.push(0x80 | (rest & 0x7f) as u8);
            rest >>= 7;
        }
        body.extend(groups.into_iter().rev());
    }
    der_tlv(0x06, &body)
}

/// The placeholders filled in; `None` if `{group}` has no value.
fn fill(pieces: &[Piece], values: &SubjectValues<'_>) -> Option<String> {
    let host = values.name.split('.').next().unwrap_or(values.name);
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Placeholder("name") => out.push_str(values.name),
            Piece::Placeholder("base") => out.push_str(&base_or(values.name)),
            Piece::Placeholder("host") => out.push_str(host),
            Piece::Placeholder("hostbase") => out.push_str(&base_or(host)),
            Piece::Placeholder(_) => out.push_str(values.group?),
        }
    }
    Some(out)
}

fn base_or(name: &str) -> String {
    let base = crate::pki::san_rule::base_name(name);
    if base.is_empty() {
        name.to_string()
    } else {
        base
    }
}

/// The RDNs of an RFC 4514 string, split at unescaped commas, escapes kept.
/// An unescaped `+` (a multi-valued RDN) or `;`, `<`, `>`, `"` is refused.
fn split_rdns(text: &str) -> std::result::Result<Vec<String>, String> {
    let mut rdns = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                current.push(c);
                current.push(chars.next().ok_or("it ends with a lone '\\'")?);
            }
            ',' => rdns.push(std::mem::take(&mut current)),
            '+' => return Err("a '+' joins attributes into one multi-valued RDN, which uca does not write; escape it as '\\+' if it is part of a value".into()),
            ';' | '<' | '>' | '"' => {
                return Err(format!(
                    "'{c}' must be escaped as '\\{c}' (separate attributes with ',')"
                ))
            }
            _ => current.push(c),
        }
    }
    rdns.push(current);
    Ok(rdns)
}

/// `TYPE=VALUE`: the attribute and the value's pieces, escapes decoded.
fn parse_rdn(rdn: &str) -> std::result::Result<(Attribute, Vec<Piece>), String> {
    let (name, value) = rdn
        .split_once('=')
        .ok_or_else(|| format!("'{}' is not TYPE=VALUE", names::printable(rdn)))?;
    if name.trim().eq_ignore_ascii_case("DC") {
        // A domain needs a DC per label (DC=example,DC=com), and a lone DC
        // is no domain name (RFC 4519; pkilint flags it as an error).
        return Err(
            "DC is not supported: a domain takes one DC per label, and uca writes one value per attribute type; name the organisation with O= instead"
                .into(),
        );
    }
    let attribute = ATTRIBUTES
        .iter()
        .find(|(n, _, _)| n.eq_ignore_ascii_case(name.trim()))
        .map(|(_, a, _)| *a)
        .ok_or_else(|| {
            format!(
                "unknown attribute type '{}'; expected {KNOWN}",
                names::printable(name)
            )
        })?;
    if name != name.trim() {
        return Err(format!(
            "'{}' has a space around the attribute type",
            names::printable(name)
        ));
    }
    if value.starts_with('#') {
        return Err(
            "a value starting with '#' is hex-encoded BER, which uca does not take; escape it as '\\#'"
                .into(),
        );
    }
    if value.starts_with(' ') || value.ends_with(' ') && !value.ends_with("\\ ") {
        return Err("a leading or trailing space must be escaped as '\\ '".into());
    }
    Ok((attribute, pieces(value)?))
}

/// A value's text and placeholders, with `\X` and `\HH` escapes decoded.
fn pieces(value: &str) -> std::result::Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut bytes: Vec<u8> = Vec::new();
    let mut rest = value;
    while let Some(c) = rest.chars().next() {
        match c {
            '\\' => {
                let escaped = rest.get(1..).unwrap_or("");
                let hex = escaped
                    .get(..2)
                    .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
                if let Some(hex) = hex {
                    bytes.push(u8::from_str_radix(hex, 16).expect("two hex digits"));
                    rest = &escaped[2..];
                } else {
                    match escaped.chars().next() {
                        Some(s) if "\"+,;<>\\ #=".contains(s) => {
                            bytes.push(s as u8);
                            rest = &escaped[1..];
                        }
                        _ => return Err(format!(
                            "'\\{}' is not an escape; escape one of \" + , ; < > \\ space # = or two hex digits",
                            escaped.chars().next().map(String::from).unwrap_or_default()
                        )),
                    }
                }
            }
            '{' => {
                let close = rest.find('}').ok_or("a '{' is not closed")?;
                let inner = &rest[1..close];
                let placeholder = PLACEHOLDERS.iter().find(|p| **p == inner).ok_or_else(|| {
                    format!("unknown placeholder {{{inner}}}; use {{name}}, {{base}}, {{host}}, {{hostbase}} or {{group}}")
                })?;
                flush(&mut bytes, &mut out)?;
                out.push(Piece::Placeholder(placeholder));
                rest = &rest[close + 1..];
            }
            '}' => return Err("a '}' has no matching '{'".into()),
            _ => {
                let mut buf = [0u8; 4];
                bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    flush(&mut bytes, &mut out)?;
    Ok(out)
}

fn flush(bytes: &mut Vec<u8>, out: &mut Vec<Piece>) -> std::result::Result<(), String> {
    if bytes.is_empty() {
        return Ok(());
    }
    let text = String::from_utf8(std::mem::take(bytes))
        .map_err(|_| "its hex escapes are not UTF-8".to_string())?;
    out.push(Piece::Text(text));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::prelude::FromDer;

    fn values(name: &str) -> SubjectValues<'_> {
        SubjectValues {
            name,
            group: Some("db"),
        }
    }

    fn rendered(template: &str, name: &str) -> Vec<(DnType, String)> {
        let dn = SubjectTemplate::parse(template)
            .unwrap()
            .render(&values(name))
            .unwrap();
        dn.iter()
            .map(|(t, v)| {
                let text = match v {
                    DnValue::Utf8String(s) => s.clone(),
                    DnValue::PrintableString(s) => s.as_str().to_string(),
                    DnValue::Ia5String(s) => s.as_str().to_string(),
                    other => format!("{other:?}"),
                };
                (t.clone(), text)
            })
            .collect()
    }

    #[test]
    fn attributes_keep_the_written_order_and_placeholders_fill_in() {
        assert_eq!(
            rendered("C=DE,O=Acme,OU={group},CN={name}", "pg1.internal"),
            vec![
                (DnType::CountryName, "DE".into()),
                (DnType::OrganizationName, "Acme".into()),
                (DnType::OrganizationalUnitName, "db".into()),
                (DnType::CommonName, "pg1.internal".into()),
            ]
        );
        assert_eq!(
            rendered("O=Acme,OU={hostbase}-{host}", "web12.internal"),
            vec![
                (DnType::OrganizationName, "Acme".into()),
                (DnType::OrganizationalUnitName, "web-web12".into()),
            ]
        );
    }

    #[test]
    fn escapes_are_decoded() {
        assert_eq!(
            rendered(r"O=Acme\, Inc.,OU=R\2bD \#1\=a", "x.internal"),
            vec![
                (DnType::OrganizationName, "Acme, Inc.".into()),
                (DnType::OrganizationalUnitName, "R+D #1=a".into()),
            ]
        );
    }

    #[test]
    fn a_repeated_attribute_is_encoded_in_order_by_uca() {
        let t = SubjectTemplate::parse("O=Acme,OU=db,OU=ops,CN={name}").unwrap();
        assert!(t.repeats());
        assert!(!SubjectTemplate::parse("O=Acme,OU=db,CN={name}")
            .unwrap()
            .repeats());
        let der = t
            .render_der(&SubjectValues {
                name: "pg1.internal",
                group: None,
            })
            .unwrap();
        let (_, name) = x509_parser::x509::X509Name::from_der(&der).unwrap();
        assert_eq!(name.to_string(), "O=Acme, OU=db, OU=ops, CN=pg1.internal");
    }

    #[test]
    fn every_malformed_template_is_one_error_naming_it() {
        for (template, needle) in [
            ("O=Acme,XX=1", "unknown attribute type 'XX'"),
            ("DC=internal,CN={name}", "DC is not supported"),
            ("O=Acme,OU=a+CN=b", "multi-valued RDN"),
            (r"O=Ac\me", "not an escape"),
            (r"O=Acme\", "lone '\\'"),
            ("CN={name},OU=x,CN=y", "CN is given twice"),
            ("C=DE,O=Acme,C=FR", "C is given twice"),
            ("O=Acme,CN={nam}", "unknown placeholder {nam}"),
            ("O=Acme,CN={name", "not closed"),
            ("O=Acme;CN=x", "must be escaped"),
            ("O=#0403", "hex-encoded BER"),
            ("O= Acme", "leading or trailing space"),
            ("O\u{2010}Acme", "look-alike"),
            ("O=Ac\u{0430}me", "U+0430, which is not ASCII"),
            ("O=Acmé", "not ASCII"),
            ("Acme", "not TYPE=VALUE"),
            ("", "not TYPE=VALUE"),
        ] {
            let e = SubjectTemplate::parse(template).unwrap_err().to_string();
            assert!(e.contains(needle), "{template:?}: {e}");
            assert!(!e.contains('\n'), "{template:?}: {e}");
        }
    }

    #[test]
    fn errors_show_the_template_as_typed_and_name_the_setting_as_written() {
        let e = SubjectTemplate::parse(r"O=Ac\me").unwrap_err().to_string();
        assert!(e.starts_with(r"invalid --subject 'O=Ac\me': "), "{e}");
        let e = SubjectTemplate::parse_spelled(r"O=Ac\me", Spelling::PlanKey)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with(r"invalid subject 'O=Ac\me': "), "{e}");
    }

    #[test]
    fn rendered_values_are_checked() {
        let render = |t: &str, group: Option<&str>| {
            SubjectTemplate::parse(t).unwrap().render(&SubjectValues {
                name: "x.internal",
                group,
            })
        };
        for (template, needle) in [
            ("C=Germany", "two-letter"),
            ("C=ZZ", "ISO 3166 country code"),
            ("C=de", "in capitals"),
            ("O=a\\0Ab", "not a printable ASCII"),
            ("O=", "empty"),
        ] {
            let e = render(template, Some("g")).unwrap_err().to_string();
            assert!(e.contains(needle), "{template}: {e}");
        }
        let e = render(r"O=a\E2\80\90b", None).unwrap_err().to_string();
        assert!(e.contains("U+2010 HYPHEN, a typographic look-alike"), "{e}");
        assert!(
            e.starts_with(r"invalid --subject 'O=a\E2\80\90b': O=a"),
            "{e}"
        );
        let long = format!("CN={}", "a".repeat(65));
        assert!(render(&long, None)
            .unwrap_err()
            .to_string()
            .contains("at most 64"));
        let e = render("OU={group}", None).unwrap_err().to_string();
        assert!(e.contains("plan group"), "{e}");
    }
}
