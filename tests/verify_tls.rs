//! `uca verify` (certificates and sealed manifests) and real mutual-TLS
//! sessions with the certificates uca issues: rustls on both ends, and
//! OpenSSL's s_server/s_client. OpenSSL is required: these tests fail (they
//! do not skip) if it is missing. Every wait is bounded.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection, StreamOwned,
};
use time::{Duration as TimeDuration, OffsetDateTime};
use uca::pki::keys::KeyType;
use uca::pki::names::San;
use uca::pki::profile::{self, Profile, Validity};

const IO_TIMEOUT: Duration = Duration::from_secs(10);

fn pass_arg(s: &Scratch) -> String {
    s.pass_file().to_str().unwrap().to_string()
}

/// `uca verify ARGS...` in the scratch directory.
fn verify(s: &Scratch, args: &[&str]) -> std::process::Output {
    let mut all = vec!["verify"];
    all.extend_from_slice(args);
    s.uca(&all)
}

/// The `expires X` uca printed when issuing.
fn reported_expiry(out: &std::process::Output) -> String {
    let text = stdout(out);
    let after = text
        .split("expires ")
        .nth(1)
        .unwrap_or_else(|| panic!("no expiry in {text}"));
    after.split_whitespace().next().unwrap().to_string()
}

/// A second CA directory `dir` in the same scratch directory.
fn init_other_ca(s: &Scratch, dir: &str, name: &str, key: &str) {
    let pass = pass_arg(s);
    ok(&s.uca(&[
        "init",
        "--dir",
        dir,
        "--name",
        name,
        "--key",
        key,
        "--passphrase-file",
        &pass,
    ]));
}

fn issue_in(s: &Scratch, ca: &str, out: &str, extra: &[&str]) -> std::process::Output {
    let pass = pass_arg(s);
    let mut args = vec![
        "issue",
        "--dir",
        ca,
        "--out",
        out,
        "--passphrase-file",
        &pass,
    ];
    args.extend_from_slice(extra);
    ok(&s.uca(&args))
}

// ---------------------------------------------------------------------------
// uca verify: certificates

