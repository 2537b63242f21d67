//! Conformance of what uca issues: every profile (root, intermediate via
//! `uca sign --intermediate`, server, client, both, leaves signed from
//! external CSRs) and every key type, checked two ways:
//!
//! * pkilint (PyPI, installed by test.sh): `lint_pkix_cert` and the
//!   issuer/subject chain linter must report no ERROR or FATAL finding
//!   (RFC 5280); `lint_cabf_serverauth_cert` (CA/Browser Forum TLS Baseline
//!   Requirements) may report only the deviations listed in
//!   CABF_DEVIATIONS, each deliberate for a private CA and explained in
//!   fixtures/CONFORMANCE.md.
//! * DER-level checks with x509-parser: serial numbers (positive, at most 20
//!   octets, random), criticality of keyUsage and basicConstraints, SKI/AKI
//!   linkage, UTCTime before 2050 and GeneralizedTime from 2050 without
//!   fractional seconds, EKU per profile, SAN present and critical exactly
//!   when the subject is empty.
//!
//! A missing pkilint fails these tests; it never skips them.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use common::*;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate};

/// CA/Browser Forum findings (ERROR or FATAL) that uca produces on purpose:
/// the Baseline Requirements govern publicly trusted CAs, and each of these
/// is a deliberate choice for a private, sealed CA (fixtures/CONFORMANCE.md
/// says why). Anything else fails the test.
const CABF_DEVIATIONS: &[(&str, &str)] = &[
    (
        "cabf.internal_domain_name",
        "private PKI: names in a private namespace such as .internal are the point",
    ),
    (
        "cabf.internal_ip_address",
        "private PKI: RFC 1918 / ULA addresses are the point",
    ),
    (
        "cabf.serverauth.ca.country_attribute_absent",
        "CA subjects are a CN only",
    ),
    (
        "cabf.serverauth.ca.organization_name_attribute_absent",
        "CA subjects are a CN only",
    ),
    (
        "cabf.serverauth.ca.certificate_policies_extension_absent",
        "no policy OIDs: no CP/CPS for a private CA",
    ),
    (
        "cabf.serverauth.ca.crl_distribution_points_extension_absent",
        "no CRLs: a sealed CA never signs again",
    ),
    (
        "cabf.serverauth.ca.extended_key_usage_extension_absent",
        "CA certificates carry no EKU (RFC 5280 does not ask for one)",
    ),
    (
        "cabf.serverauth.ca.incomplete_name_constraints",
        "name constraints permit DNS/IP subtrees only (no directoryName, no excluded ranges)",
    ),
    (
        "cabf.serverauth.certificate_validity_period_exceeds_200_days",
        "default leaf validity is 397 days (--days sets it)",
    ),
    (
        "cabf.serverauth.subscriber.authority_info_access_extension_absent",
        "no AIA: no OCSP responder, the chain is shipped with every leaf",
    ),
    (
        "cabf.serverauth.subscriber.certificate_policies_extension_absent",
        "no policy OIDs: no CP/CPS for a private CA",
    ),
    (
        "cabf.serverauth.subscriber.revocation_information_absent",
        "no CRL/OCSP: a sealed CA never signs again",
    ),
    (
        "msft.end_entity.revocation_information_absent",
        "no CRL/OCSP: a sealed CA never signs again",
    ),
    (
        "cabf.serverauth.prohibited_signature_algorithm_encoding",
        "Ed25519 signatures: supported by uca's clients, not allowed by the BRs",
    ),
    (
        "cabf.serverauth.prohibited_subject_public_key_algorithm_encoding",
        "Ed25519 keys: supported by uca's clients, not allowed by the BRs",
    ),
    (
        "cabf.serverauth.root_validity_period_too_long",
        "only a root made with --days beyond 25 years (the default is 10)",
    ),
];

/// The one RFC 5280 finding pkilint reports for a single-label DNS name
/// (`--permit internal`, NAME `web1`): pkilint checks dNSNames with the
/// `validators` package, which wants at least two labels, while RFC 5280
/// asks for RFC 1034 preferred name syntax, where one label is valid.
const PKIX_SINGLE_LABEL: &str = "pkix.invalid_domain_name_syntax";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Root,
    Intermediate,
    Server,
    Client,
    Both,
}

#[derive(Clone, Debug)]
struct Cert {
    /// Relative to the scratch directory.
    path: String,
    /// The issuing CA's certificate (the root issues itself).
    issuer: String,
    kind: Kind,
    what: String,
}

struct World {
    scratch: Scratch,
    certs: Vec<Cert>,
    /// 100 leaves of one plan, for the serial number statistics.
    serial_batch: Vec<String>,
    /// Certificates with a single-label DNS name somewhere.
    single_label: Vec<Cert>,
}

fn uca_ok(s: &Scratch, args: &[&str]) {
    ok(&s.uca(args));
}

fn openssl(s: &Scratch, args: &[&str]) {
    let (good, out) = run("openssl", args, s.path());
    assert!(good, "openssl {args:?}: {out}");
}

