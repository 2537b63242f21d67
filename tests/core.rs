//! End-to-end behaviour of init, issue, sign and seal through the real
//! binary: layouts, modes, SAN rules, refusals (with nothing written) and the
//! sealed state.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::*;

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn cert_text(s: &Scratch, path: &str) -> String {
    let (ok, out) = run(
        "openssl",
        &["x509", "-in", path, "-noout", "-text"],
        s.path(),
    );
    assert!(ok, "{out}");
    out
}

#[test]
fn init_writes_the_documented_layout_with_private_modes() {
    let s = Scratch::new();
    let out = ok(&s.uca(&[
        "init",
        "--dir",
        "ca",
        "--name",
        "Acme Internal Root",
        "--generate-passphrase",
    ]));
    let text = stdout(&out);
    assert!(text.contains("ca/ca.pem"), "{text}");
    assert!(text.contains("ca/private/passphrase"), "{text}");
    let ca = s.join("ca");
    for f in [
        "ca.pem",
        "ca.toml",
        "private/ca-key.pem",
        "private/passphrase",
    ] {
        assert!(ca.join(f).is_file(), "{f} missing");
    }
    assert_eq!(mode(&ca.join("private")), 0o700);
    assert_eq!(mode(&ca.join("private/ca-key.pem")), 0o600);
    assert_eq!(mode(&ca.join("private/passphrase")), 0o400);
    let key = std::fs::read_to_string(ca.join("private/ca-key.pem")).unwrap();
    assert!(key.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    let (ok, out) = run(
        "openssl",
        &[
            "pkey",
            "-in",
            "ca/private/ca-key.pem",
            "-passin",
            "file:ca/private/passphrase",
            "-noout",
        ],
        s.path(),
    );
    assert!(
        ok,
        "openssl cannot open the CA key with the generated passphrase: {out}"
    );
    let text = cert_text(&s, "ca/ca.pem");
    assert!(text.contains("CA:TRUE, pathlen:1"), "{text}");
    assert!(text.contains("Certificate Sign, CRL Sign"), "{text}");
    let generated = std::fs::read_to_string(ca.join("private/passphrase")).unwrap();
    assert_eq!(generated.trim_end().len(), 43);
}

#[test]
fn init_refuses_bad_input_and_writes_nothing() {
    let s = Scratch::new();
    std::fs::write(s.join("empty.txt"), "").unwrap();
    std::fs::write(s.join("short.txt"), "tiny\n").unwrap();
    std::fs::write(s.join("twolines.txt"), "first line is long\nsecond\n").unwrap();
    std::fs::write(s.join("latin1.txt"), b"caf\xe9 caf\xe9 caf\xe9 caf\xe9\n").unwrap();
    let before = s.files();
    let pass = s.pass_file();
    let pass = pass.to_str().unwrap();
    let base = ["init", "--dir", "ca", "--name", "Root"];
    // (extra arguments, extra environment, expected message)
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (vec!["--passphrase-file", "empty.txt"], vec![], "empty"),
        (
            vec!["--passphrase-file", "short.txt"],
            vec![],
            "at least 12",
        ),
        (
            vec!["--passphrase-file", "twolines.txt"],
            vec![],
            "several lines",
        ),
        (vec!["--passphrase-file", "latin1.txt"], vec![], "not UTF-8"),
        (
            vec!["--passphrase-file", "missing.txt"],
            vec![],
            "missing.txt",
        ),
        (vec![], vec![], "no passphrase source"),
        (
            vec!["--passphrase-file", pass],
            vec![("UCA_PASSPHRASE", "another long passphrase")],
            "exactly one",
        ),
        (
            vec!["--generate-passphrase"],
            vec![("UCA_PASSPHRASE", "another long passphrase")],
            "exactly one",
        ),
        (
            vec!["--passphrase-file", pass, "--permit", "10.0.0.1/8"],
            vec![],
            "did you mean 10.0.0.0/8",
        ),
        (
            vec!["--passphrase-file", pass, "--permit", "bad_name"],
            vec![],
            "bad_name",
        ),
        (
            vec!["--passphrase-file", pass, "--days", "0"],
            vec![],
            "at least 1 day",
        ),
        (
            vec!["--passphrase-file", pass, "--san-rule", "{nope}.x"],
            vec![],
            "unknown placeholder {nope}",
        ),
    ];
    for (extra, env, needle) in cases {
        let mut args = base.to_vec();
        args.extend(extra.iter());
        fails_with(&s.uca_env(&args, &env), needle);
        assert_eq!(s.files(), before, "{args:?} left files behind");
    }
    // A CA name pasted with curly quotes.
    let o = s.uca(&[
        "init",
        "--dir",
        "ca",
        "--name",
        "Acme \u{201C}Root\u{201D}",
        "--passphrase-file",
        pass,
    ]);
    fails_with(&o, "character 6 is U+201C LEFT DOUBLE QUOTATION MARK");
    // Clap-level conflicts are usage errors (exit 2).
    let o = s.uca(&[
        "init",
        "--dir",
        "ca",
        "--name",
        "Root",
        "--generate-passphrase",
        "--passphrase-file",
        pass,
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(s.files(), before);
}

#[test]
fn init_never_replaces_a_ca_or_fills_a_non_empty_directory() {
    let s = Scratch::new();
    s.init_ca(&[]);
    let pass = s.pass_file();
    let o = s.uca(&[
        "init",
        "--dir",
        "ca",
        "--name",
        "Other",
        "--passphrase-file",
        pass.to_str().unwrap(),
    ]);
    fails_with(&o, "already holds a CA");
    std::fs::create_dir(s.join("busy")).unwrap();
    std::fs::write(s.join("busy/notes.txt"), "x").unwrap();
    let o = s.uca(&[
        "init",
        "--dir",
        "busy",
        "--name",
        "Other",
        "--passphrase-file",
        pass.to_str().unwrap(),
    ]);
    fails_with(&o, "not empty");
    assert!(!s.join("busy/ca.pem").exists());
}

#[test]
fn issue_writes_files_sans_and_ledger() {
    let s = Scratch::new();
    s.init_ca(&[]);
    let out = s.issue(&[
        "rmq1",
        "web12",
        "--san-rule",
        "base",
        "--san-rule",
        "{base}.svc.internal",
        "--san",
        "IP:10.0.0.5",
    ]);
    let text = stdout(&out);
    assert!(text.contains("issued rmq1:"), "{text}");
    for name in ["rmq1", "web12"] {
        for f in ["cert.pem", "key.pem", "chain.pem", "ca.pem"] {
            assert!(s.join(&format!("certs/{name}/{f}")).is_file(), "{name}/{f}");
        }
        assert_eq!(mode(&s.join(&format!("certs/{name}/key.pem"))), 0o600);
    }
    let t = cert_text(&s, "certs/rmq1/cert.pem");
    assert!(
        t.contains("DNS:rmq1, DNS:rmq, DNS:rmq.svc.internal, IP Address:10.0.0.5"),
        "{t}"
    );
    assert!(t.contains("Subject: CN = rmq1"), "{t}");
    let chain = std::fs::read_to_string(s.join("certs/rmq1/chain.pem")).unwrap();
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2);
    let ca = std::fs::read_to_string(s.join("ca/ca.pem")).unwrap();
    assert!(chain.ends_with(&ca));
    let key = std::fs::read_to_string(s.join("certs/rmq1/key.pem")).unwrap();
    assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"));

    let ledger = std::fs::read_to_string(s.join("ca/ledger.jsonl")).unwrap();
    let entries: Vec<serde_json::Value> = ledger
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["subject"], "CN=rmq1");
    assert_eq!(entries[0]["profile"], "both");
    assert_eq!(entries[0]["sans"][1], "DNS:rmq");
    let serial = entries[0]["serial"].as_str().unwrap();
    assert!(serial.len() <= 40 && serial.len() >= 30, "{serial}");
    assert!(u8::from_str_radix(&serial[..2], 16).unwrap() < 0x80 || serial.len() < 40);
    assert_ne!(entries[0]["serial"], entries[1]["serial"]);
    assert!(entries[0]["path"]
        .as_str()
        .unwrap()
        .ends_with("certs/rmq1/cert.pem"));
    assert_eq!(entries[0]["sha256"].as_str().unwrap().len(), 64);
}