#[test]
fn verify_accepts_each_profile_for_its_use() {
    let s = Scratch::new();
    s.init_ca(&[]);
    let both = s.issue(&["web1.internal"]);
    let until = reported_expiry(&both);
    s.issue(&["--profile", "server", "srv.internal"]);
    s.issue(&["--profile", "client", "cli.internal"]);

    let o = ok(&verify(
        &s,
        &[
            "certs/web1.internal/cert.pem",
            "--ca",
            "ca/ca.pem",
            "--name",
            "web1.internal",
        ],
    ));
    assert_eq!(
        stdout(&o),
        format!("OK: CN=web1.internal is valid for server use (as web1.internal) until {until}, chain: CN=web1.internal <- CN=Test Root\n")
    );
    // chain.pem (leaf + a copy of the root) is fine too, and so is client use.
    let o = ok(&verify(
        &s,
        &[
            "certs/web1.internal/chain.pem",
            "--ca",
            "ca/ca.pem",
            "--client",
        ],
    ));
    assert_eq!(
        stdout(&o),
        format!("OK: CN=web1.internal is valid for client use until {until}, chain: CN=web1.internal <- CN=Test Root\n")
    );
    let o = ok(&verify(
        &s,
        &["certs/srv.internal/cert.pem", "--ca", "ca/ca.pem"],
    ));
    assert!(
        stdout(&o).starts_with("OK: CN=srv.internal is valid for server use (no --name given"),
        "{}",
        stdout(&o)
    );
    let o = ok(&verify(
        &s,
        &[
            "certs/cli.internal/cert.pem",
            "--ca",
            "ca/ca.pem",
            "--client",
        ],
    ));
    assert!(
        stdout(&o).starts_with("OK: CN=cli.internal is valid for client use until "),
        "{}",
        stdout(&o)
    );

    // An IP name, and a CA file holding several trust anchors.
    s.issue(&["--profile", "server", "10.0.0.5"]);
    init_other_ca(&s, "other", "Other Root", "ec-p256");
    let bundle = format!(
        "{}{}",
        std::fs::read_to_string(s.join("other/ca.pem")).unwrap(),
        std::fs::read_to_string(s.join("ca/ca.pem")).unwrap()
    );
    std::fs::write(s.join("bundle.pem"), bundle).unwrap();
    let o = ok(&verify(
        &s,
        &[
            "certs/10.0.0.5/cert.pem",
            "--ca",
            "bundle.pem",
            "--name",
            "10.0.0.5",
        ],
    ));
    assert!(
        stdout(&o)
            .starts_with("OK: (empty subject, IP:10.0.0.5) is valid for server use (as 10.0.0.5)")
            && stdout(&o).ends_with("<- CN=Test Root\n"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn verify_explains_a_certificate_from_another_ca() {
    let s = Scratch::new();
    s.init_ca(&[]);
    s.issue(&["web1.internal"]);
    // Same name, different key: the signature check is what fails.
    init_other_ca(&s, "twin", "Test Root", "ec-p256");
    let err = fails_with(
        &verify(&s, &["certs/web1.internal/cert.pem", "--ca", "twin/ca.pem"]),
        "different CA with the same name",
    );
    assert!(err.contains("the signature on CN=web1.internal does not verify with the public key of CN=Test Root from twin/ca.pem"), "{err}");
    assert!(err.contains("authority key id"), "{err}");
    // Different name: the issuer is unknown, and both sides are named.
    init_other_ca(&s, "other", "Other Root", "ed25519");
    let err = fails_with(
        &verify(
            &s,
            &["certs/web1.internal/cert.pem", "--ca", "other/ca.pem"],
        ),
        "which is not in other/ca.pem",
    );
    assert!(
        err.contains("CN=web1.internal was issued by CN=Test Root"),
        "{err}"
    );
    assert!(err.contains("it holds CN=Other Root"), "{err}");
    // A CA file that is a leaf certificate.
    let err = fails_with(
        &verify(
            &s,
            &[
                "certs/web1.internal/cert.pem",
                "--ca",
                "certs/web1.internal/cert.pem",
            ],
        ),
        "not in",
    );
    assert!(err.contains("is not a CA certificate"), "{err}");
}

#[test]
fn verify_explains_wrong_name_and_wrong_profile() {
    let s = Scratch::new();
    s.init_ca(&[]);
    s.issue(&[
        "--profile",
        "server",
        "--san",
        "IP:10.0.0.7",
        "web1.internal",
    ]);
    s.issue(&["--profile", "client", "cli.internal"]);

    let err = fails_with(
        &verify(
            &s,
            &[
                "certs/web1.internal/cert.pem",
                "--ca",
                "ca/ca.pem",
                "--name",
                "web2.internal",
            ],
        ),
        "CN=web1.internal is not valid for web2.internal: its names are DNS:web1.internal",
    );
    assert!(err.contains("IP:10.0.0.7"), "{err}");
    fails_with(
        &verify(
            &s,
            &[
                "certs/web1.internal/cert.pem",
                "--ca",
                "ca/ca.pem",
                "--name",
                "10.0.0.8",
            ],
        ),
        "is not valid for 10.0.0.8",
    );
    ok(&verify(
        &s,
        &[
            "certs/web1.internal/cert.pem",
            "--ca",
            "ca/ca.pem",
            "--name",
            "10.0.0.7",
        ],
    ));
    fails_with(
        &verify(
            &s,
            &[
                "certs/web1.internal/cert.pem",
                "--ca",
                "ca/ca.pem",
                "--name",
                "not a name",
            ],
        ),
        "invalid --name 'not a name'",
    );

    let err = fails_with(
        &verify(
            &s,
            &[
                "certs/web1.internal/cert.pem",
                "--ca",
                "ca/ca.pem",
                "--client",
            ],
        ),
        "CN=web1.internal cannot be used as a TLS client certificate",
    );
    assert!(
        err.contains("issued with the server profile (EKU serverAuth only)"),
        "{err}"
    );
    assert!(err.contains("needs clientAuth"), "{err}");
    let err = fails_with(
        &verify(&s, &["certs/cli.internal/cert.pem", "--ca", "ca/ca.pem"]),
        "CN=cli.internal cannot be used by a TLS server",
    );
    assert!(
        err.contains("issued with the client profile (EKU clientAuth only)"),
        "{err}"
    );
    assert!(err.contains("needs serverAuth"), "{err}");

    // The CA certificate is not a leaf.
    fails_with(
        &verify(&s, &["ca/ca.pem", "--ca", "ca/ca.pem"]),
        "holds a CA certificate (CN=Test Root, CA:TRUE)",
    );
}

#[test]
fn verify_needs_a_ca_and_readable_files() {
    let s = Scratch::new();
    s.init_ca(&[]);
    s.issue(&["web1.internal"]);
    fails_with(
        &verify(&s, &["certs/web1.internal/cert.pem"]),
        "--ca is required",
    );
    fails_with(&verify(&s, &["nope.pem", "--ca", "ca/ca.pem"]), "nope.pem");
    fails_with(
        &verify(&s, &["certs/web1.internal/key.pem", "--ca", "ca/ca.pem"]),
        "PRIVATE KEY",
    );
    fails_with(
        &verify(&s, &["--manifest", "ca/manifest.json", "--client"]),
        "--manifest",
    );
}

/// Signs a leaf with the CA in `ca/` through the library, with any validity.
fn leaf_with_validity(
    s: &Scratch,
    name: &str,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> PathBuf {
    let store = uca::ca::store::CaStore::open(&s.join("ca")).unwrap();
    let signer = store.unlock(Some(&s.pass_file())).unwrap();
    let key = KeyType::EcP256.generate().unwrap();
    let names = profile::LeafNames::checked(
        profile::subject_cn(name),
        vec![San::Dns(name.to_string())],
        &store.constraints,
    )
    .unwrap();
    let params = profile::leaf_params(
        &names,
        Profile::Both,
        &[],
        KeyType::EcP256,
        Validity {
            not_before,
            not_after,
        },
    )
    .unwrap();
    let cert = params
        .signed_by(&key.key_pair().unwrap(), &signer.issuer)
        .unwrap();
    let path = s.join(&format!("{name}.pem"));
    std::fs::write(&path, uca::pki::x509::pem_certificate(cert.der())).unwrap();
    path
}

#[test]
fn verify_explains_expired_and_not_yet_valid() {
    let s = Scratch::new();
    s.init_ca(&[]);
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let expired_at = now - TimeDuration::days(2);
    leaf_with_validity(&s, "old.internal", now - TimeDuration::days(30), expired_at);
    let err = fails_with(
        &verify(
            &s,
            &[
                "old.internal.pem",
                "--ca",
                "ca/ca.pem",
                "--name",
                "old.internal",
            ],
        ),
        &format!(
            "CN=old.internal expired at {} (now ",
            uca::support::timefmt::rfc3339(expired_at)
        ),
    );
    assert!(err.contains("issue a new certificate"), "{err}");
    fails_with(
        &verify(&s, &["old.internal.pem", "--ca", "ca/ca.pem", "--client"]),
        "CN=old.internal expired at",
    );

    let starts = now + TimeDuration::days(3);
    leaf_with_validity(&s, "future.internal", starts, now + TimeDuration::days(30));
    let err = fails_with(
        &verify(&s, &["future.internal.pem", "--ca", "ca/ca.pem"]),
        &format!(
            "CN=future.internal is not valid yet: its validity starts at {} (now ",
            uca::support::timefmt::rfc3339(starts)
        ),
    );
    assert!(err.contains("clock"), "{err}");

    // The same library path with a current validity verifies, so the
    // failures above are about time only.
    leaf_with_validity(
        &s,
        "now.internal",
        now - TimeDuration::minutes(1),
        now + TimeDuration::days(1),
    );
    ok(&verify(
        &s,
        &[
            "now.internal.pem",
            "--ca",
            "ca/ca.pem",
            "--name",
            "now.internal",
        ],
    ));
}

#[test]
fn verify_explains_a_tampered_certificate() {
    let s = Scratch::new();
    s.init_ca(&[]);
    s.issue(&["web1.internal"]);
    let original = std::fs::read_to_string(s.join("certs/web1.internal/cert.pem")).unwrap();
    let mut der = pem::parse(&original).unwrap().into_contents();
    // Rename web1 to xeb1 inside the signed part: still valid DER.
    let at = der
        .windows(13)
        .position(|w| w == b"web1.internal")
        .expect("name in DER");
    der[at] = b'x';
    std::fs::write(
        s.join("tampered.pem"),
        uca::pki::x509::pem_certificate(&der),
    )
    .unwrap();
    let err = fails_with(
        &verify(&s, &["tampered.pem", "--ca", "ca/ca.pem"]),
        "the signature on CN=xeb1.internal does not verify with the public key of CN=Test Root",
    );
    assert!(err.contains("altered after signing"), "{err}");

    // Broken base64 / truncated files are reported as unreadable.
    std::fs::write(s.join("truncated.pem"), &original[..original.len() / 2]).unwrap();
    fails_with(
        &verify(&s, &["truncated.pem", "--ca", "ca/ca.pem"]),
        "truncated.pem",
    );
}

/// An intermediate made with OpenSSL and signed by `uca sign --intermediate`,
/// and an OpenSSL-made leaf below it.
#[test]
fn verify_follows_intermediates_and_their_name_constraints() {
    let s = Scratch::new();
    s.init_ca(&[]);
    let pass = pass_arg(&s);
    let openssl_ok = |args: &[&str]| {
        let (success, out) = run("openssl", args, s.path());
        assert!(success, "openssl {} failed:\n{out}", args.join(" "));
    };
    openssl_ok(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "int-key.pem",
        "-subj",
        "/CN=Test Intermediate",
        "-out",
        "int.csr",
    ]);
    ok(&s.uca(&[
        "sign",
        "--dir",
        "ca",
        "--intermediate",
        "--permit",
        "internal",
        "--out",
        "int.pem",
        "--passphrase-file",
        &pass,
        "int.csr",
    ]));
    for (name, file) in [("leaf.internal", "leaf"), ("evil.example.com", "evil")] {
        std::fs::write(
            s.join(&format!("{file}.ext")),
            format!(
                "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n\
                 subjectAltName=DNS:{name}\nauthorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n"
            ),
        )
        .unwrap();
        openssl_ok(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{file}-key.pem"),
            "-subj",
            &format!("/CN={name}"),
            "-out",
            &format!("{file}.csr"),
        ]);
        openssl_ok(&[
            "x509",
            "-req",
            "-in",
            &format!("{file}.csr"),
            "-CA",
            "int.pem",
            "-CAkey",
            "int-key.pem",
            "-set_serial",
            "0x1234567890abcdef",
            "-days",
            "30",
            "-extfile",
            &format!("{file}.ext"),
            "-out",
            &format!("{file}.pem"),
        ]);
        let bundle = format!(
            "{}{}{}",
            std::fs::read_to_string(s.join(&format!("{file}.pem"))).unwrap(),
            std::fs::read_to_string(s.join("int.pem")).unwrap(),
            std::fs::read_to_string(s.join("ca/ca.pem")).unwrap()
        );
        std::fs::write(s.join(&format!("{file}-chain.pem")), bundle).unwrap();
    }
    let o = ok(&verify(
        &s,
        &[
            "leaf-chain.pem",
            "--ca",
            "ca/ca.pem",
            "--name",
            "leaf.internal",
        ],
    ));
    assert!(
        stdout(&o).contains("chain: CN=leaf.internal <- CN=Test Intermediate <- CN=Test Root"),
        "{}",
        stdout(&o)
    );
    // Without its intermediate the leaf's issuer is unknown.
    let err = fails_with(
        &verify(&s, &["leaf.pem", "--ca", "ca/ca.pem"]),
        "CN=leaf.internal was issued by CN=Test Intermediate",
    );
    assert!(
        err.contains("not in ca/ca.pem (it holds CN=Test Root)"),
        "{err}"
    );
    // The intermediate may only certify names under `internal`.
    let err = fails_with(
        &verify(&s, &["evil-chain.pem", "--ca", "ca/ca.pem"]),
        "violates the name constraints",
    );
    assert!(
        err.contains(
            "DNS:evil.example.com is outside CN=Test Intermediate (which permits only internal)"
        ),
        "{err}"
    );
    // OpenSSL agrees on both.
    let (good, out) = run(
        "openssl",
        &[
            "verify",
            "-CAfile",
            "ca/ca.pem",
            "-untrusted",
            "int.pem",
            "leaf.pem",
        ],
        s.path(),
    );
    assert!(good, "{out}");
    let (good, out) = run(
        "openssl",
        &[
            "verify",
            "-CAfile",
            "ca/ca.pem",
            "-untrusted",
            "int.pem",
            "evil.pem",
        ],
        s.path(),
    );
    assert!(
        !good && out.contains("permitted subtree violation"),
        "{out}"
    );
}

// ---------------------------------------------------------------------------
// uca verify --manifest, and the manifest signature checked by stock OpenSSL

/// A sealed CA of `key` type with three certificates.
fn sealed_ca(key: &str) -> Scratch {
    let s = Scratch::new();
    s.init_ca(&["--key", key]);
    s.issue(&["a.internal", "b.internal"]);
    s.issue(&["--profile", "client", "c.internal"]);
    let pass = pass_arg(&s);
    ok(&s.uca(&["seal", "--dir", "ca", "--passphrase-file", &pass]));
    s
}

fn sh_in(dir: &Path, script: &str) -> (bool, String) {
    run("sh", &["-c", script], dir)
}

/// `dgst_check` is the `openssl dgst` (or, for Ed25519, `pkeyutl -pubin`)
/// route with the public key extracted to ../ca.pub, outside the CA
/// directory, over manifest.sha256 and then the manifest's SHA-256 against
/// it; the manifest documents a `pkeyutl -certin` line that reads ca.pem
/// itself. Both must accept the manifest and refuse an altered one.
fn manifest_round_trip(key: &str, dgst_check: &str, verified: &str) {
    let s = sealed_ca(key);
    let o = ok(&verify(&s, &["--manifest", "ca/manifest.json"]));
    assert_eq!(
        stdout(&o),
        "OK: manifest signature verifies with ca/ca.pem; 3 certificates, 3 files match, 1 CRL of the root checked\n"
    );

    // Stock OpenSSL with only ca.pem's public key.
    let ca = s.join("ca");
    let (good, out) = sh_in(&ca, "openssl x509 -in ca.pem -pubkey -noout > ../ca.pub");
    assert!(good, "{out}");
    let (good, out) = sh_in(&ca, dgst_check);
    assert!(
        good && out.contains(verified),
        "{key}: {dgst_check}:\n{out}"
    );

    // The line the manifest and `uca seal` print, which writes nothing.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ca.join("manifest.json")).unwrap()).unwrap();
    let recorded = manifest["verify_with"]
        .as_str()
        .expect("verify_with in the manifest");
    assert!(
        recorded.starts_with("openssl pkeyutl -verify -certin -inkey ca.pem -rawin")
            && recorded.ends_with(
                "-in manifest.sha256 -sigfile manifest.sig && openssl dgst -sha256 -r manifest.json | cmp - manifest.sha256"
            ),
        "{key}: the manifest documents {recorded:?}"
    );
    let before = s.files();
    let (good, out) = sh_in(&ca, recorded);
    assert!(
        good && out.contains("Signature Verified Successfully"),
        "{key}: {recorded}:\n{out}"
    );
    assert_eq!(s.files(), before, "{recorded} wrote a file");

    // One changed byte in manifest.json: uca and both OpenSSL routes refuse it.
    let path = ca.join("manifest.json");
    let mut json = std::fs::read(&path).unwrap();
    let at = json
        .windows(10)
        .position(|w| w == b"a.internal")
        .expect("a.internal in the manifest");
    json[at] = b'z';
    std::fs::write(&path, &json).unwrap();
    fails_with(
        &verify(&s, &["--manifest", "ca/manifest.json"]),
        "the manifest was altered after sealing",
    );
    for check in [dgst_check, recorded] {
        let (good, out) = sh_in(&ca, check);
        assert!(!good, "{key}: {check} accepted an altered manifest:\n{out}");
    }
}

#[test]
fn manifest_ec_p256_verifies_with_uca_and_openssl() {
    manifest_round_trip(
        "ec-p256",
        "openssl dgst -sha256 -verify ../ca.pub -signature manifest.sig manifest.sha256 && openssl dgst -sha256 -r manifest.json | cmp - manifest.sha256",
        "Verified OK",
    );
}

#[test]
fn manifest_ec_p384_verifies_with_uca_and_openssl() {
    manifest_round_trip(
        "ec-p384",
        "openssl dgst -sha384 -verify ../ca.pub -signature manifest.sig manifest.sha256 && openssl dgst -sha256 -r manifest.json | cmp - manifest.sha256",
        "Verified OK",
    );
}

#[test]
fn manifest_ed25519_verifies_with_uca_and_openssl() {
    manifest_round_trip(
        "ed25519",
        "openssl pkeyutl -verify -pubin -inkey ../ca.pub -rawin -in manifest.sha256 -sigfile manifest.sig && openssl dgst -sha256 -r manifest.json | cmp - manifest.sha256",
        "Signature Verified Successfully",
    );
}

#[test]
fn manifest_rsa_2048_verifies_with_uca_and_openssl() {
    manifest_round_trip(
        "rsa-2048",
        "openssl dgst -sha256 -verify ../ca.pub -signature manifest.sig manifest.sha256 && openssl dgst -sha256 -r manifest.json | cmp - manifest.sha256",
        "Verified OK",
    );
}

#[test]
fn manifest_reports_altered_and_missing_certificate_files() {
    let s = sealed_ca("ec-p256");
    // --ca given explicitly, from another directory.
    let o = ok(&Command::new(uca_bin())
        .args(["verify", "--manifest", "manifest.json", "--ca", "ca.pem"])
        .current_dir(s.join("ca"))
        .output()
        .unwrap());
    assert_eq!(
        stdout(&o),
        "OK: manifest signature verifies with ca.pem; 3 certificates, 3 files match, 1 CRL of the root checked\n"
    );

    std::fs::copy(
        s.join("certs/b.internal/cert.pem"),
        s.join("certs/a.internal/cert.pem"),
    )
    .unwrap();
    let err = fails_with(
        &verify(&s, &["--manifest", "ca/manifest.json"]),
        "3 certificates, 2 files match, 1 CRL of the root checked, but 1 listed file does not",
    );
    assert!(
        err.contains("a.internal/cert.pem: fingerprint differs from the manifest"),
        "{err}"
    );
    std::fs::remove_file(s.join("certs/c.internal/cert.pem")).unwrap();
    let err = fails_with(
        &verify(&s, &["--manifest", "ca/manifest.json"]),
        "3 certificates, 1 file matches, 1 CRL of the root checked, but 2 listed files do not",
    );
    assert!(err.contains("c.internal/cert.pem: missing"), "{err}");

    // Another CA's certificate does not verify the signature.
    init_other_ca(&s, "other", "Test Root", "ec-p256");
    fails_with(
        &verify(
            &s,
            &["--manifest", "ca/manifest.json", "--ca", "other/ca.pem"],
        ),
        "does not match",
    );
}

// ---------------------------------------------------------------------------
// Mutual TLS with rustls on both ends

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs(path: &Path) -> Vec<CertificateDer<'static>> {
    let out: Vec<_> = CertificateDer::pem_file_iter(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(!out.is_empty(), "no certificate in {}", path.display());
    out
}

fn key(path: &Path) -> PrivateKeyDer<'static> {
    PrivateKeyDer::from_pem_file(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn roots(ca: &Path) -> Arc<RootCertStore> {
    let mut store = RootCertStore::empty();
    for c in certs(ca) {
        store.add(c).unwrap();
    }
    Arc::new(store)
}

fn server_config(ca: &Path, dir: &Path) -> Arc<ServerConfig> {
    let verifier = WebPkiClientVerifier::builder_with_provider(roots(ca), provider())
        .build()
        .unwrap();
    Arc::new(
        ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs(&dir.join("chain.pem")), key(&dir.join("key.pem")))
            .unwrap(),
    )
}

fn client_config(ca: &Path, identity: Option<&Path>) -> Arc<ClientConfig> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots(ca));
    Arc::new(match identity {
        Some(dir) => builder
            .with_client_auth_cert(certs(&dir.join("chain.pem")), key(&dir.join("key.pem")))
            .unwrap(),
        None => builder.with_no_client_auth(),
    })
}