/// A CSR for a fresh key made by OpenSSL (fast, unlike RSA key generation in
/// a debug build of uca).
fn csr(s: &Scratch, name: &str, keyopts: &[&str], subj: &str, exts: &[&str]) -> String {
    let key = format!("{name}.key");
    let out = format!("{name}.csr");
    let mut args = vec![
        "req", "-new", "-nodes", "-keyout", &key, "-subj", subj, "-out", &out,
    ];
    args.extend_from_slice(keyopts);
    for e in exts {
        args.push("-addext");
        args.push(e);
    }
    openssl(s, &args);
    out
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(build_world)
}

fn build_world() -> World {
    let s = Scratch::new();
    let pass = s.pass_file().display().to_string();
    let p = pass.as_str();
    let mut certs = Vec::new();
    let mut add = |path: String, issuer: &str, kind: Kind, what: String| {
        certs.push(Cert {
            path,
            issuer: issuer.to_string(),
            kind,
            what,
        })
    };

    // A root of every key type, each issuing a leaf of every profile.
    // RSA-3072/4096 leaves come from OpenSSL CSRs below (uca's RSA key
    // generation is slow unoptimised); the RSA-4096 root is made by uca.
    for key in ["ec-p256", "ec-p384", "ed25519", "rsa-2048", "rsa-4096"] {
        let dir = format!("root-{key}");
        uca_ok(
            &s,
            &[
                "init",
                "--dir",
                &dir,
                "--name",
                &format!("Conformance Root {key}"),
                "--key",
                key,
                "--permit",
                "acme.internal",
                "--permit",
                "10.0.0.0/8",
                "--passphrase-file",
                p,
            ],
        );
        let root = format!("{dir}/ca.pem");
        add(root.clone(), &root, Kind::Root, format!("root {key}"));
        let leaf_key = if key == "rsa-4096" { "rsa-2048" } else { key };
        for (profile, kind) in [
            ("server", Kind::Server),
            ("client", Kind::Client),
            ("both", Kind::Both),
        ] {
            let name = format!("{profile}.acme.internal");
            uca_ok(
                &s,
                &[
                    "issue",
                    "--dir",
                    &dir,
                    "--out",
                    &format!("certs-{key}"),
                    "--profile",
                    profile,
                    "--key",
                    leaf_key,
                    "--passphrase-file",
                    p,
                    &name,
                ],
            );
            add(
                format!("certs-{key}/{name}/cert.pem"),
                &root,
                kind,
                format!("{profile} {leaf_key} leaf under the {key} root"),
            );
        }
    }
    let p256 = "root-ec-p256/ca.pem";

    // Leaves whose subject is empty (an IP address, a name too long for a
    // CN): their SAN extension must be critical.
    let long = format!("{}.acme.internal", "l".repeat(60));
    uca_ok(
        &s,
        &[
            "issue",
            "--dir",
            "root-ec-p256",
            "--out",
            "certs-empty",
            "--passphrase-file",
            p,
            "10.1.2.3",
            &long,
        ],
    );
    add(
        "certs-empty/10.1.2.3/cert.pem".into(),
        p256,
        Kind::Both,
        "IP-only leaf (empty subject)".into(),
    );
    add(
        format!("certs-empty/{long}/cert.pem"),
        p256,
        Kind::Both,
        "77-character name (no CN)".into(),
    );

    // Leaves signed from CSRs: RSA 3072 and 4096, P-384, Ed25519.
    for (name, keyopts, profile, kind) in [
        (
            "rsa3072",
            vec!["-newkey", "rsa:3072"],
            "server",
            Kind::Server,
        ),
        ("rsa4096", vec!["-newkey", "rsa:4096"], "both", Kind::Both),
        (
            "p384",
            vec!["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
            "client",
            Kind::Client,
        ),
        ("ed25519", vec!["-newkey", "ed25519"], "both", Kind::Both),
    ] {
        let host = format!("{name}.acme.internal");
        let c = csr(
            &s,
            &format!("leaf-{name}"),
            &keyopts,
            &format!("/CN={host}"),
            &[&format!("subjectAltName=DNS:{host}")],
        );
        let out = format!("signed-{name}.pem");
        uca_ok(
            &s,
            &[
                "sign",
                "--dir",
                "root-ec-p256",
                &c,
                "--profile",
                profile,
                "--out",
                &out,
                "--passphrase-file",
                p,
            ],
        );
        add(
            out,
            p256,
            kind,
            format!("{profile} leaf signed from a {name} CSR"),
        );
    }

    // Intermediates via `uca sign --intermediate`, each issuing nothing
    // (uca never holds their keys) but checked as CA certificates.
    for (name, keyopts, root) in [
        (
            "p256",
            vec!["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            "root-ec-p256",
        ),
        ("rsa2048", vec!["-newkey", "rsa:2048"], "root-rsa-2048"),
        ("ed25519", vec!["-newkey", "ed25519"], "root-ed25519"),
        (
            "p384",
            vec!["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
            "root-ec-p384",
        ),
    ] {
        let c = csr(
            &s,
            &format!("int-{name}"),
            &keyopts,
            &format!("/CN=Conformance Intermediate {name}"),
            &[],
        );
        let out = format!("int-{name}.pem");
        uca_ok(
            &s,
            &[
                "sign",
                "--dir",
                root,
                &c,
                "--intermediate",
                "--permit",
                "vault.acme.internal",
                "--out",
                &out,
                "--passphrase-file",
                p,
            ],
        );
        add(
            out,
            &format!("{root}/ca.pem"),
            Kind::Intermediate,
            format!("intermediate {name} under {root}"),
        );
    }

    // A root that outlives 2049 (GeneralizedTime) with one leaf that does
    // and one that does not.
    uca_ok(
        &s,
        &[
            "init",
            "--dir",
            "root-2050",
            "--name",
            "Conformance Root 2050",
            "--days",
            "12000",
            "--passphrase-file",
            p,
        ],
    );
    add(
        "root-2050/ca.pem".into(),
        "root-2050/ca.pem",
        Kind::Root,
        "root valid beyond 2050".into(),
    );
    uca_ok(
        &s,
        &[
            "issue",
            "--dir",
            "root-2050",
            "--out",
            "certs-2050",
            "--days",
            "9500",
            "--passphrase-file",
            p,
            "late.acme.internal",
        ],
    );
    add(
        "certs-2050/late.acme.internal/cert.pem".into(),
        "root-2050/ca.pem",
        Kind::Both,
        "leaf valid beyond 2050".into(),
    );
    uca_ok(
        &s,
        &[
            "issue",
            "--dir",
            "root-2050",
            "--out",
            "certs-2050",
            "--passphrase-file",
            p,
            "early.acme.internal",
        ],
    );
    add(
        "certs-2050/early.acme.internal/cert.pem".into(),
        "root-2050/ca.pem",
        Kind::Both,
        "397-day leaf under the 2050 root".into(),
    );

    // 100 certificates of one plan, for serial statistics.
    std::fs::write(
        s.join("serials.toml"),
        "[[group]]\nname = \"s\"\nnames = [\"s{1..100}.acme.internal\"]\nsan_rules = [\"none\"]\n",
    )
    .unwrap();
    uca_ok(
        &s,
        &[
            "issue",
            "--dir",
            "root-ec-p256",
            "--out",
            "serials",
            "--plan",
            "serials.toml",
            "--passphrase-file",
            p,
        ],
    );
    let serial_batch = (1..=100)
        .map(|i| format!("serials/s{i}.acme.internal/cert.pem"))
        .collect();

    // Single-label DNS names: a `--permit internal` root and a `web1` leaf.
    uca_ok(
        &s,
        &[
            "init",
            "--dir",
            "root-internal",
            "--name",
            "Conformance Root internal",
            "--permit",
            "internal",
            "--passphrase-file",
            p,
        ],
    );
    uca_ok(
        &s,
        &[
            "init",
            "--dir",
            "root-open",
            "--name",
            "Conformance Root open",
            "--passphrase-file",
            p,
        ],
    );
    uca_ok(
        &s,
        &[
            "issue",
            "--dir",
            "root-open",
            "--out",
            "certs-open",
            "--passphrase-file",
            p,
            "web1",
        ],
    );
    let single_label = vec![
        Cert {
            path: "root-internal/ca.pem".into(),
            issuer: "root-internal/ca.pem".into(),
            kind: Kind::Root,
            what: "root with --permit internal".into(),
        },
        Cert {
            path: "certs-open/web1/cert.pem".into(),
            issuer: "root-open/ca.pem".into(),
            kind: Kind::Both,
            what: "leaf named web1".into(),
        },
    ];
    World {
        scratch: s,
        certs,
        serial_batch,
        single_label,
    }
}

fn der_of(path: &Path) -> Vec<u8> {
    let text = std::fs::read(path).unwrap();
    let block = pem::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    block.contents().to_vec()
}

fn parse(der: &[u8]) -> X509Certificate<'_> {
    let (rest, cert) = X509Certificate::from_der(der).expect("a certificate");
    assert!(rest.is_empty());
    cert
}

// ---------------------------------------------------------------- pkilint --

/// One finding: severity, code, where, message.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Finding {
    severity: String,
    code: String,
    node: String,
    message: String,
}

/// Runs pkilint linters in one Python process (importing pkilint once is
/// most of its cost). Each job is (module under pkilint.bin, arguments).
fn pkilint(jobs: &[(&str, Vec<String>)], cwd: &Path) -> Vec<Vec<Finding>> {
    const DRIVER: &str = r#"
import contextlib, importlib, io, json, sys
out = []
for tool, args in json.load(sys.stdin):
    mod = importlib.import_module("pkilint.bin." + tool)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        try:
            code = mod.main(args)
        except SystemExit as e:
            code = e.code
    out.append({"code": code, "stdout": buf.getvalue()})
json.dump(out, sys.stdout)
"#;
    let input = serde_json::to_string(&jobs).unwrap();
    let mut child = Command::new("python3")
        .args(["-c", DRIVER])
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run python3 (./test.sh installs what the tests need)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "pkilint could not run (is it installed? ./test.sh runs: python3 -m pip install pkilint): {stderr}"
    );
    let results: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    results
        .iter()
        .zip(jobs)
        .map(|(r, (tool, args))| {
            let text = r["stdout"].as_str().unwrap();
            let doc: serde_json::Value = serde_json::from_str(text).unwrap_or_else(|e| {
                panic!("pkilint {tool} {args:?} printed no JSON ({e}): {text} {stderr}")
            });
            let mut findings = Vec::new();
            for result in doc["results"].as_array().unwrap() {
                for f in result["finding_descriptions"].as_array().unwrap() {
                    findings.push(Finding {
                        severity: f["severity"].as_str().unwrap().to_string(),
                        code: f["code"].as_str().unwrap().to_string(),
                        node: result["node_path"].as_str().unwrap().to_string(),
                        message: f["message"].as_str().unwrap_or("").to_string(),
                    });
                }
            }
            findings
        })
        .collect()
}

