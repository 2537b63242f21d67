//! Certificates and keys made by the real `uca` binary, checked with stock
//! OpenSSL: chain verification per purpose, key files, and the extensions
//! every leaf and CA must carry. OpenSSL is required: these tests fail (they
//! do not skip) if it is missing.

mod common;

use std::path::Path;

use common::*;

const PROFILES: [&str; 3] = ["server", "client", "both"];

fn openssl(s: &Scratch, args: &[&str]) -> (bool, String) {
    run("openssl", args, s.path())
}

/// Runs openssl and asserts success.
fn openssl_ok(s: &Scratch, args: &[&str]) -> String {
    let (ok, out) = openssl(s, args);
    assert!(ok, "openssl {} failed:\n{out}", args.join(" "));
    out
}

/// The hex value on the line after `label` in `openssl x509 -text` output.
fn value_after(text: &str, label: &str) -> String {
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        if l.trim_start().starts_with(label) {
            return lines
                .next()
                .unwrap_or_default()
                .trim()
                .trim_start_matches("keyid:")
                .to_string();
        }
    }
    panic!("no {label} in:\n{text}");
}

/// What `openssl pkey -text` says about each key type.
fn key_text_marker(key: &str) -> &'static str {
    match key {
        "ec-p256" => "NIST CURVE: P-256",
        "ec-p384" => "NIST CURVE: P-384",
        "ed25519" => "ED25519 Private-Key",
        "rsa-2048" => "Private-Key: (2048 bit",
        "rsa-3072" => "Private-Key: (3072 bit",
        "rsa-4096" => "Private-Key: (4096 bit",
        other => panic!("unknown key type {other}"),
    }
}

fn signature_algorithm(ca_key: &str) -> &'static str {
    match ca_key {
        "ec-p256" => "Signature Algorithm: ecdsa-with-SHA256",
        "ec-p384" => "Signature Algorithm: ecdsa-with-SHA384",
        "ed25519" => "Signature Algorithm: ED25519",
        _ => "Signature Algorithm: sha256WithRSAEncryption",
    }
}

/// The `serial X` uca printed for `name` (issue) or for the signed file (sign).
fn reported_serial(stdout: &str) -> String {
    let after = stdout
        .split("serial ")
        .nth(1)
        .unwrap_or_else(|| panic!("no serial in {stdout}"));
    after.split_whitespace().next().unwrap().to_string()
}

/// One leaf certificate to check, with the key that belongs to it.
struct Leaf<'a> {
    cert: &'a str,
    key: &'a str,
    name: &'a str,
    profile: &'a str,
    key_type: &'a str,
    ca_key_type: &'a str,
    serial: &'a str,
}