#[test]
fn issue_uses_the_ca_default_rules_and_none_disables_them() {
    let s = Scratch::new();
    s.init_ca(&["--san-rule", "base", "--san-rule", "{name}.prod.internal"]);
    s.issue(&["db2"]);
    let t = cert_text(&s, "certs/db2/cert.pem");
    assert!(t.contains("DNS:db2, DNS:db, DNS:db2.prod.internal"), "{t}");
    s.issue(&["cache3", "--san-rule", "none"]);
    let t = cert_text(&s, "certs/cache3/cert.pem");
    assert!(t.contains("DNS:cache3\n"), "{t}");
}

#[test]
fn issue_profiles_set_the_right_extended_key_usage() {
    let s = Scratch::new();
    s.init_ca(&[]);
    s.issue(&["srv", "--profile", "server"]);
    s.issue(&["cli", "--profile", "client"]);
    let t = cert_text(&s, "certs/srv/cert.pem");
    assert!(
        t.contains("TLS Web Server Authentication") && !t.contains("TLS Web Client Authentication"),
        "{t}"
    );
    let t = cert_text(&s, "certs/cli/cert.pem");
    assert!(
        t.contains("TLS Web Client Authentication") && !t.contains("TLS Web Server Authentication"),
        "{t}"
    );
}