fn is_error(f: &Finding) -> bool {
    f.severity == "ERROR" || f.severity == "FATAL"
}

fn lint_job(tool: &str, extra: &[&str], files: &[&str]) -> (&'static str, Vec<String>) {
    let tool: &'static str = match tool {
        "pkix" => "lint_pkix_cert",
        "chain" => "lint_pkix_signer_signee_cert_chain",
        _ => "lint_cabf_serverauth_cert",
    };
    let mut args = vec![
        "lint".to_string(),
        "-f".into(),
        "JSON".into(),
        "-s".into(),
        "NOTICE".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(files.iter().map(|s| s.to_string()));
    (tool, args)
}

#[test]
fn pkilint_finds_no_rfc5280_error_in_any_profile_or_key_type() {
    let w = world();
    let mut jobs = Vec::new();
    let mut labels = Vec::new();
    for c in &w.certs {
        jobs.push(lint_job("pkix", &[], &[&c.path]));
        labels.push(format!("{} ({})", c.what, c.path));
        if c.path != c.issuer {
            jobs.push(lint_job("chain", &[], &[&c.issuer, &c.path]));
            labels.push(format!("{} issued by {}", c.path, c.issuer));
        }
    }
    let results = pkilint(&jobs, w.scratch.path());
    let mut errors = Vec::new();
    let mut notes: BTreeMap<String, usize> = BTreeMap::new();
    for (label, findings) in labels.iter().zip(&results) {
        for f in findings {
            if is_error(f) {
                errors.push(format!("{label}: {f:?}"));
            } else {
                *notes
                    .entry(format!("{} {}", f.severity, f.code))
                    .or_default() += 1;
            }
        }
    }
    eprintln!(
        "pkilint RFC 5280: {} linter runs; non-error findings: {notes:?}",
        jobs.len()
    );
    assert!(errors.is_empty(), "RFC 5280 errors:\n{}", errors.join("\n"));
    // The only notice is the key identifier method (RFC 5280 4.2.1.2 allows
    // any method; rcgen hashes the whole SubjectPublicKeyInfo with SHA-256).
    for k in notes.keys() {
        assert!(
            k == "NOTICE pkix.unknown_subject_key_identifier_calculation_method",
            "an RFC 5280 finding that fixtures/CONFORMANCE.md does not explain: {k}"
        );
    }
}

