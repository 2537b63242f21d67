//! `uca inspect` and `uca check` against real files made by the real binary
//! (and by OpenSSL, and by rcgen for validity periods uca refuses to issue).

mod common;

use std::process::Output;

use common::{fails_with, ok, run, stderr, stdout, Scratch};
use serde_json::Value;
use time::{Duration, OffsetDateTime};

/// A CA permitting `internal` and 10.0.0.0/8, and web1.internal and
/// db.internal below it, each with exactly its name and IP 10.1.2.3 as SANs.
fn setup() -> Scratch {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal", "--permit", "10.0.0.0/8"]);
    s.issue(&[
        "web1.internal",
        "db.internal",
        "--san",
        "IP:10.1.2.3",
        "--san-rule",
        "none",
    ]);
    s
}

fn inspect_json(s: &Scratch, file: &str) -> Value {
    let o = ok(&s.uca(&["inspect", "--json", file]));
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("inspect --json {file} is not JSON: {e}\n{}", stdout(&o)))
}

/// The extension named `name` in a JSON block.
fn ext<'a>(block: &'a Value, name: &str) -> &'a Value {
    block["extensions"]
        .as_array()
        .expect("extensions array")
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no {name} extension in {block:#}"))
}

/// What OpenSSL says, to check uca against an independent implementation.
fn openssl(s: &Scratch, shell: &str) -> String {
    let (success, out) = run("sh", &["-c", shell], s.path());
    assert!(success, "{shell}: {out}");
    out.trim().to_string()
}

/// The colon-hex SHA-256 fingerprint OpenSSL computes.
fn openssl_fingerprint(s: &Scratch, cert: &str) -> String {
    let out = openssl(
        s,
        &format!("openssl x509 -in {cert} -noout -fingerprint -sha256"),
    );
    out.split_once('=').expect("Fingerprint=...").1.to_string()
}

/// The base64 SHA-256 of the SubjectPublicKeyInfo, computed by OpenSSL.
fn openssl_pin(s: &Scratch, cert: &str) -> String {
    openssl(
        s,
        &format!("openssl x509 -in {cert} -noout -pubkey | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64"),
    )
}

/// A self-signed P-256 certificate with an arbitrary validity window, which
/// `uca issue` rightly refuses to make.
fn self_signed_pem(cn: &str, not_before: OffsetDateTime, not_after: OffsetDateTime) -> String {
    let key = uca::pki::keys::KeyType::EcP256.generate().unwrap();
    let kp = key.key_pair().unwrap();
    let mut p = rcgen::CertificateParams::new(vec![cn.to_string()]).unwrap();
    p.distinguished_name = uca::pki::profile::subject_cn(cn);
    p.not_before = not_before;
    p.not_after = not_after;
    p.self_signed(&kp).unwrap().pem()
}

fn write(s: &Scratch, rel: &str, contents: impl AsRef<[u8]>) {
    let path = s.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}

/// Asserts exit 3 and that every stderr line is a `uca: error:` line; returns stderr.
fn unchecked(o: &Output) -> String {
    let err = stderr(o);
    assert_eq!(
        o.status.code(),
        Some(3),
        "expected exit 3, got {:?}; stderr: {err}; stdout: {}",
        o.status.code(),
        stdout(o)
    );
    assert!(!err.trim().is_empty(), "exit 3 must say why on stderr");
    for line in err.lines() {
        assert!(
            line.starts_with("uca: error: "),
            "stderr line must start with 'uca: error: ': {line}"
        );
    }
    err
}

// ---------------------------------------------------------------- inspect