#[test]
fn issue_refuses_bad_input_and_writes_nothing() {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal", "--permit", "10.0.0.0/8"]);
    let before = s.files();
    let pass = s.pass_file();
    let pass = pass.to_str().unwrap();
    let long_label = format!("{}.internal", "a".repeat(64));
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["web\u{2013}1.internal"],
            "character 4 is U+2013 EN DASH",
        ),
        (vec!["web\u{00A0}1.internal"], "U+00A0 NO-BREAK SPACE"),
        (vec!["web\u{200B}1.internal"], "U+200B ZERO WIDTH SPACE"),
        (
            vec!["\u{2018}web.internal\u{2019}"],
            "character 1 is U+2018",
        ),
        (vec!["web_1.internal"], "'_'"),
        (vec!["*.svc.internal"], "wildcard is not allowed here"),
        (vec!["a..internal"], "empty label"),
        (vec![&long_label], "limit is 63"),
        (vec!["--", "-web.internal"], "starts or ends with '-'"),
        (vec!["web.example.com"], "outside the CA's name constraints"),
        (
            vec!["web.internal", "--san", "IP:192.168.1.1"],
            "outside the CA's name constraints",
        ),
        (
            vec!["web.internal", "--san", "web2.internal"],
            "expected KIND:VALUE",
        ),
        (vec!["web.internal", "--san", "FOO:x"], "unknown kind 'FOO'"),
        (
            vec!["web.internal", "--san", "IP:10.0.0.256"],
            "expected an IPv4 address",
        ),
        (
            vec!["web.internal", "--san", "EMAIL:nobody"],
            "expected local@domain",
        ),
        (
            vec!["web.internal", "--san", "URI:spiffe://Acme.internal/x"],
            "trust domain",
        ),
        (
            vec!["web.internal", "--san", "DNS:a.*.internal"],
            "leftmost label",
        ),
        (
            vec!["web.internal", "--san-rule", "{base}..internal"],
            "empty label",
        ),
        (vec!["web.internal", "web.internal"], "given twice"),
        (vec!["web.internal", "--days", "5000"], "outlive the CA"),
        (vec!["web.internal", "--days", "0"], "at least 1 day"),
        // Ordering: a bad second name stops the first from being issued too.
        (vec!["ok.internal", "bad\u{2014}name.internal"], "EM DASH"),
    ];
    for (extra, needle) in cases {
        let mut args = vec![
            "issue",
            "--dir",
            "ca",
            "--out",
            "certs",
            "--passphrase-file",
            pass,
        ];
        args.extend(extra.iter());
        fails_with(&s.uca(&args), needle);
        assert_eq!(s.files(), before, "{extra:?} left files behind");
    }
    // Output inside the CA's private folder.
    let o = s.uca(&[
        "issue",
        "--dir",
        "ca",
        "--out",
        "ca/private/leak",
        "--passphrase-file",
        pass,
        "x.internal",
    ]);
    fails_with(&o, "private folder");
    // Missing CA directory.
    let o = s.uca(&["issue", "--dir", "nope", "--out", "certs", "x.internal"]);
    fails_with(&o, "no CA there");
    assert_eq!(s.files(), before);
}