#[test]
fn single_label_dns_names_are_the_only_pkix_finding_pkilint_disagrees_with() {
    let w = world();
    let jobs: Vec<_> = w
        .single_label
        .iter()
        .map(|c| lint_job("pkix", &[], &[&c.path]))
        .collect();
    let results = pkilint(&jobs, w.scratch.path());
    for (c, findings) in w.single_label.iter().zip(&results) {
        let errors: Vec<&Finding> = findings.iter().filter(|f| is_error(f)).collect();
        assert!(
            !errors.is_empty(),
            "{}: pkilint no longer flags single-label names; update fixtures/CONFORMANCE.md",
            c.what
        );
        for f in errors {
            assert_eq!(f.code, PKIX_SINGLE_LABEL, "{}: {f:?}", c.what);
            assert!(
                f.message == "Invalid domain name syntax: \"internal\""
                    || f.message.contains("\"web"),
                "{}: {f:?}",
                c.what
            );
        }
    }
}

#[test]
fn cabf_findings_are_only_the_documented_private_ca_deviations() {
    let w = world();
    let allowed: BTreeSet<&str> = CABF_DEVIATIONS.iter().map(|(c, _)| *c).collect();
    let mut jobs = Vec::new();
    let mut labels = Vec::new();
    for c in &w.certs {
        // The TLS Baseline Requirements cover TLS server certificates and
        // the CAs that issue them; a client-only leaf is out of their scope.
        let t = match c.kind {
            Kind::Root => "ROOT-CA",
            Kind::Intermediate => "INTERNAL-CONSTRAINED-TLS-CA",
            Kind::Server | Kind::Both => "DV-FINAL-CERTIFICATE",
            Kind::Client => continue,
        };
        jobs.push(lint_job("cabf", &["-t", t], &[&c.path]));
        labels.push(format!("{} ({t})", c.what));
    }
    let results = pkilint(&jobs, w.scratch.path());
    let mut unexpected = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (label, findings) in labels.iter().zip(&results) {
        for f in findings {
            *seen
                .entry(format!("{} {}", f.severity, f.code))
                .or_default() += 1;
            if is_error(f) && !allowed.contains(f.code.as_str()) {
                unexpected.push(format!("{label}: {f:?}"));
            }
        }
    }
    eprintln!("CA/B Forum findings over {} certificates:", jobs.len());
    for (k, n) in &seen {
        eprintln!("  {n:3}  {k}");
    }
    assert!(
        unexpected.is_empty(),
        "CA/B Forum errors that are not documented deviations (fixtures/CONFORMANCE.md):\n{}",
        unexpected.join("\n")
    );
}