/// What the server saw: the client's certificate subject and its line.
#[derive(Debug)]
struct Served {
    client_subject: String,
    received: String,
    protocol: String,
}

/// One TLS session over loopback: the client sends a line, the server
/// answers with it. Returns what each side got (or its error).
fn tls_session(
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
    server_name: &str,
) -> (Result<Served, String>, Result<String, String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let srv = thread::spawn(move || -> Result<Served, String> {
        let sock = accept_within(&listener, IO_TIMEOUT)?;
        sock.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        sock.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        let conn = ServerConnection::new(server).map_err(|e| e.to_string())?;
        let mut tls = StreamOwned::new(conn, sock);
        let line = read_line(&mut tls)?;
        let client_subject = tls
            .conn
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| {
                uca::pki::x509::parse(c.as_ref())
                    .unwrap()
                    .subject()
                    .to_string()
            })
            .unwrap_or_default();
        let protocol = format!("{:?}", tls.conn.protocol_version());
        tls.write_all(format!("pong: {line}").as_bytes())
            .map_err(|e| e.to_string())?;
        tls.conn.send_close_notify();
        tls.flush().map_err(|e| e.to_string())?;
        Ok(Served {
            client_subject,
            received: line,
            protocol,
        })
    });
    let name = ServerName::try_from(server_name.to_string()).unwrap();
    let cli = thread::spawn(move || -> Result<String, String> {
        let sock = TcpStream::connect_timeout(&addr, IO_TIMEOUT).map_err(|e| e.to_string())?;
        sock.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        sock.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        let conn = ClientConnection::new(client, name).map_err(|e| e.to_string())?;
        let mut tls = StreamOwned::new(conn, sock);
        tls.write_all(b"ping from the client\n")
            .map_err(|e| e.to_string())?;
        tls.flush().map_err(|e| e.to_string())?;
        read_line(&mut tls)
    });
    (
        srv.join().expect("server thread"),
        cli.join().expect("client thread"),
    )
}