/// Everything OpenSSL must say about a leaf issued under `ca/ca.pem`.
fn check_leaf(s: &Scratch, leaf: &Leaf<'_>) {
    let ctx = format!(
        "{} ({} profile, {} key, {} CA)",
        leaf.name, leaf.profile, leaf.key_type, leaf.ca_key_type
    );
    let serves = leaf.profile != "client";
    let clients = leaf.profile != "server";

    // Chain verification per purpose, strict X.509 checking on.
    for (purpose, expect) in [("sslserver", serves), ("sslclient", clients)] {
        let (ok, out) = openssl(
            s,
            &[
                "verify",
                "-x509_strict",
                "-CAfile",
                "ca/ca.pem",
                "-purpose",
                purpose,
                leaf.cert,
            ],
        );
        if expect {
            assert!(
                ok,
                "{ctx}: openssl verify -purpose {purpose} should pass:\n{out}"
            );
            assert!(out.contains(&format!("{}: OK", leaf.cert)), "{ctx}: {out}");
        } else {
            assert!(
                !ok,
                "{ctx}: openssl verify -purpose {purpose} should FAIL:\n{out}"
            );
            assert!(
                out.contains("unsuitable certificate purpose"),
                "{ctx}: wrong failure reason:\n{out}"
            );
        }
    }
    if serves {
        let out = openssl_ok(
            s,
            &[
                "verify",
                "-CAfile",
                "ca/ca.pem",
                "-purpose",
                "sslserver",
                "-verify_hostname",
                leaf.name,
                leaf.cert,
            ],
        );
        assert!(out.contains(": OK"), "{ctx}: {out}");
        let (ok, out) = openssl(
            s,
            &[
                "verify",
                "-CAfile",
                "ca/ca.pem",
                "-purpose",
                "sslserver",
                "-verify_hostname",
                "other.invalid",
                leaf.cert,
            ],
        );
        assert!(
            !ok && out.contains("hostname mismatch"),
            "{ctx}: a wrong hostname must fail:\n{out}"
        );
    }

    // The key file: readable without a passphrase, of the right type, and
    // the key of this certificate.
    openssl_ok(s, &["pkey", "-in", leaf.key, "-noout"]);
    let text = openssl_ok(s, &["pkey", "-in", leaf.key, "-noout", "-text"]);
    assert!(
        text.contains(key_text_marker(leaf.key_type)),
        "{ctx}: key type:\n{}",
        text.lines().next().unwrap_or_default()
    );
    let key_pub = openssl_ok(s, &["pkey", "-in", leaf.key, "-pubout"]);
    let cert_pub = openssl_ok(s, &["x509", "-in", leaf.cert, "-pubkey", "-noout"]);
    assert_eq!(
        key_pub, cert_pub,
        "{ctx}: key.pem does not belong to the certificate"
    );

    // The extensions.
    let text = openssl_ok(s, &["x509", "-in", leaf.cert, "-text", "-noout"]);
    for needle in [
        "Version: 3 (0x2)",
        "X509v3 Basic Constraints: critical",
        "CA:FALSE",
        "X509v3 Key Usage: critical",
        "Digital Signature",
        "X509v3 Authority Key Identifier",
        "X509v3 Subject Key Identifier",
        "Issuer: CN = Test Root",
        signature_algorithm(leaf.ca_key_type),
    ] {
        assert!(
            text.contains(needle),
            "{ctx}: missing {needle:?} in:\n{text}"
        );
    }
    assert!(
        text.contains(&format!("DNS:{}", leaf.name)),
        "{ctx}: SAN missing:\n{text}"
    );
    assert_eq!(
        text.contains("TLS Web Server Authentication"),
        serves,
        "{ctx}: serverAuth EKU:\n{text}"
    );
    assert_eq!(
        text.contains("TLS Web Client Authentication"),
        clients,
        "{ctx}: clientAuth EKU:\n{text}"
    );
    assert!(
        !text.contains("Certificate Sign"),
        "{ctx}: a leaf must not sign certificates:\n{text}"
    );
    let rsa_server = leaf.key_type.starts_with("rsa") && serves;
    assert_eq!(
        text.contains("Key Encipherment"),
        rsa_server,
        "{ctx}: keyEncipherment only for RSA server keys:\n{text}"
    );

    // AKI names the CA's key.
    let ca_text = openssl_ok(s, &["x509", "-in", "ca/ca.pem", "-text", "-noout"]);
    assert_eq!(
        value_after(&text, "X509v3 Authority Key Identifier"),
        value_after(&ca_text, "X509v3 Subject Key Identifier"),
        "{ctx}: AKI must equal the CA's SKI"
    );

    // Serial: positive, at most 20 octets, and what uca reported.
    let serial_line = openssl_ok(s, &["x509", "-in", leaf.cert, "-noout", "-serial"]);
    let hex = serial_line
        .trim()
        .strip_prefix("serial=")
        .unwrap_or_else(|| panic!("{ctx}: {serial_line}"));
    assert!(!hex.starts_with('-'), "{ctx}: negative serial {hex}");
    assert!(
        hex.len() <= 40 && hex.len() >= 16,
        "{ctx}: serial {hex} must be 8..=20 bytes"
    );
    let der = std::fs::read(s.join(leaf.cert)).unwrap();
    let block = pem::parse(&der).unwrap();
    let parsed = uca::pki::x509::parse(block.contents()).unwrap();
    let raw = parsed.raw_serial();
    assert!(raw.len() <= 20, "{ctx}: DER serial is {} octets", raw.len());
    assert_eq!(raw[0] & 0x80, 0, "{ctx}: DER serial is negative");
    assert_eq!(
        hex.to_ascii_lowercase().trim_start_matches('0'),
        leaf.serial.trim_start_matches('0'),
        "{ctx}: openssl's serial differs from the one uca reported"
    );
}