// ------------------------------------------------------------- DER checks --

/// The raw (tag, content) of notBefore and notAfter.
fn validity_encoding(der: &[u8]) -> [(u8, Vec<u8>); 2] {
    fn tlv(d: &[u8]) -> (u8, &[u8], &[u8]) {
        let tag = d[0];
        let (len, hdr) = if d[1] < 0x80 {
            (d[1] as usize, 2)
        } else {
            let n = (d[1] & 0x7f) as usize;
            (
                d[2..2 + n].iter().fold(0usize, |a, b| a << 8 | *b as usize),
                2 + n,
            )
        };
        (tag, &d[hdr..hdr + len], &d[hdr + len..])
    }
    let (t, cert, _) = tlv(der);
    assert_eq!(t, 0x30);
    let (t, tbs, _) = tlv(cert);
    assert_eq!(t, 0x30);
    let (t, _, mut rest) = tlv(tbs);
    if t == 0xa0 {
        rest = tlv(rest).2; // version, then serial
    }
    let rest = tlv(rest).2; // signature algorithm
    let rest = tlv(rest).2; // issuer
    let (t, validity, _) = tlv(rest);
    assert_eq!(t, 0x30);
    let (t1, c1, rest) = tlv(validity);
    let (t2, c2, _) = tlv(rest);
    [(t1, c1.to_vec()), (t2, c2.to_vec())]
}

fn check_time(what: &str, tag: u8, content: &[u8], year: i32) -> Vec<String> {
    let text = String::from_utf8_lossy(content);
    let mut problems = Vec::new();
    if year < 2050 {
        if tag != 0x17 || content.len() != 13 {
            problems.push(format!(
                "{what}: {year} must be UTCTime YYMMDDHHMMSSZ, got tag {tag:#x} {text:?}"
            ));
        }
    } else if tag != 0x18 || content.len() != 15 {
        problems.push(format!(
            "{what}: {year} must be GeneralizedTime YYYYMMDDHHMMSSZ, got tag {tag:#x} {text:?}"
        ));
    }
    if !text.ends_with('Z')
        || text.contains('.')
        || !text[..text.len() - 1].bytes().all(|b| b.is_ascii_digit())
    {
        problems.push(format!("{what}: {text:?} is not whole seconds in UTC (Z)"));
    }
    problems
}

fn ski(cert: &X509Certificate<'_>) -> Option<Vec<u8>> {
    cert.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
            _ => None,
        })
}