#[test]
fn inspect_leaf_shows_sans_usages_validity_and_fingerprints() {
    let s = setup();
    let out = stdout(&ok(&s.uca(&["inspect", "certs/web1.internal/cert.pem"])));
    assert!(out.starts_with("[1/1] Certificate\n"), "{out}");
    for needle in [
        "Subject:             CN=web1.internal\n",
        "Issuer:              CN=Test Root\n",
        "Version:             3\n",
        "Signature algorithm: ECDSA-SHA256\n",
        "Public key:          EC P-256 (256 bits)\n",
        "Subject alternative names: DNS:web1.internal, IP:10.1.2.3\n",
        "Key usage (critical): digitalSignature\n",
        "Extended key usage: serverAuth (TLS server), clientAuth (TLS client)\n",
        "Basic constraints (critical): CA:FALSE\n",
        "Subject key identifier: ",
        "Authority key identifier: ",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    // Default validity is 397 days, counted from the moment of issue.
    assert!(
        out.contains("(expires in 396 days)") || out.contains("(expires in 397 days)"),
        "{out}"
    );
    let fp = openssl_fingerprint(&s, "certs/web1.internal/cert.pem");
    assert!(
        out.contains(&format!("SHA-256 fingerprint: {fp}\n")),
        "fingerprint {fp} not in:\n{out}"
    );
    let pin = openssl_pin(&s, "certs/web1.internal/cert.pem");
    assert!(
        out.contains(&format!("SPKI SHA-256 pin:    {pin}\n")),
        "pin {pin} not in:\n{out}"
    );
    // The AKI of the leaf is the SKI of the CA.
    let ca = inspect_json(&s, "ca/ca.pem");
    let leaf = inspect_json(&s, "certs/web1.internal/cert.pem");
    assert_eq!(
        ext(&leaf["blocks"][0], "authority_key_identifier")["key_id"],
        ext(&ca["blocks"][0], "subject_key_identifier")["key_id"]
    );
}

#[test]
fn inspect_ca_shows_ca_true_pathlen_and_name_constraints() {
    let s = setup();
    let out = stdout(&ok(&s.uca(&["inspect", "ca/ca.pem"])));
    for needle in [
        "Issuer:              CN=Test Root (self-signed)\n",
        "Basic constraints (critical): CA:TRUE, pathlen:1\n",
        "Key usage (critical): keyCertSign, cRLSign\n",
        "Name constraints (critical): permitted DNS:internal, IP:10.0.0.0/8; excluded none\n",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    assert!(
        !out.contains("Authority key identifier"),
        "a root has no AKI:\n{out}"
    );
}

#[test]
fn inspect_chain_numbers_every_block_leaf_first() {
    let s = setup();
    let out = stdout(&ok(&s.uca(&["inspect", "certs/db.internal/chain.pem"])));
    let first = out.find("[1/2] Certificate\n  Subject:             CN=db.internal\n");
    let second = out.find("[2/2] Certificate\n  Subject:             CN=Test Root\n");
    assert!(
        first.is_some() && second.is_some() && first < second,
        "{out}"
    );
    let json = inspect_json(&s, "certs/db.internal/chain.pem");
    let blocks = json["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 2);
    assert_eq!(blocks[0]["index"], 1);
    assert_eq!(blocks[1]["index"], 2);
    assert_eq!(blocks[1]["self_signed"], true);
}

#[test]
fn inspect_json_has_stable_fields() {
    let s = setup();
    let issued = stdout(&s.issue(&["app.internal", "--san", "IP:10.9.8.7", "--san-rule", "none"]));
    let serial = issued
        .split("serial ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let json = inspect_json(&s, "certs/app.internal/cert.pem");
    assert_eq!(json["file"], "certs/app.internal/cert.pem");
    let b = &json["blocks"][0];
    assert_eq!(b["type"], "certificate");
    assert_eq!(b["version"], 3);
    assert_eq!(b["subject"], "CN=app.internal");
    assert_eq!(b["issuer"], "CN=Test Root");
    assert_eq!(b["self_signed"], false);
    assert_eq!(b["signature_algorithm"], "ECDSA-SHA256");
    // The same serial as `uca issue` printed, as colon hex.
    assert_eq!(
        b["serial"]
            .as_str()
            .unwrap()
            .replace(':', "")
            .to_lowercase(),
        serial
    );
    assert_eq!(b["status"], "valid");
    let days = b["days_left"].as_i64().unwrap();
    assert!((396..=397).contains(&days), "days_left {days}");
    let not_after = OffsetDateTime::parse(
        b["not_after"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let expected = OffsetDateTime::now_utc() + Duration::days(397);
    assert!(
        (not_after - expected).abs() < Duration::minutes(5),
        "not_after {not_after}"
    );
    assert!(b["not_before"].as_str().unwrap().ends_with('Z'));
    assert_eq!(b["public_key"]["algorithm"], "EC");
    assert_eq!(b["public_key"]["curve"], "P-256");
    assert_eq!(b["public_key"]["bits"], 256);
    assert_eq!(
        b["public_key"]["spki_sha256_pin"],
        openssl_pin(&s, "certs/app.internal/cert.pem")
    );
    assert_eq!(
        b["sha256_fingerprint"],
        openssl_fingerprint(&s, "certs/app.internal/cert.pem")
    );

    let bc = ext(b, "basic_constraints");
    assert_eq!(
        (bc["critical"].clone(), bc["ca"].clone(), bc["oid"].clone()),
        (true.into(), false.into(), "2.5.29.19".into())
    );
    let ku = ext(b, "key_usage");
    assert_eq!(ku["critical"], true);
    assert_eq!(ku["usages"], serde_json::json!(["digitalSignature"]));
    assert_eq!(
        ext(b, "extended_key_usage")["usages"],
        serde_json::json!(["serverAuth", "clientAuth"])
    );
    assert_eq!(
        ext(b, "subject_alt_names")["names"],
        serde_json::json!(["DNS:app.internal", "IP:10.9.8.7"])
    );

    let ca = &inspect_json(&s, "ca/ca.pem")["blocks"][0];
    let bc = ext(ca, "basic_constraints");
    assert_eq!(
        (bc["ca"].clone(), bc["pathlen"].clone()),
        (true.into(), 1.into())
    );
    let nc = ext(ca, "name_constraints");
    assert_eq!(
        nc["permitted"],
        serde_json::json!(["DNS:internal", "IP:10.0.0.0/8"])
    );
    assert_eq!(nc["excluded"], serde_json::json!([]));
}

#[test]
fn inspect_private_key_never_prints_key_material() {
    let s = setup();
    let key_pem = std::fs::read_to_string(s.join("certs/web1.internal/key.pem")).unwrap();
    let body: Vec<&str> = key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    assert!(!body.is_empty());
    let text = stdout(&ok(&s.uca(&["inspect", "certs/web1.internal/key.pem"])));
    let json = stdout(&ok(&s.uca(&[
        "inspect",
        "--json",
        "certs/web1.internal/key.pem",
    ])));
    for out in [&text, &json] {
        assert!(!out.contains(&body.concat()), "the key body leaked:\n{out}");
        for line in &body {
            assert!(
                !out.contains(line),
                "a line of the key leaked ({line}):\n{out}"
            );
        }
        assert!(!out.contains("BEGIN PRIVATE KEY"), "{out}");
    }
    assert!(text.starts_with("[1/1] Private key"), "{text}");
    assert!(text.contains("Key type:            ec-p256\n"), "{text}");
    // The key's pin is its certificate's pin: that is how they are matched.
    let pin = openssl_pin(&s, "certs/web1.internal/cert.pem");
    assert!(
        text.contains(&format!("SPKI SHA-256 pin:    {pin}\n")),
        "{text}"
    );
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["blocks"][0]["type"], "private_key");
    assert_eq!(v["blocks"][0]["key_type"], "ec-p256");
    assert_eq!(v["blocks"][0]["public_key"]["spki_sha256_pin"], pin);
}

#[test]
fn inspect_foreign_certificate_with_other_extensions() {
    let s = Scratch::new();
    openssl(
        &s,
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout k.pem -days 2 -out ext.pem \
         -subj '/C=DE/O=Acme/CN=ext test' \
         -addext 'basicConstraints=critical,CA:TRUE' \
         -addext 'authorityInfoAccess=OCSP;URI:http://ocsp.example' \
         -addext 'crlDistributionPoints=URI:http://crl.example/x.crl' \
         -addext '1.2.3.4.5=critical,ASN1:UTF8String:hello' \
         -addext 'nameConstraints=critical,permitted;DNS:example.com,excluded;IP:192.168.0.0/255.255.0.0'",
    );
    let out = stdout(&ok(&s.uca(&["inspect", "ext.pem"])));
    for needle in [
        "Subject:             C=DE, O=Acme, CN=ext test\n",
        "Signature algorithm: RSA-SHA256\n",
        "Public key:          RSA (2048 bits)\n",
        "Basic constraints (critical): CA:TRUE, pathlen:unlimited\n",
        "Authority information access: OCSP URI:http://ocsp.example\n",
        "CRL distribution points: URI:http://crl.example/x.crl\n",
        "Unknown extension 1.2.3.4.5 (critical): 7 bytes, not decoded\n",
        "Name constraints (critical): permitted DNS:example.com; excluded IP:192.168.0.0/16\n",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    // -days 2, read a moment later.
    assert!(
        out.contains("(expires in 1 day)") || out.contains("(expires in 2 days)"),
        "{out}"
    );
    let json = inspect_json(&s, "ext.pem");
    let unknown = ext(&json["blocks"][0], "other");
    assert_eq!(
        (unknown["oid"].clone(), unknown["critical"].clone()),
        ("1.2.3.4.5".into(), true.into())
    );
    assert_eq!(unknown["label"], Value::Null);
}

#[test]
fn inspect_other_key_types_from_openssl() {
    let s = Scratch::new();
    openssl(&s, "openssl genpkey -algorithm ed25519 -out ed.pem && openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:2048 -out rsa.pem");
    let ed = stdout(&ok(&s.uca(&["inspect", "ed.pem"])));
    assert!(
        ed.contains("Key type:            ed25519\n")
            && ed.contains("Public key:          Ed25519"),
        "{ed}"
    );
    let rsa = stdout(&ok(&s.uca(&["inspect", "rsa.pem"])));
    assert!(
        rsa.contains("Key type:            rsa-2048\n")
            && rsa.contains("Public key:          RSA (2048 bits)\n"),
        "{rsa}"
    );
    let pin = openssl(
        &s,
        "openssl pkey -in rsa.pem -pubout -outform der | openssl dgst -sha256 -binary | base64",
    );
    assert!(rsa.contains(&pin), "pin {pin} not in {rsa}");
}

#[test]
fn inspect_csr_reports_signature_status_and_requested_extensions() {
    let s = setup();
    openssl(
        &s,
        "openssl req -new -key certs/web1.internal/key.pem -subj /CN=x -addext subjectAltName=DNS:x.internal -out x.csr",
    );
    let out = stdout(&ok(&s.uca(&["inspect", "x.csr"])));
    for needle in [
        "[1/1] Certificate signing request\n",
        "Subject:             CN=x\n",
        "Signature:           valid (signed by the key it carries)\n",
        "Requested extensions:\n    Subject alternative names: DNS:x.internal\n",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    let json = inspect_json(&s, "x.csr");
    assert_eq!(json["blocks"][0]["type"], "csr");
    assert_eq!(json["blocks"][0]["signature_valid"], true);

    // Change one byte of the signature: the CSR still parses but no longer verifies.
    let block = pem::parse(std::fs::read(s.join("x.csr")).unwrap()).unwrap();
    let mut der = block.contents().to_vec();
    *der.last_mut().unwrap() ^= 0x01;
    write(
        &s,
        "bad.csr",
        pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", der)),
    );
    let out = stdout(&ok(&s.uca(&["inspect", "bad.csr"])));
    assert!(out.contains("Signature:           INVALID"), "{out}");
    let json = inspect_json(&s, "bad.csr");
    assert_eq!(json["blocks"][0]["signature_valid"], false);
    assert!(json["blocks"][0]["signature_error"].is_string());
}

#[test]
fn inspect_encrypted_keys_show_the_kdf() {
    let s = setup();
    let out = stdout(&ok(&s.uca(&["inspect", "ca/private/ca-key.pem"])));
    for needle in [
        "[1/1] Encrypted private key (PKCS#8)\n",
        "Encryption:          PBES2\n",
        "Key derivation:      scrypt (N=16384, r=8, p=1)\n",
        "Cipher:              AES-256-CBC\n",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    let json = inspect_json(&s, "ca/private/ca-key.pem");
    let b = &json["blocks"][0];
    assert_eq!(b["type"], "encrypted_private_key");
    assert_eq!(
        (b["kdf"].clone(), b["scrypt_n"].clone()),
        ("scrypt".into(), 16384.into())
    );

    openssl(
        &s,
        "openssl pkcs8 -topk8 -in certs/web1.internal/key.pem -passout pass:secret -v2 aes-128-cbc -iter 4096 -out pbkdf2.pem",
    );
    let out = stdout(&ok(&s.uca(&["inspect", "pbkdf2.pem"])));
    assert!(
        out.contains("Key derivation:      PBKDF2 (4096 iterations, HMAC-SHA256)\n"),
        "{out}"
    );
    assert!(out.contains("Cipher:              AES-128-CBC\n"), "{out}");
}

#[test]
fn inspect_detects_der_certificates_csrs_and_keys() {
    let s = setup();
    openssl(
        &s,
        "openssl x509 -in ca/ca.pem -outform der -out ca.der \
         && openssl req -new -key certs/web1.internal/key.pem -subj /CN=x -outform der -out x.csr.der \
         && openssl pkey -in certs/web1.internal/key.pem -pubout -outform der -out pub.der",
    );
    let cert = stdout(&ok(&s.uca(&["inspect", "ca.der"])));
    assert!(
        cert.starts_with("[1/1] Certificate\n  Subject:             CN=Test Root\n"),
        "{cert}"
    );
    assert!(
        cert.contains(&openssl_fingerprint(&s, "ca/ca.pem")),
        "{cert}"
    );
    let csr = stdout(&ok(&s.uca(&["inspect", "x.csr.der"])));
    assert!(
        csr.starts_with("[1/1] Certificate signing request\n"),
        "{csr}"
    );
    let public = stdout(&ok(&s.uca(&["inspect", "pub.der"])));
    assert!(public.starts_with("[1/1] Public key\n"), "{public}");
    assert!(
        public.contains(&openssl_pin(&s, "certs/web1.internal/cert.pem")),
        "{public}"
    );
}

#[test]
fn inspect_rejects_unreadable_input_with_one_line() {
    let s = setup();
    let der = openssl(
        &s,
        "openssl x509 -in ca/ca.pem -outform der -out ca.der && echo ok",
    );
    assert_eq!(der, "ok");
    let full = std::fs::read(s.join("ca.der")).unwrap();
    write(&s, "truncated.der", &full[..full.len() / 2]);
    write(&s, "empty.pem", "");
    write(&s, "garbage.pem", "this is not a certificate\n");
    write(
        &s,
        "crl.pem",
        "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n",
    );
    let pem_text = std::fs::read_to_string(s.join("ca/ca.pem")).unwrap();
    let lines: Vec<&str> = pem_text.lines().collect();
    write(
        &s,
        "cut.pem",
        format!("{}\n{}\n{}\n", lines[0], lines[1], lines[lines.len() - 1]),
    );

    let err = fails_with(&s.uca(&["inspect", "truncated.der"]), "truncated.der");
    assert!(err.contains("truncated"), "{err}");
    let err = fails_with(&s.uca(&["inspect", "cut.pem"]), "cut.pem");
    assert!(
        err.contains("not an X.509 certificate") && err.contains("truncated"),
        "{err}"
    );
    fails_with(
        &s.uca(&["inspect", "empty.pem"]),
        "expected PEM (-----BEGIN ...-----) or DER",
    );
    fails_with(
        &s.uca(&["inspect", "garbage.pem"]),
        "expected PEM (-----BEGIN ...-----) or DER",
    );
    let err = fails_with(
        &s.uca(&["inspect", "crl.pem"]),
        "unsupported PEM block 'X509 CRL'",
    );
    assert!(err.contains("expected CERTIFICATE, CERTIFICATE REQUEST, PUBLIC KEY, PRIVATE KEY or ENCRYPTED PRIVATE KEY"), "{err}");
    fails_with(&s.uca(&["inspect", "missing.pem"]), "missing.pem");
    // --json fails the same way, without a half-written document.
    let o = s.uca(&["inspect", "--json", "garbage.pem"]);
    fails_with(&o, "garbage.pem");
    assert!(o.stdout.is_empty());
}

// ------------------------------------------------------------------ check

#[test]
fn check_fresh_certificates_are_ok_and_deduplicated() {
    let s = setup();
    let o = s.uca(&["check", "certs", "ca"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
    let lines: Vec<&str> = out.lines().collect();
    // Two leaves, and the CA once although it is in five files.
    assert_eq!(lines.len(), 4, "{out}");
    assert!(
        lines.iter().take(3).all(|l| l.starts_with("OK       ")),
        "{out}"
    );
    let web1 = lines
        .iter()
        .find(|l| l.contains("CN=web1.internal"))
        .expect("web1 line");
    assert!(web1.ends_with("  certs/web1.internal/cert.pem"), "{web1}");
    assert!(web1.contains("d left  "), "{web1}");
    let ca_lines: Vec<&&str> = lines
        .iter()
        .filter(|l| l.contains("CN=Test Root"))
        .collect();
    assert_eq!(ca_lines.len(), 1, "{out}");
    // The first place it was found, in sorted order.
    assert!(ca_lines[0].ends_with("  certs/db.internal/ca.pem"), "{out}");
    // Columns line up: the path starts at the same offset on every line.
    let offsets: Vec<usize> = lines[..3]
        .iter()
        .map(|l| l.find("  certs/").unwrap())
        .collect();
    assert!(offsets.windows(2).all(|w| w[0] == w[1]), "{out}");
    assert_eq!(
        lines[3],
        "3 certificates: 3 OK, 0 WARN, 0 EXPIRED (warning within 30d)"
    );
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
}

#[test]
fn check_within_400d_warns_about_397_day_certificates() {
    let s = setup();
    let o = s.uca(&["check", "--within", "400d", "certs"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{}", stderr(&o));
    let leaves: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("CN=web1.") || l.contains("CN=db."))
        .collect();
    assert_eq!(leaves.len(), 2, "{out}");
    for l in leaves {
        assert!(l.starts_with("WARN     "), "{out}");
    }
    // The CA lives ten years: still OK.
    assert!(
        out.lines()
            .any(|l| l.starts_with("OK ") && l.contains("CN=Test Root")),
        "{out}"
    );
    assert!(
        out.ends_with("3 certificates: 1 OK, 2 WARN, 0 EXPIRED (warning within 400d)\n"),
        "{out}"
    );
    // Every accepted period form, and 0d which only warns about not-yet-valid.
    for (period, code) in [("2w", 0), ("12h", 0), ("90m", 0), ("0d", 0), ("57w", 1)] {
        let o = s.uca(&["check", "--within", period, "certs"]);
        assert_eq!(
            o.status.code(),
            Some(code),
            "--within {period}: {}",
            stdout(&o)
        );
    }
}

#[test]
fn check_expired_certificate_exits_2() {
    let s = setup();
    let now = OffsetDateTime::now_utc();
    write(
        &s,
        "old/old.crt",
        self_signed_pem(
            "old.internal",
            now - Duration::days(30),
            now - Duration::days(3) - Duration::hours(1),
        ),
    );
    let o = s.uca(&["check", "certs", "old"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(2), "{out}{}", stderr(&o));
    let first = out.lines().next().unwrap();
    assert!(first.starts_with("EXPIRED  "), "most urgent first:\n{out}");
    assert!(
        first.contains("3d ago")
            && first.contains("CN=old.internal")
            && first.ends_with("old/old.crt"),
        "{first}"
    );
    assert!(
        out.contains("4 certificates: 3 OK, 0 WARN, 1 EXPIRED"),
        "{out}"
    );

    let o = s.uca(&["check", "--json", "old/old.crt"]);
    assert_eq!(o.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let c = &v["certificates"][0];
    assert_eq!(c["status"], "EXPIRED");
    assert_eq!(
        c["days_left"], -4,
        "3 days and an hour ago rounds down to -4"
    );
    assert_eq!(v["summary"]["expired"], 1);
    assert_eq!(v["summary"]["exit_code"], 2);
}

#[test]
fn check_not_yet_valid_certificate_warns() {
    let s = Scratch::new();
    let now = OffsetDateTime::now_utc();
    write(
        &s,
        "future.pem",
        self_signed_pem(
            "future.internal",
            now + Duration::days(2) + Duration::hours(1),
            now + Duration::days(400),
        ),
    );
    let o = s.uca(&["check", "future.pem"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.starts_with("WARN     ") && out.contains("starts in 2d"),
        "{out}"
    );
    let v: Value =
        serde_json::from_slice(&s.uca(&["check", "--json", "future.pem"]).stdout).unwrap();
    assert_eq!(v["certificates"][0]["reason"], "not_yet_valid");
}

#[test]
fn check_json_reports_every_certificate_field() {
    let s = setup();
    let issued = stdout(&s.issue(&["app.internal"]));
    let serial = issued
        .split("serial ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let o = s.uca(&[
        "check",
        "--json",
        "--within",
        "400d",
        "certs/app.internal/cert.pem",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let certs = v["certificates"].as_array().unwrap();
    assert_eq!(certs.len(), 1);
    let c = &certs[0];
    assert_eq!(c["status"], "WARN");
    assert_eq!(c["reason"], "expires_soon");
    assert_eq!(c["subject"], "CN=app.internal");
    assert_eq!(c["serial"], serial.as_str());
    assert_eq!(c["path"], "certs/app.internal/cert.pem");
    let days = c["days_left"].as_i64().unwrap();
    assert!((396..=397).contains(&days), "{days}");
    let fp = openssl_fingerprint(&s, "certs/app.internal/cert.pem")
        .replace(':', "")
        .to_lowercase();
    assert_eq!(c["sha256"], fp.as_str());
    assert!(c["not_after"].as_str().unwrap().ends_with('Z'));
    assert_eq!(v["errors"], serde_json::json!([]));
    let sum = &v["summary"];
    assert_eq!(
        (
            sum["total"].clone(),
            sum["ok"].clone(),
            sum["warn"].clone(),
            sum["expired"].clone()
        ),
        (1.into(), 0.into(), 1.into(), 0.into())
    );
    assert_eq!(sum["within"], "400d");
    assert_eq!(sum["exit_code"], 1);
}

#[test]
fn check_rejects_a_bad_period_with_exit_3() {
    let s = setup();
    for bad in ["5x", "30", "d", "-1d", "1.5d", "30 d"] {
        // `--within=` so that clap does not take -1d for a flag.
        let o = s.uca(&["check", &format!("--within={bad}"), "certs"]);
        let err = unchecked(&o);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains(&format!("invalid --within value '{bad}'")),
            "{err}"
        );
        assert!(err.contains("e.g. 30d, 12h, 2w, 90m"), "{err}");
        assert!(
            o.stdout.is_empty(),
            "nothing is checked with a bad period: {}",
            stdout(&o)
        );
    }
}

#[test]
fn check_reports_good_certificates_despite_missing_and_garbage_paths() {
    let s = setup();
    write(&s, "garbage.pem", "not a certificate\n");
    let o = s.uca(&[
        "check",
        "certs/web1.internal/cert.pem",
        "nope",
        "garbage.pem",
    ]);
    let err = unchecked(&o);
    assert_eq!(err.lines().count(), 2, "{err}");
    assert!(err.contains("uca: error: nope does not exist\n"), "{err}");
    assert!(
        err.contains("uca: error: invalid file 'garbage.pem': expected PEM"),
        "{err}"
    );
    let out = stdout(&o);
    assert!(
        out.starts_with("OK       ") && out.contains("CN=web1.internal"),
        "{out}"
    );
    assert!(out.ends_with("; 2 problems reported above\n"), "{out}");
    let v: Value =
        serde_json::from_slice(&s.uca(&["check", "--json", "certs", "nope"]).stdout).unwrap();
    assert_eq!(v["summary"]["exit_code"], 3);
    assert_eq!(v["summary"]["total"], 3);
    assert_eq!(v["errors"], serde_json::json!(["nope does not exist"]));

    // A damaged certificate block inside a walked directory is a problem too.
    let pem_text = std::fs::read_to_string(s.join("ca/ca.pem")).unwrap();
    let lines: Vec<&str> = pem_text.lines().collect();
    write(
        &s,
        "damaged/x.crt",
        format!("{}\n{}\n{}\n", lines[0], lines[1], lines[lines.len() - 1]),
    );
    let err = unchecked(&s.uca(&["check", "damaged"]));
    assert!(
        err.contains("damaged/x.crt") && err.contains("block 1"),
        "{err}"
    );
}

#[test]
fn check_without_any_certificate_exits_3() {
    let s = setup();
    std::fs::create_dir(s.join("empty")).unwrap();
    let o = s.uca(&["check", "empty"]);
    let err = unchecked(&o);
    assert_eq!(err, "uca: error: no certificate found in empty\n");
    assert!(o.stdout.is_empty());
    let err = unchecked(&s.uca(&["check", "certs/web1.internal/key.pem"]));
    assert_eq!(
        err,
        "uca: error: no certificate in certs/web1.internal/key.pem\n"
    );
}

#[test]
fn check_walks_only_certificate_files_and_no_directory_symlinks() {
    let s = setup();
    let cert = std::fs::read(s.join("certs/web1.internal/cert.pem")).unwrap();
    write(&s, "tree/a/leaf.der.txt", &cert); // not a certificate file name: skipped
    write(&s, "tree/b/leaf.CRT", &cert);
    std::os::unix::fs::symlink("../../certs", s.join("tree/b/certs-link")).unwrap();
    std::os::unix::fs::symlink("..", s.join("tree/a/loop")).unwrap();
    let o = s.uca(&["check", "tree"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
    assert_eq!(
        out.lines().count(),
        2,
        "only tree/b/leaf.CRT and the summary:\n{out}"
    );
    assert!(
        out.lines().next().unwrap().ends_with("  tree/b/leaf.CRT"),
        "{out}"
    );
    // Named explicitly, a directory symlink is followed.
    let o = s.uca(&["check", "tree/b/certs-link"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("3 certificates"), "{}", stdout(&o));
}

#[test]
fn check_walk_ignores_keys_and_csrs_in_pem_files() {
    let s = setup();
    // certs/ holds key.pem files: they are not errors, they just hold no certificate.
    let o = s.uca(&["check", "certs/web1.internal"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).is_empty());
}