/// `uca issue` one certificate and returns the serial uca reported.
fn issue(s: &Scratch, name: &str, profile: &str, key: &str) -> String {
    let out = s.issue(&["--profile", profile, "--key", key, name]);
    reported_serial(&stdout(&out))
}

/// A CA with an ec-p256 key, and one leaf of `key` type per profile.
fn leaf_matrix(key: &str) {
    let s = Scratch::new();
    s.init_ca(&["--key", "ec-p256"]);
    for profile in PROFILES {
        let name = format!("{profile}.{key}.internal");
        let serial = issue(&s, &name, profile, key);
        let cert = format!("certs/{name}/cert.pem");
        let keyf = format!("certs/{name}/key.pem");
        check_leaf(
            &s,
            &Leaf {
                cert: &cert,
                key: &keyf,
                name: &name,
                profile,
                key_type: key,
                ca_key_type: "ec-p256",
                serial: &serial,
            },
        );
    }
}

#[test]
fn leaf_ec_p256_every_profile() {
    leaf_matrix("ec-p256");
}

#[test]
fn leaf_ec_p384_every_profile() {
    leaf_matrix("ec-p384");
}

#[test]
fn leaf_ed25519_every_profile() {
    leaf_matrix("ed25519");
}

#[test]
fn leaf_rsa_2048_every_profile() {
    leaf_matrix("rsa-2048");
}

/// Large RSA keys are slow to generate, so uca generates one (profile
/// both) and the server and client profiles reuse one OpenSSL-made key
/// through `uca sign`.
fn big_rsa(bits: u32) {
    let key = format!("rsa-{bits}");
    let s = Scratch::new();
    s.init_ca(&["--key", "ec-p256"]);
    let name = format!("both.{key}.internal");
    let serial = issue(&s, &name, "both", &key);
    let (cert, keyf) = (
        format!("certs/{name}/cert.pem"),
        format!("certs/{name}/key.pem"),
    );
    check_leaf(
        &s,
        &Leaf {
            cert: &cert,
            key: &keyf,
            name: &name,
            profile: "both",
            key_type: &key,
            ca_key_type: "ec-p256",
            serial: &serial,
        },
    );

    let csr_name = format!("csr.{key}.internal");
    openssl_ok(
        &s,
        &[
            "req",
            "-new",
            "-newkey",
            &format!("rsa:{bits}"),
            "-nodes",
            "-keyout",
            "csr-key.pem",
            "-subj",
            &format!("/CN={csr_name}"),
            "-addext",
            &format!("subjectAltName=DNS:{csr_name}"),
            "-out",
            "req.csr",
        ],
    );
    let pass = s.pass_file();
    for profile in ["server", "client"] {
        let out_file = format!("signed-{profile}.pem");
        let o = ok(&s.uca(&[
            "sign",
            "--dir",
            "ca",
            "--profile",
            profile,
            "--out",
            &out_file,
            "--passphrase-file",
            pass.to_str().unwrap(),
            "req.csr",
        ]));
        let serial = reported_serial(&stdout(&o));
        check_leaf(
            &s,
            &Leaf {
                cert: &out_file,
                key: "csr-key.pem",
                name: &csr_name,
                profile,
                key_type: &key,
                ca_key_type: "ec-p256",
                serial: &serial,
            },
        );
    }
}

#[test]
fn leaf_rsa_3072_every_profile() {
    big_rsa(3072);
}

#[test]
fn leaf_rsa_4096_every_profile() {
    big_rsa(4096);
}