fn check_der(c: &Cert, dir: &Path) -> Vec<String> {
    let der = der_of(&dir.join(&c.path));
    let cert = parse(&der);
    let issuer_der = der_of(&dir.join(&c.issuer));
    let issuer = parse(&issuer_der);
    let mut p = Vec::new();
    let is_ca = matches!(c.kind, Kind::Root | Kind::Intermediate);

    if cert.version() != x509_parser::x509::X509Version::V3 {
        p.push("not version 3".into());
    }
    if cert.tbs_certificate.issuer_uid.is_some() || cert.tbs_certificate.subject_uid.is_some() {
        p.push("carries a unique identifier".into());
    }
    if cert.signature_algorithm != cert.tbs_certificate.signature {
        p.push("signatureAlgorithm differs from tbsCertificate.signature".into());
    }
    let oids: Vec<String> = cert
        .extensions()
        .iter()
        .map(|e| e.oid.to_id_string())
        .collect();
    if oids.iter().collect::<BTreeSet<_>>().len() != oids.len() {
        p.push(format!("an extension appears twice: {oids:?}"));
    }

    // Serial: positive, minimal DER, at most 20 octets, at least 64 bits.
    let serial = cert.raw_serial();
    if serial.is_empty() || serial.len() > 20 {
        p.push(format!("serial is {} octets", serial.len()));
    }
    if serial.first().is_some_and(|b| b & 0x80 != 0) {
        p.push("serial is negative".into());
    }
    if serial.len() > 1 && serial[0] == 0 && serial[1] & 0x80 == 0 {
        p.push("serial is not minimally encoded".into());
    }
    if serial.len() < 9 {
        p.push(format!(
            "serial has fewer than 64 significant bits ({} octets)",
            serial.len()
        ));
    }

    // keyUsage: present and critical; the right bits.
    match cert.key_usage() {
        Ok(Some(ku)) => {
            if !ku.critical {
                p.push("keyUsage is not critical".into());
            }
            let k = ku.value;
            if is_ca {
                if !(k.key_cert_sign() && k.crl_sign())
                    || k.digital_signature()
                    || k.key_encipherment()
                {
                    p.push(format!("CA keyUsage is {k}, expected keyCertSign, cRLSign"));
                }
            } else {
                if !k.digital_signature() || k.key_cert_sign() || k.crl_sign() {
                    p.push(format!("leaf keyUsage is {k}"));
                }
                let rsa = matches!(
                    cert.public_key().parsed(),
                    Ok(x509_parser::public_key::PublicKey::RSA(_))
                );
                let want_ke = rsa && c.kind != Kind::Client;
                if k.key_encipherment() != want_ke {
                    p.push(format!(
                        "keyEncipherment is {} for an {} {:?} leaf",
                        k.key_encipherment(),
                        if rsa { "RSA" } else { "EC/Ed25519" },
                        c.kind
                    ));
                }
            }
        }
        other => p.push(format!("keyUsage missing: {other:?}")),
    }

    // basicConstraints: critical CA:TRUE with a path length on CAs, present
    // with CA:FALSE on leaves.
    match cert.basic_constraints() {
        Ok(Some(bc)) => {
            if is_ca && !(bc.critical && bc.value.ca && bc.value.path_len_constraint.is_some()) {
                p.push(format!(
                    "CA basicConstraints: critical {} {:?}",
                    bc.critical, bc.value
                ));
            }
            if !is_ca && bc.value.ca {
                p.push("leaf says CA:TRUE".into());
            }
        }
        other => p.push(format!("basicConstraints missing: {other:?}")),
    }

    // SKI on every certificate; AKI on every non-root, equal to the
    // issuer's SKI; none on the self-signed root.
    let own_ski = ski(&cert);
    if own_ski.is_none() {
        p.push("no subjectKeyIdentifier".into());
    }
    let aki = cert
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(a) => {
                Some((e.critical, a.key_identifier.as_ref().map(|k| k.0.to_vec())))
            }
            _ => None,
        });
    match (c.kind, aki) {
        (Kind::Root, None) => {}
        (Kind::Root, Some((_, id))) => {
            if id != own_ski {
                p.push("a root's AKI differs from its own SKI".into());
            }
        }
        (_, None) => p.push("no authorityKeyIdentifier".into()),
        (_, Some((critical, id))) => {
            if critical {
                p.push("authorityKeyIdentifier is critical".into());
            }
            if id.is_none() || id != ski(&issuer) {
                p.push("authorityKeyIdentifier is not the issuer's subjectKeyIdentifier".into());
            }
        }
    }
    if cert.issuer().as_raw() != issuer.subject().as_raw() {
        p.push("issuer name is not the issuer's subject, byte for byte".into());
    }

    // Validity: UTCTime through 2049, GeneralizedTime from 2050, whole
    // seconds, notBefore before notAfter, within the issuer's.
    let v = cert.validity();
    let years = [
        v.not_before.to_datetime().year(),
        v.not_after.to_datetime().year(),
    ];
    for ((tag, content), (what, year)) in validity_encoding(&der)
        .iter()
        .zip([("notBefore", years[0]), ("notAfter", years[1])])
    {
        p.extend(check_time(what, *tag, content, year));
    }
    if v.not_before >= v.not_after {
        p.push("notBefore is not before notAfter".into());
    }
    if v.not_after > issuer.validity().not_after {
        p.push("outlives its issuer".into());
    }

    // EKU per profile; none on CAs.
    let eku = cert.extended_key_usage().ok().flatten();
    let want = match c.kind {
        Kind::Root | Kind::Intermediate => None,
        Kind::Server => Some((true, false)),
        Kind::Client => Some((false, true)),
        Kind::Both => Some((true, true)),
    };
    match (want, eku) {
        (None, None) => {}
        (None, Some(_)) => p.push("a CA certificate carries an EKU".into()),
        (Some(_), None) => p.push("no extendedKeyUsage".into()),
        (Some((server, client)), Some(e)) => {
            let e = e.value;
            if e.server_auth != server
                || e.client_auth != client
                || e.any
                || e.code_signing
                || e.email_protection
                || e.time_stamping
                || e.ocsp_signing
                || !e.other.is_empty()
            {
                p.push(format!(
                    "EKU is {e:?}, expected serverAuth={server} clientAuth={client} only"
                ));
            }
        }
    }

    // SAN: on every leaf, critical exactly when the subject is empty; never
    // on a CA.
    let subject_empty = cert.subject().iter().next().is_none();
    let san = cert.extensions().iter().find(|e| {
        matches!(
            e.parsed_extension(),
            ParsedExtension::SubjectAlternativeName(_)
        )
    });
    match (is_ca, san) {
        (true, None) => {}
        (true, Some(_)) => p.push("a CA certificate carries a SAN".into()),
        (false, None) => p.push("no subjectAltName".into()),
        (false, Some(e)) => {
            if e.critical != subject_empty {
                p.push(format!(
                    "SAN critical is {} with {} subject",
                    e.critical,
                    if subject_empty { "an empty" } else { "a" }
                ));
            }
            if let ParsedExtension::SubjectAlternativeName(names) = e.parsed_extension() {
                if names.general_names.is_empty() {
                    p.push("empty SAN".into());
                }
                for n in &names.general_names {
                    if let GeneralName::DNSName(d) = n {
                        if d.is_empty() || !d.is_ascii() || d.ends_with('.') {
                            p.push(format!("bad dNSName {d:?}"));
                        }
                    }
                }
            }
        }
    }
    if subject_empty && is_ca {
        p.push("a CA with an empty subject".into());
    }
    p
}