fn rustls_mutual_tls(key: &str) {
    let s = Scratch::new();
    s.init_ca(&["--key", key]);
    s.issue(&["--key", key, "--profile", "server", "server.internal"]);
    s.issue(&["--key", key, "--profile", "client", "client1.internal"]);
    init_other_ca(&s, "other", "Other Root", "ec-p256");
    issue_in(
        &s,
        "other",
        "othercerts",
        &["--profile", "client", "intruder.internal"],
    );
    let ca = s.join("ca/ca.pem");
    let server = server_config(&ca, &s.join("certs/server.internal"));

    // The real thing: both sides authenticated, data flows both ways.
    let client = client_config(&ca, Some(&s.join("certs/client1.internal")));
    let (served, answer) = tls_session(server.clone(), client.clone(), "server.internal");
    let served = served.unwrap_or_else(|e| panic!("{key}: server failed: {e}"));
    assert_eq!(served.received, "ping from the client\n");
    assert_eq!(served.client_subject, "CN=client1.internal", "{key}");
    assert_eq!(served.protocol, "Some(TLSv1_3)");
    assert_eq!(
        answer.unwrap_or_else(|e| panic!("{key}: client failed: {e}")),
        "pong: ping from the client\n"
    );

    // The client checks the server's name.
    let (_, answer) = tls_session(server.clone(), client, "other.internal");
    let err = answer.expect_err("a wrong server name must fail");
    assert!(
        err.contains("invalid peer certificate: certificate not valid for name \"other.internal\""),
        "{key}: {err}"
    );

    // A client certificate from another CA is refused by the server.
    let intruder = client_config(&ca, Some(&s.join("othercerts/intruder.internal")));
    let (served, answer) = tls_session(server.clone(), intruder, "server.internal");
    let err = served.expect_err("the server must refuse a client certificate from another CA");
    assert!(
        err.contains("invalid peer certificate") && err.contains("UnknownIssuer"),
        "{key}: {err}"
    );
    let err = answer.expect_err("the client must not get an answer");
    assert!(err.contains("alert"), "{key}: {err}");

    // No client certificate at all is refused too.
    let anonymous = client_config(&ca, None);
    let (served, answer) = tls_session(server, anonymous, "server.internal");
    let err = served.expect_err("the server must require a client certificate");
    assert!(err.contains("no certificates"), "{key}: {err}");
    assert!(
        answer
            .expect_err("no answer without a certificate")
            .contains("alert"),
        "{key}"
    );
}