/// A CA of `ca_key` type: its key opens with the passphrase and only with
/// it, its certificate is a proper root, and ec-p256 leaves of every profile
/// verify under it.
fn ca_key_type(ca_key: &str) {
    let s = Scratch::new();
    s.init_ca(&["--key", ca_key]);
    std::fs::write(s.join("wrong.txt"), "not the passphrase\n").unwrap();

    openssl_ok(
        &s,
        &[
            "pkey",
            "-in",
            "ca/private/ca-key.pem",
            "-passin",
            "file:pass.txt",
            "-noout",
        ],
    );
    let text = openssl_ok(
        &s,
        &[
            "pkey",
            "-in",
            "ca/private/ca-key.pem",
            "-passin",
            "file:pass.txt",
            "-noout",
            "-text",
        ],
    );
    assert!(
        text.contains(key_text_marker(ca_key)),
        "{ca_key} CA key type:\n{}",
        text.lines().next().unwrap_or_default()
    );
    let key_pub = openssl_ok(
        &s,
        &[
            "pkey",
            "-in",
            "ca/private/ca-key.pem",
            "-passin",
            "file:pass.txt",
            "-pubout",
        ],
    );
    let cert_pub = openssl_ok(&s, &["x509", "-in", "ca/ca.pem", "-pubkey", "-noout"]);
    assert_eq!(
        key_pub, cert_pub,
        "{ca_key}: the CA key does not belong to ca.pem"
    );
    for bad in ["file:wrong.txt", "pass:"] {
        let (opened, out) = openssl(
            &s,
            &[
                "pkey",
                "-in",
                "ca/private/ca-key.pem",
                "-passin",
                bad,
                "-noout",
            ],
        );
        assert!(!opened, "{ca_key}: the CA key opened with {bad}:\n{out}");
        // About one wrong key in 256 still yields valid CBC padding; OpenSSL
        // then fails to decode the garbage instead ("Could not read key").
        assert!(
            out.contains("bad decrypt")
                || out.contains("wrong password")
                || out.contains("Could not read key"),
            "{ca_key}: {out}"
        );
    }
    let pem_text = std::fs::read_to_string(s.join("ca/private/ca-key.pem")).unwrap();
    assert!(
        pem_text.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
        "{pem_text}"
    );

    let ca_text = openssl_ok(&s, &["x509", "-in", "ca/ca.pem", "-text", "-noout"]);
    for needle in [
        "X509v3 Basic Constraints: critical",
        "CA:TRUE, pathlen:1",
        "X509v3 Key Usage: critical",
        "Certificate Sign, CRL Sign",
        "X509v3 Subject Key Identifier",
        "Subject: CN = Test Root",
        "Issuer: CN = Test Root",
        signature_algorithm(ca_key),
    ] {
        assert!(
            ca_text.contains(needle),
            "{ca_key} CA: missing {needle:?} in:\n{ca_text}"
        );
    }
    let out = openssl_ok(
        &s,
        &[
            "verify",
            "-x509_strict",
            "-CAfile",
            "ca/ca.pem",
            "ca/ca.pem",
        ],
    );
    assert!(out.contains("ca/ca.pem: OK"), "{out}");

    for profile in PROFILES {
        let name = format!("{profile}.under-{ca_key}.internal");
        let serial = issue(&s, &name, profile, "ec-p256");
        let cert = format!("certs/{name}/cert.pem");
        let keyf = format!("certs/{name}/key.pem");
        check_leaf(
            &s,
            &Leaf {
                cert: &cert,
                key: &keyf,
                name: &name,
                profile,
                key_type: "ec-p256",
                ca_key_type: ca_key,
                serial: &serial,
            },
        );
        // The chain file verifies too (leaf, then the root).
        let chain = format!("certs/{name}/chain.pem");
        let out = openssl_ok(
            &s,
            &[
                "verify",
                "-CAfile",
                "ca/ca.pem",
                "-untrusted",
                &chain,
                &chain,
            ],
        );
        assert!(out.contains(": OK"), "{out}");
    }
}

#[test]
fn ca_ec_p256() {
    ca_key_type("ec-p256");
}

#[test]
fn ca_ec_p384() {
    ca_key_type("ec-p384");
}

#[test]
fn ca_ed25519() {
    ca_key_type("ed25519");
}

#[test]
fn ca_rsa_2048() {
    ca_key_type("rsa-2048");
}

#[test]
fn ca_rsa_3072() {
    ca_key_type("rsa-3072");
}

#[test]
fn ca_rsa_4096() {
    ca_key_type("rsa-4096");
}

/// The names directly inside `dir`, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