#[test]
fn der_level_profile_checks_hold_for_every_certificate() {
    let w = world();
    let mut failures = Vec::new();
    for c in w.certs.iter().chain(&w.single_label) {
        let problems = check_der(c, w.scratch.path());
        if !problems.is_empty() {
            failures.push(format!(
                "{} ({}):\n  - {}",
                c.what,
                c.path,
                problems.join("\n  - ")
            ));
        }
    }
    let kinds: BTreeSet<String> = w.certs.iter().map(|c| format!("{:?}", c.kind)).collect();
    assert_eq!(kinds.len(), 5, "every profile is covered: {kinds:?}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn validity_switches_to_generalized_time_in_2050() {
    let w = world();
    let dir = w.scratch.path();
    let root = der_of(&dir.join("root-2050/ca.pem"));
    let [(nb, _), (na, na_text)] = validity_encoding(&root);
    assert_eq!(nb, 0x17, "notBefore (this year) is UTCTime");
    assert_eq!(na, 0x18, "notAfter (2059) is GeneralizedTime");
    assert!(
        String::from_utf8_lossy(&na_text).starts_with("205"),
        "{na_text:?}"
    );
    let late = der_of(&dir.join("certs-2050/late.acme.internal/cert.pem"));
    assert_eq!(validity_encoding(&late)[1].0, 0x18);
    let early = der_of(&dir.join("certs-2050/early.acme.internal/cert.pem"));
    assert_eq!(validity_encoding(&early)[1].0, 0x17);
}

#[test]
fn serials_are_positive_short_and_random() {
    let w = world();
    let dir = w.scratch.path();
    let serials: Vec<Vec<u8>> = w
        .serial_batch
        .iter()
        .chain(w.certs.iter().map(|c| &c.path))
        .map(|p| parse(&der_of(&dir.join(p))).raw_serial().to_vec())
        .collect();
    let distinct: BTreeSet<&Vec<u8>> = serials.iter().collect();
    assert_eq!(distinct.len(), serials.len(), "a serial number repeats");
    // As 20-octet big-endian numbers: the top bit is always clear (positive
    // within 20 octets), every other bit varies, and about half are set.
    let padded: Vec<[u8; 20]> = serials
        .iter()
        .map(|s| {
            assert!(s.len() <= 20 && s[0] & 0x80 == 0);
            let mut a = [0u8; 20];
            a[20 - s.len()..].copy_from_slice(s);
            a
        })
        .collect();
    let bit = |a: &[u8; 20], i: usize| a[i / 8] >> (7 - i % 8) & 1 == 1;
    assert!(padded.iter().all(|a| !bit(a, 0)), "the sign bit is set");
    let mut ones = 0usize;
    let mut stuck = Vec::new();
    for i in 1..160 {
        let set = padded.iter().filter(|a| bit(a, i)).count();
        if set == 0 || set == padded.len() {
            stuck.push(i);
        }
        ones += set;
    }
    assert!(stuck.is_empty(), "serial bits that never change: {stuck:?}");
    let total = 159 * padded.len();
    let share = ones as f64 / total as f64;
    assert!(
        (0.45..0.55).contains(&share),
        "{:.3} of serial bits are set",
        share
    );
    let top: BTreeSet<u8> = padded.iter().map(|a| a[0]).collect();
    assert!(
        top.len() >= 40,
        "the top octet takes only {} values over {} serials",
        top.len(),
        padded.len()
    );
    // The ledger's serial is the certificate's.
    let ledger = std::fs::read_to_string(dir.join("root-ec-p256/ledger.jsonl")).unwrap();
    let recorded: BTreeSet<String> = ledger
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["serial"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    for p in &w.serial_batch {
        let s = uca::pki::x509::hex(parse(&der_of(&dir.join(p))).raw_serial());
        assert!(
            recorded.contains(s.trim_start_matches("00")),
            "{p}: serial {s} is not in the ledger"
        );
    }
}

/// Keeps the list of deviations and fixtures/CONFORMANCE.md in step.
#[test]
fn every_documented_deviation_is_in_conformance_md() {
    let md = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/CONFORMANCE.md"),
    )
    .unwrap();
    let missing: Vec<&str> = CABF_DEVIATIONS
        .iter()
        .map(|(c, _)| *c)
        .chain([
            PKIX_SINGLE_LABEL,
            "pkix.unknown_subject_key_identifier_calculation_method",
        ])
        .filter(|c| !md.contains(c))
        .collect();
    assert!(
        missing.is_empty(),
        "fixtures/CONFORMANCE.md does not explain: {missing:?}"
    );
}

/// `--valid-for 200d` and `--days 200` span exactly 200 days, notBefore
/// and notAfter included, with the minute of backdating inside: pkilint's
/// CA/B Forum 200-day limit does not fire for them, and does for 201 days.
/// (Before, `--days 200` gave 200 days and 61 seconds, which it flagged.)
#[test]
fn a_200_day_lifetime_meets_a_200_day_limit_exactly() {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal"]);
    let pass = s.pass_file().display().to_string();
    let cases = [
        ("valid-for-200", ["--valid-for", "200d"]),
        ("days-200", ["--days", "200"]),
        ("valid-for-201", ["--valid-for", "201d"]),
    ];
    let mut jobs = Vec::new();
    for (out, lifetime) in &cases {
        let mut args = vec![
            "issue",
            "--dir",
            "ca",
            "--out",
            out,
            "--profile",
            "server",
            "--passphrase-file",
            &pass,
        ];
        args.extend_from_slice(lifetime);
        args.push("web.internal");
        uca_ok(&s, &args);
        let cert = format!("{out}/web.internal/cert.pem");
        let der = der_of(&s.path().join(&cert));
        let c = parse(&der);
        let span = c.validity().not_after.timestamp() - c.validity().not_before.timestamp();
        let days = if out.ends_with("201") { 201 } else { 200 };
        assert_eq!(span, days * 86_400 - 1, "{out}: notAfter - notBefore");
        jobs.push(lint_job("cabf", &["-t", "DV-FINAL-CERTIFICATE"], &[&cert]));
    }
    let results = pkilint(&jobs, s.path());
    let over_200 = |findings: &Vec<Finding>| {
        findings
            .iter()
            .any(|f| f.code == "cabf.serverauth.certificate_validity_period_exceeds_200_days")
    };
    assert!(!over_200(&results[0]), "--valid-for 200d: {:?}", results[0]);
    assert!(!over_200(&results[1]), "--days 200: {:?}", results[1]);
    assert!(
        over_200(&results[2]),
        "201 days must be flagged: {:?}",
        results[2]
    );
}

/// Every attribute type a subject template accepts, alone before the CN and
/// all together, with extra usages: pkilint's RFC 5280 linter reports no
/// ERROR or FATAL finding. A type uca would write in a way pkilint refuses
/// (a lone DC, which is no domain name) must be refused by the template.
#[test]
fn every_attribute_a_subject_template_accepts_passes_pkilint() {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal"]);
    let pass = s.pass_file().display().to_string();
    // RFC 4514's and OpenSSL's names, and the values a service would give.
    let candidates = [
        "C=DE",
        "ST=Bavaria",
        "L=Munich",
        "STREET=Main Street 1",
        r"O=Acme\, Inc.",
        "OU={hostbase}",
        "DC=acme",
        "UID=alice",
        "serialNumber=A-1234",
        "title=DBA",
        "emailAddress=a@acme.internal",
    ];
    let mut accepted = Vec::new();
    let mut jobs = Vec::new();
    let mut issue = |out: &str, template: &str| -> bool {
        let args = [
            "issue",
            "--dir",
            "ca",
            "--out",
            out,
            "--profile",
            "client",
            "--passphrase-file",
            &pass,
            "--subject",
            template,
            "--eku",
            "emailProtection",
            "--eku",
            "1.3.6.1.5.5.7.3.17",
            "pg1.internal",
        ];
        let o = s.uca(&args);
        if o.status.success() {
            let cert = format!("{out}/pg1.internal/cert.pem");
            jobs.push((template.to_string(), lint_job("pkix", &[], &[&cert])));
        }
        o.status.success()
    };
    for (i, attribute) in candidates.iter().enumerate() {
        if issue(&format!("alone-{i}"), &format!("{attribute},CN={{name}}")) {
            accepted.push(*attribute);
        }
    }
    for must in [
        "C=DE",
        r"O=Acme\, Inc.",
        "OU={hostbase}",
        "UID=alice",
        "title=DBA",
    ] {
        assert!(accepted.contains(&must), "{must} was refused: {accepted:?}");
    }
    assert!(issue("all", &format!("{},CN={{name}}", accepted.join(","))));
    // An attribute type given twice, kept as written.
    assert!(issue("repeated", "O=Acme,OU=db,OU=ops,CN={name}"));
    let lint: Vec<_> = jobs.iter().map(|(_, j)| j.clone()).collect();
    let results = pkilint(&lint, s.path());
    let errors: Vec<String> = jobs
        .iter()
        .zip(&results)
        .flat_map(|((template, _), found)| {
            found
                .iter()
                .filter(|f| is_error(f))
                .map(move |f| format!("{template}: {} {}", f.code, f.message))
        })
        .collect();
    assert!(
        errors.is_empty(),
        "pkilint RFC 5280 errors:\n{}",
        errors.join("\n")
    );
}