#[test]
fn rustls_mutual_tls_ec_p256() {
    rustls_mutual_tls("ec-p256");
}

#[test]
fn rustls_mutual_tls_ec_p384() {
    rustls_mutual_tls("ec-p384");
}

#[test]
fn rustls_mutual_tls_ed25519() {
    rustls_mutual_tls("ed25519");
}

#[test]
fn rustls_mutual_tls_rsa_2048() {
    rustls_mutual_tls("rsa-2048");
}

// ---------------------------------------------------------------------------
// Mutual TLS with OpenSSL's s_server and s_client

/// A running `openssl s_server`, killed when dropped.
struct SServer {
    child: Child,
    stdin: Option<ChildStdin>,
    output: Arc<Mutex<String>>,
    readers: Vec<thread::JoinHandle<()>>,
    port: u16,
}

/// Collects a child's stream into `output`, telling `ready` when a line
/// equals `ACCEPT`.
fn collect<R: Read + Send + 'static>(
    stream: R,
    output: Arc<Mutex<String>>,
    ready: mpsc::Sender<()>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if line.trim() == "ACCEPT" {
                let _ = ready.send(());
            }
            let mut out = output.lock().unwrap();
            out.push_str(&line);
            out.push('\n');
        }
    })
}

impl SServer {
    /// Starts `openssl s_server` requiring a client certificate and waits
    /// until it accepts connections (a few attempts in case the port is taken).
    fn start(s: &Scratch, server_dir: &str) -> SServer {
        let mut last = String::new();
        for _ in 0..3 {
            let port = free_port();
            let cert = format!("{server_dir}/cert.pem");
            let key = format!("{server_dir}/key.pem");
            let accept = format!("127.0.0.1:{port}");
            let mut child = Command::new("openssl")
                .args([
                    "s_server",
                    "-Verify",
                    "1",
                    "-verify_return_error",
                    "-CAfile",
                    "ca/ca.pem",
                    "-cert",
                    &cert,
                    "-key",
                    &key,
                ])
                .args(["-accept", &accept, "-naccept", "1"])
                .current_dir(s.path())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot run openssl s_server: {e} (is OpenSSL installed?)")
                });
            let output = Arc::new(Mutex::new(String::new()));
            let (tx, rx) = mpsc::channel();
            let readers = vec![
                collect(child.stdout.take().unwrap(), output.clone(), tx.clone()),
                collect(child.stderr.take().unwrap(), output.clone(), tx),
            ];
            // s_server stops at end of input, so stdin stays open until the end.
            let server = SServer {
                stdin: child.stdin.take(),
                child,
                output,
                readers,
                port,
            };
            if rx.recv_timeout(IO_TIMEOUT).is_ok() {
                return server;
            }
            last = server.finish();
        }
        panic!("openssl s_server did not start:\n{last}");
    }

    /// Waits (bounded) for the server to finish its one connection, then
    /// kills it if needed and returns everything it printed.
    fn finish(mut self) -> String {
        let deadline = Instant::now() + IO_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        self.stdin.take();
        let _ = self.child.kill();
        let _ = self.child.wait();
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        self.output.lock().unwrap().clone()
    }
}