#[test]
fn name_constraints_are_in_the_ca_and_enforced_before_signing() {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal", "--permit", "10.0.0.0/8"]);
    let ca_text = openssl_ok(&s, &["x509", "-in", "ca/ca.pem", "-text", "-noout"]);
    assert!(
        ca_text.contains("X509v3 Name Constraints: critical"),
        "{ca_text}"
    );
    assert!(ca_text.contains("DNS:internal"), "{ca_text}");
    assert!(ca_text.contains("IP:10.0.0.0/255.0.0.0"), "{ca_text}");

    // Inside the constraints: issued, and OpenSSL (which enforces name
    // constraints) accepts it.
    let serial = issue(&s, "web.internal", "both", "ec-p256");
    check_leaf(
        &s,
        &Leaf {
            cert: "certs/web.internal/cert.pem",
            key: "certs/web.internal/key.pem",
            name: "web.internal",
            profile: "both",
            key_type: "ec-p256",
            ca_key_type: "ec-p256",
            serial: &serial,
        },
    );
    // An IP inside 10.0.0.0/8 that also has a DNS name inside `internal`.
    issue(&s, "10.1.2.3", "server", "ec-p256");
    let o = ok(&s.uca(&[
        "verify",
        "certs/10.1.2.3/cert.pem",
        "--ca",
        "ca/ca.pem",
        "--name",
        "10.1.2.3",
    ]));
    assert!(
        stdout(&o)
            .starts_with("OK: (empty subject, IP:10.1.2.3) is valid for server use (as 10.1.2.3)"),
        "{}",
        stdout(&o)
    );

    // Outside: refused before anything is signed or written.
    let before = s.join("ca/ledger.jsonl");
    let ledger_before = std::fs::read_to_string(&before).unwrap_or_default();
    let pass = s.pass_file();
    for (name, needle) in [
        ("web.example.com", "web.example.com"),
        ("192.168.1.1", "192.168.1.1"),
    ] {
        let o = s.uca(&[
            "issue",
            "--dir",
            "ca",
            "--out",
            "certs",
            "--passphrase-file",
            pass.to_str().unwrap(),
            name,
        ]);
        let err = fails_with(&o, needle);
        assert!(err.contains("name constraints"), "{err}");
        assert!(
            !s.join(&format!("certs/{name}")).exists(),
            "nothing may be written for {name}"
        );
    }
    // A batch with one bad name issues nothing at all.
    let o = s.uca(&[
        "issue",
        "--dir",
        "ca",
        "--out",
        "certs",
        "--passphrase-file",
        pass.to_str().unwrap(),
        "ok.internal",
        "bad.example.com",
    ]);
    fails_with(&o, "bad.example.com");
    assert!(!s.join("certs/ok.internal").exists());
    assert_eq!(
        entries(&s.join("certs")),
        vec!["10.1.2.3", "web.internal"],
        "only the two permitted certificates may exist under certs/"
    );
    assert_eq!(
        std::fs::read_to_string(&before).unwrap_or_default(),
        ledger_before,
        "the ledger changed for refused names"
    );

    // uca verify agrees with OpenSSL about the permitted certificate.
    let o = ok(&s.uca(&[
        "verify",
        "certs/web.internal/cert.pem",
        "--ca",
        "ca/ca.pem",
        "--name",
        "web.internal",
    ]));
    assert!(
        stdout(&o).starts_with("OK: CN=web.internal is valid for server use (as web.internal)"),
        "{}",
        stdout(&o)
    );
}

/// OpenSSL checks a commonName that looks like a host name against DNS name
/// constraints when the certificate has no DNS SAN. uca puts an IP name into
/// the CN (CN=10.1.2.3), so under a CA with a DNS permit OpenSSL refuses the
/// certificate with "permitted subtree violation" although its only SAN,
/// IP:10.1.2.3, is inside the CA's 10.0.0.0/8. rustls/webpki accept it.
#[test]
fn ip_certificate_under_dns_constrained_ca_verifies_with_openssl() {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal", "--permit", "10.0.0.0/8"]);
    issue(&s, "10.1.2.3", "server", "ec-p256");
    let out = openssl_ok(
        &s,
        &[
            "verify",
            "-x509_strict",
            "-CAfile",
            "ca/ca.pem",
            "-purpose",
            "sslserver",
            "-verify_ip",
            "10.1.2.3",
            "certs/10.1.2.3/cert.pem",
        ],
    );
    assert!(out.contains(": OK"), "{out}");
}