#[test]
fn wrong_or_missing_passphrase_is_refused_before_writing() {
    let s = Scratch::new();
    s.init_ca(&[]);
    let before = s.files();
    let o = s.uca_env(
        &["issue", "--dir", "ca", "--out", "certs", "web"],
        &[("UCA_PASSPHRASE", "not the passphrase at all")],
    );
    fails_with(&o, "wrong passphrase");
    let o = s.uca(&["issue", "--dir", "ca", "--out", "certs", "web"]);
    fails_with(&o, "no passphrase source");
    assert_eq!(s.files(), before);
    // The environment variable works as a source.
    ok(&s.uca_env(
        &["issue", "--dir", "ca", "--out", "certs", "web"],
        &[("UCA_PASSPHRASE", PASSPHRASE)],
    ));
}

#[test]
fn existing_output_needs_force_and_force_replaces_it() {
    let s = Scratch::new();
    s.init_ca(&[]);
    s.issue(&["web1"]);
    let first = std::fs::read(s.join("certs/web1/cert.pem")).unwrap();
    let pass = s.pass_file();
    let o = s.uca(&[
        "issue",
        "--dir",
        "ca",
        "--out",
        "certs",
        "--passphrase-file",
        pass.to_str().unwrap(),
        "web1",
    ]);
    fails_with(&o, "already exists; pass --force");
    assert_eq!(std::fs::read(s.join("certs/web1/cert.pem")).unwrap(), first);
    s.issue(&["web1", "--force"]);
    assert_ne!(std::fs::read(s.join("certs/web1/cert.pem")).unwrap(), first);
    // No temporary or moved-aside directories are left behind.
    let leftovers: Vec<String> = s
        .files()
        .into_iter()
        .filter(|f| f.contains(".tmp-") || f.contains(".old-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let ledger = std::fs::read_to_string(s.join("ca/ledger.jsonl")).unwrap();
    assert_eq!(ledger.lines().count(), 2);
}

#[test]
fn sign_takes_only_subject_key_and_sans_from_a_csr() {
    let s = Scratch::new();
    s.init_ca(&[]);
    let pass = s.pass_file();
    let pass = pass.to_str().unwrap();
    // Extensions uca does not use (SKI, key usage, EKU) are accepted and not copied.
    let csr = openssl_csr(
        &s,
        "ext",
        "/CN=ext1.internal/O=Acme",
        &[
            "subjectAltName=DNS:ext1.internal,IP:10.1.1.1",
            "subjectKeyIdentifier=hash",
            "keyUsage=critical,keyCertSign",
            "extendedKeyUsage=codeSigning",
        ],
    );
    let o = ok(&s.uca(&[
        "sign",
        "--dir",
        "ca",
        &csr,
        "--profile",
        "server",
        "--out",
        "ext.pem",
        "--passphrase-file",
        pass,
    ]));
    assert!(stdout(&o).contains("ext.pem"));
    let t = cert_text(&s, "ext.pem");
    assert!(t.contains("DNS:ext1.internal, IP Address:10.1.1.1"), "{t}");
    assert!(t.contains("CA:FALSE"), "{t}");
    assert!(
        t.contains("Digital Signature") && !t.contains("Certificate Sign"),
        "{t}"
    );
    assert!(
        t.contains("TLS Web Server Authentication") && !t.contains("Code Signing"),
        "{t}"
    );
    let (okv, out) = run(
        "openssl",
        &[
            "verify",
            "-CAfile",
            "ca/ca.pem",
            "-purpose",
            "sslserver",
            "ext.pem",
        ],
        s.path(),
    );
    assert!(okv, "{out}");
    // The same key: the certificate's public key is the CSR's.
    let (_, a) = run(
        "openssl",
        &["x509", "-in", "ext.pem", "-noout", "-pubkey"],
        s.path(),
    );
    let (_, b) = run(
        "openssl",
        &["req", "-in", &csr, "-noout", "-pubkey"],
        s.path(),
    );
    assert_eq!(a, b);
    // Without --out the certificate goes to standard output.
    let o = ok(&s.uca(&[
        "sign",
        "--dir",
        "ca",
        &csr,
        "--passphrase-file",
        pass,
        "--chain",
    ]));
    assert_eq!(stdout(&o).matches("BEGIN CERTIFICATE").count(), 2);
    // Existing --out needs --force.
    fails_with(
        &s.uca(&[
            "sign",
            "--dir",
            "ca",
            &csr,
            "--out",
            "ext.pem",
            "--passphrase-file",
            pass,
        ]),
        "--force",
    );
    let ledger = std::fs::read_to_string(s.join("ca/ledger.jsonl")).unwrap();
    assert_eq!(ledger.lines().count(), 2);
}

#[test]
fn sign_intermediate_only_when_asked_and_within_path_length() {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal"]);
    let pass = s.pass_file();
    let pass = pass.to_str().unwrap();
    let csr = openssl_csr(
        &s,
        "int",
        "/CN=Vault Intermediate",
        &["basicConstraints=critical,CA:TRUE"],
    );
    let before = s.files();
    fails_with(
        &s.uca(&[
            "sign",
            "--dir",
            "ca",
            &csr,
            "--out",
            "int.pem",
            "--passphrase-file",
            pass,
        ]),
        "asks for CA:TRUE",
    );
    fails_with(
        &s.uca(&[
            "sign",
            "--dir",
            "ca",
            &csr,
            "--intermediate",
            "--pathlen",
            "1",
            "--out",
            "int.pem",
            "--passphrase-file",
            pass,
        ]),
        "below the root's path length 1",
    );
    fails_with(
        &s.uca(&[
            "sign",
            "--dir",
            "ca",
            &csr,
            "--intermediate",
            "--permit",
            "example.com",
            "--out",
            "int.pem",
            "--passphrase-file",
            pass,
        ]),
        "outside the root's name constraints",
    );
    assert_eq!(s.files(), before);
    ok(&s.uca(&[
        "sign",
        "--dir",
        "ca",
        &csr,
        "--intermediate",
        "--permit",
        "vault.internal",
        "--out",
        "int.pem",
        "--passphrase-file",
        pass,
    ]));
    let t = cert_text(&s, "int.pem");
    assert!(t.contains("CA:TRUE, pathlen:0"), "{t}");
    assert!(t.contains("Certificate Sign, CRL Sign"), "{t}");
    assert!(t.contains("DNS:vault.internal"), "{t}");
    assert!(t.contains("X509v3 Authority Key Identifier"), "{t}");
    let (okv, out) = run(
        "openssl",
        &["verify", "-CAfile", "ca/ca.pem", "int.pem"],
        s.path(),
    );
    assert!(okv, "{out}");

    // A root with path length 0 can sign no intermediate.
    let s0 = Scratch::new();
    s0.init_ca(&["--pathlen", "0"]);
    let csr = openssl_csr(&s0, "int", "/CN=Vault Intermediate", &[]);
    let pass = s0.pass_file();
    fails_with(
        &s0.uca(&[
            "sign",
            "--dir",
            "ca",
            &csr,
            "--intermediate",
            "--out",
            "int.pem",
            "--passphrase-file",
            pass.to_str().unwrap(),
        ]),
        "path length 0",
    );
}

#[test]
fn sign_refuses_bad_csrs() {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal"]);
    let pass = s.pass_file();
    let pass = pass.to_str().unwrap();
    let good = openssl_csr(&s, "good", "/CN=ok.internal", &[]);
    let outside = openssl_csr(&s, "outside", "/CN=web.example.com", &[]);
    let nohost = openssl_csr(&s, "nohost", "/O=Acme", &[]);
    // Flip one byte inside the signed content: the signature no longer verifies.
    let pem_text = std::fs::read_to_string(s.join(&good)).unwrap();
    let block = pem::parse(&pem_text).unwrap();
    let mut der = block.contents().to_vec();
    let i = der.windows(11).position(|w| w == b"ok.internal").unwrap();
    der[i] = b'x';
    std::fs::write(
        s.join("tampered.csr"),
        pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", der.clone())),
    )
    .unwrap();
    std::fs::write(
        s.join("truncated.csr"),
        pem::encode(&pem::Pem::new(
            "CERTIFICATE REQUEST",
            der[..der.len() / 2].to_vec(),
        )),
    )
    .unwrap();
    std::fs::write(s.join("garbage.csr"), "hello\n").unwrap();
    std::fs::write(s.join("huge.csr"), "A".repeat(100_000)).unwrap();
    let cert_as_csr = s.join("ca/ca.pem");
    let before = s.files();
    for (file, needle) in [
        ("tampered.csr", "signature does not verify"),
        ("truncated.csr", "not a PKCS#10 request"),
        ("garbage.csr", "expected PEM"),
        ("huge.csr", "at most 65536"),
        (
            cert_as_csr.to_str().unwrap(),
            "expected CERTIFICATE REQUEST",
        ),
        (&outside, "outside the CA's name constraints"),
        (&nohost, "names no host"),
        ("missing.csr", "missing.csr"),
    ] {
        fails_with(
            &s.uca(&[
                "sign",
                "--dir",
                "ca",
                file,
                "--out",
                "x.pem",
                "--passphrase-file",
                pass,
            ]),
            needle,
        );
        assert_eq!(s.files(), before, "{file} left files behind");
    }
}

#[test]
fn seal_writes_a_verifiable_manifest_and_ends_issuance() {
    let s = Scratch::new();
    let passphrase = s.init_ca_generating_passphrase();
    ok(&s.uca(&["issue", "--dir", "ca", "--out", "certs", "web1", "rmq1"]));
    let o = ok(&s.uca(&["seal", "--dir", "ca"]));
    assert!(
        stdout(&o).contains("manifest.json (2 certificates)"),
        "{}",
        stdout(&o)
    );
    assert!(!s.join("ca/private/passphrase").exists());
    assert!(s.join("ca/private/ca-key.pem").exists());
    // The passphrase is nowhere under the scratch directory any more.
    for f in s.files() {
        let p = s.join(&f);
        if p.is_file() {
            let bytes = std::fs::read(&p).unwrap();
            assert!(
                !bytes
                    .windows(passphrase.len())
                    .any(|w| w == passphrase.as_bytes()),
                "passphrase found in {f}"
            );
        }
    }
    assert_manifest_verifies_with_openssl(&s, "ca");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.join("ca/manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["certificates"].as_array().unwrap().len(), 2);

    let before = s.files();
    let o = s.uca_env(
        &["issue", "--dir", "ca", "--out", "certs", "late"],
        &[("UCA_PASSPHRASE", &passphrase)],
    );
    let err = fails_with(&o, "was sealed at");
    assert!(
        err.contains(manifest["sealed_at"].as_str().unwrap()),
        "{err}"
    );
    fails_with(&s.uca(&["seal", "--dir", "ca"]), "was sealed at");
    let csr = openssl_csr(&s, "late", "/CN=late", &[]);
    fails_with(
        &s.uca_env(
            &["sign", "--dir", "ca", &csr],
            &[("UCA_PASSPHRASE", &passphrase)],
        ),
        "was sealed at",
    );
    let mut expected = before.clone();
    expected.extend(["late.csr".to_string(), "late.key".to_string()]);
    expected.sort();
    assert_eq!(s.files(), expected);
}

#[test]
fn seal_destroy_key_removes_the_encrypted_key() {
    let s = Scratch::new();
    s.init_ca(&["--key", "ed25519"]);
    s.issue(&["web1"]);
    let pass = s.pass_file();
    let o = ok(&s.uca(&[
        "seal",
        "--dir",
        "ca",
        "--destroy-key",
        "--passphrase-file",
        pass.to_str().unwrap(),
    ]));
    assert!(
        stderr(&o).contains("still in"),
        "a user-supplied passphrase file must be called out: {}",
        stderr(&o)
    );
    assert!(!s.join("ca/private/ca-key.pem").exists());
    let (okp, out) = run(
        "openssl",
        &[
            "x509",
            "-in",
            "ca/ca.pem",
            "-pubkey",
            "-noout",
            "-out",
            "ca.pub",
        ],
        s.path(),
    );
    assert!(okp, "{out}");
    let (okv, out) = run(
        "openssl",
        &[
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            "ca.pub",
            "-rawin",
            "-in",
            "ca/manifest.sha256",
            "-sigfile",
            "ca/manifest.sig",
        ],
        s.path(),
    );
    assert!(
        okv && out.contains("Signature Verified Successfully"),
        "{out}"
    );
    let (okd, out) = run(
        "openssl",
        &["dgst", "-sha256", "-r", "manifest.json"],
        &s.join("ca"),
    );
    let signed = std::fs::read_to_string(s.join("ca/manifest.sha256")).unwrap();
    assert!(okd && out == signed, "{out} differs from {signed}");
    let sealed: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.join("ca/sealed.json")).unwrap()).unwrap();
    assert_eq!(sealed["key_destroyed"], true);
}

#[test]
fn concurrent_issuers_never_share_a_serial_or_lose_an_entry() {
    let s = Scratch::new();
    s.init_ca(&[]);
    let pass = s.pass_file();
    // Eight processes of 250 certificates each, all at once.
    let children: Vec<_> = (0..8)
        .map(|p| {
            let names: Vec<String> = (0..250).map(|i| format!("p{p}n{i}")).collect();
            let mut cmd = std::process::Command::new(uca_bin());
            cmd.args([
                "issue",
                "--dir",
                "ca",
                "--out",
                &format!("out{p}"),
                "--passphrase-file",
                pass.to_str().unwrap(),
            ])
            .args(&names)
            .current_dir(s.path())
            .env_remove("UCA_PASSPHRASE")
            .stdout(std::process::Stdio::null());
            cmd.spawn().unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let ledger = std::fs::read_to_string(s.join("ca/ledger.jsonl")).unwrap();
    let serials: std::collections::HashSet<String> = ledger
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["serial"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ledger.lines().count(), 2000);
    assert_eq!(serials.len(), 2000);
    for p in 0..8 {
        assert_eq!(
            std::fs::read_dir(s.join(&format!("out{p}")))
                .unwrap()
                .count(),
            250
        );
    }
}

#[test]
fn an_ip_name_gets_no_cn_so_dns_constraints_cannot_trip_openssl() {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal", "--permit", "127.0.0.0/8"]);
    s.issue(&["127.0.0.1"]);
    let t = cert_text(&s, "certs/127.0.0.1/cert.pem");
    assert!(
        t.contains("Subject: \n") || t.contains("Subject:\n") || !t.contains("Subject: CN"),
        "{t}"
    );
    assert!(
        t.contains("X509v3 Subject Alternative Name: critical"),
        "{t}"
    );
    let (okv, out) = run(
        "openssl",
        &[
            "verify",
            "-CAfile",
            "ca/ca.pem",
            "-purpose",
            "sslserver",
            "certs/127.0.0.1/cert.pem",
        ],
        s.path(),
    );
    assert!(okv, "{out}");
}