impl Drop for SServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `openssl s_client` against the server, sends `line`, keeps the
/// connection open a moment to receive any alert, and returns its exit
/// success and output. Killed if it runs too long.
fn s_client(s: &Scratch, port: u16, identity: Option<&str>, line: &str) -> (bool, String) {
    let connect = format!("127.0.0.1:{port}");
    let mut cmd = Command::new("openssl");
    cmd.args([
        "s_client",
        "-connect",
        &connect,
        "-CAfile",
        "ca/ca.pem",
        "-verify_return_error",
    ])
    .args([
        "-servername",
        "server.internal",
        "-verify_hostname",
        "server.internal",
    ]);
    let (cert, key);
    if let Some(dir) = identity {
        cert = format!("{dir}/cert.pem");
        key = format!("{dir}/key.pem");
        cmd.args(["-cert", &cert, "-key", &key]);
    }
    let mut child = cmd
        .current_dir(s.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run openssl s_client: {e} (is OpenSSL installed?)"));
    let mut stdin = child.stdin.take().unwrap();
    let line = line.to_string();
    let feeder = thread::spawn(move || {
        let _ = stdin.write_all(line.as_bytes());
        let _ = stdin.flush();
        thread::sleep(Duration::from_millis(800));
        drop(stdin);
    });
    let output = Arc::new(Mutex::new(String::new()));
    let (tx, _rx) = mpsc::channel();
    let readers = [
        collect(child.stdout.take().unwrap(), output.clone(), tx.clone()),
        collect(child.stderr.take().unwrap(), output.clone(), tx),
    ];
    let deadline = Instant::now() + IO_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let _ = feeder.join();
    for r in readers {
        let _ = r.join();
    }
    let out = output.lock().unwrap().clone();
    let status = status.unwrap_or_else(|| panic!("openssl s_client timed out:\n{out}"));
    (status.success(), out)
}

fn openssl_mutual_tls(key: &str) {
    let s = Scratch::new();
    s.init_ca(&["--key", key]);
    s.issue(&["--key", key, "--profile", "server", "server.internal"]);
    s.issue(&["--key", key, "--profile", "client", "client1.internal"]);

    let server = SServer::start(&s, "certs/server.internal");
    let (client_ok, client_out) = s_client(
        &s,
        server.port,
        Some("certs/client1.internal"),
        "hello from the uca test\n",
    );
    let server_out = server.finish();
    assert!(
        client_ok,
        "{key}: s_client failed:\n{client_out}\n--- server:\n{server_out}"
    );
    assert!(
        client_out.contains("Verify return code: 0 (ok)"),
        "{key}: {client_out}"
    );
    assert!(
        client_out.contains("Verified peername: server.internal"),
        "{key}: {client_out}"
    );
    assert!(
        client_out.contains("subject=CN = server.internal"),
        "{key}: {client_out}"
    );
    assert!(
        server_out.contains("Client certificate"),
        "{key}: the server saw no client certificate:\n{server_out}"
    );
    assert!(
        server_out.contains("subject=CN = client1.internal"),
        "{key}: {server_out}"
    );
    assert!(
        server_out.contains("hello from the uca test"),
        "{key}: the line did not arrive:\n{server_out}"
    );
    assert!(!server_out.contains("verify error"), "{key}: {server_out}");
}

#[test]
fn openssl_s_server_and_s_client_mutual_tls_ec_p256() {
    openssl_mutual_tls("ec-p256");
}

#[test]
fn openssl_s_server_and_s_client_mutual_tls_ed25519() {
    openssl_mutual_tls("ed25519");
}

#[test]
fn openssl_s_server_refuses_clients_without_a_trusted_certificate() {
    let s = Scratch::new();
    s.init_ca(&[]);
    s.issue(&["--profile", "server", "server.internal"]);
    init_other_ca(&s, "other", "Other Root", "ec-p256");
    issue_in(
        &s,
        "other",
        "othercerts",
        &["--profile", "client", "intruder.internal"],
    );

    // No certificate: TLS 1.3 reports the refusal after the handshake.
    let server = SServer::start(&s, "certs/server.internal");
    let (_, client_out) = s_client(&s, server.port, None, "let me in\n");
    let server_out = server.finish();
    assert!(
        server_out.contains("peer did not return a certificate"),
        "{server_out}"
    );
    assert!(
        !server_out.contains("let me in"),
        "the server read data from an unauthenticated client:\n{server_out}"
    );
    assert!(
        client_out.contains("alert certificate required"),
        "{client_out}"
    );

    // A certificate from another CA.
    let server = SServer::start(&s, "certs/server.internal");
    let (_, client_out) = s_client(
        &s,
        server.port,
        Some("othercerts/intruder.internal"),
        "let me in\n",
    );
    let server_out = server.finish();
    assert!(
        server_out.contains("unable to get local issuer certificate"),
        "{server_out}"
    );
    assert!(
        !server_out.contains("let me in"),
        "the server read data from an untrusted client:\n{server_out}"
    );
    assert!(client_out.contains("alert unknown ca"), "{client_out}");
}
