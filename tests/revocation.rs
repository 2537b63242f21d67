//! Revocation that survives the seal: the CRLs a seal leaves in DIR/crl/,
//! checked with stock OpenSSL (`crl -verify`, `verify -crl_check_all`) and
//! Go's crypto/x509 (tests/interop/go). pkilint's CRL linter runs in
//! tests/revocation_lint.rs, outside the non-root lane (like
//! tests/conformance.rs: pkilint may be installed for root only).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{fails_with, ok, openssl_csr, run, stdout, Scratch};

const URL: &str = "http://pki.example.internal/root.crl";

/// A CA with a CRL URL, two intermediates (A and B, keys made by OpenSSL),
/// one leaf under each and each intermediate's own empty CRL; sealed.
struct World {
    s: Scratch,
    serial_a: String,
    serial_b: String,
}

fn openssl(s: &Scratch, args: &[&str]) -> String {
    let (ok, out) = run("openssl", args, s.path());
    assert!(ok, "openssl {args:?}: {out}");
    out
}

fn serial_of(s: &Scratch, cert: &str) -> String {
    let out = openssl(s, &["x509", "-in", cert, "-noout", "-serial"]);
    let hex = out
        .trim()
        .trim_start_matches("serial=")
        .to_ascii_lowercase();
    hex.trim_start_matches("00").to_string()
}

/// Signs `name`.pem with uca as an intermediate, then a leaf under it and
/// the intermediate's empty CRL with OpenSSL.
fn intermediate(s: &Scratch, name: &str, extra: &[&str]) {
    let csr = openssl_csr(s, name, &format!("/CN=Intermediate {name}"), &[]);
    let pass = s.pass_file();
    let mut args = vec!["sign", "--dir", "ca", &csr, "--intermediate", "--out"];
    let out = format!("{name}.pem");
    args.push(&out);
    args.extend_from_slice(&["--passphrase-file", pass.to_str().unwrap()]);
    args.extend_from_slice(extra);
    ok(&s.uca(&args));
    std::fs::write(
        s.join("leaf.ext"),
        "basicConstraints=CA:FALSE\nsubjectAltName=DNS:web.internal\n",
    )
    .unwrap();
    let leaf_csr = openssl_csr(s, &format!("leaf-{name}"), "/CN=web.internal", &[]);
    openssl(
        s,
        &[
            "x509",
            "-req",
            "-in",
            &leaf_csr,
            "-CA",
            &out,
            "-CAkey",
            &format!("{name}.key"),
            "-set_serial",
            "7",
            "-days",
            "30",
            "-extfile",
            "leaf.ext",
            "-out",
            &format!("leaf-{name}.pem"),
        ],
    );
    let db = format!("{name}-index.txt");
    std::fs::write(s.join(&db), "").unwrap();
    std::fs::write(
        s.join(&format!("{name}-ca.cnf")),
        format!("[ca]\ndefault_ca = d\n[d]\ndatabase = {db}\ndefault_md = sha256\ndefault_crl_days = 30\n"),
    )
    .unwrap();
    openssl(
        s,
        &[
            "ca",
            "-config",
            &format!("{name}-ca.cnf"),
            "-gencrl",
            "-keyfile",
            &format!("{name}.key"),
            "-cert",
            &out,
            "-out",
            &format!("{name}.crl"),
        ],
    );
}

fn sealed_world() -> World {
    let s = Scratch::new();
    s.init_ca(&["--crl-url", URL]);
    intermediate(&s, "a", &[]);
    intermediate(&s, "b", &["--crl-url", URL]);
    let pass = s.pass_file();
    ok(&s.uca(&[
        "seal",
        "--dir",
        "ca",
        "--passphrase-file",
        pass.to_str().unwrap(),
    ]));
    let (serial_a, serial_b) = (serial_of(&s, "a.pem"), serial_of(&s, "b.pem"));
    World {
        s,
        serial_a,
        serial_b,
    }
}

fn crl_text(s: &Scratch, crl: &str) -> String {
    openssl(s, &["crl", "-inform", "DER", "-in", crl, "-noout", "-text"])
}

/// `openssl verify -crl_check_all` of `leaf` through `int`, with the
/// root's CRL `root_crl` and the intermediate's own.
fn verify_with_crls(s: &Scratch, int: &str, leaf: &str, root_crl: &str) -> (bool, String) {
    run(
        "openssl",
        &[
            "verify",
            "-crl_check_all",
            "-CAfile",
            "ca/ca.pem",
            "-untrusted",
            &format!("{int}.pem"),
            "-CRLfile",
            root_crl,
            "-CRLfile",
            &format!("{int}.crl"),
            leaf,
        ],
        s.path(),
    )
}

#[test]
fn the_seal_leaves_a_ca_only_root_crl_and_one_revocation_per_intermediate() {
    let w = sealed_world();
    let s = &w.s;
    let root_crl = "ca/crl/root.crl";
    let rev_a = format!("ca/crl/revoke-{}.crl", w.serial_a);
    let rev_b = format!("ca/crl/revoke-{}.crl", w.serial_b);
    let rev_all = "ca/crl/revoke-all.crl";
    let root_end = openssl(s, &["x509", "-in", "ca/ca.pem", "-noout", "-enddate"]);
    let root_end = root_end.trim().trim_start_matches("notAfter=");
    for (crl, number, revoked) in [
        (root_crl, 1, vec![]),
        (rev_a.as_str(), 2, vec![&w.serial_a]),
        (rev_b.as_str(), 3, vec![&w.serial_b]),
        (rev_all, 4, vec![&w.serial_a, &w.serial_b]),
    ] {
        let out = openssl(
            s,
            &[
                "crl",
                "-inform",
                "DER",
                "-in",
                crl,
                "-CAfile",
                "ca/ca.pem",
                "-noout",
                "-verify",
            ],
        );
        assert!(out.contains("verify OK"), "{crl}: {out}");
        let text = crl_text(s, crl);
        assert!(text.contains("Only CA Certificates"), "{crl}: {text}");
        assert!(
            text.contains(&format!("CRL Number: \n                {number}\n")),
            "{crl}: {text}"
        );
        assert!(text.contains("Authority Key Identifier"), "{crl}: {text}");
        assert!(
            text.contains(&format!("Next Update: {root_end}")),
            "{crl}: {text}"
        );
        let listed = text.matches("Serial Number:").count();
        assert_eq!(listed, revoked.len(), "{crl}: {text}");
        for serial in revoked {
            assert!(
                text.to_ascii_lowercase().contains(serial.as_str()),
                "{crl}: {text}"
            );
        }
    }
    // The root names no distribution point; the intermediates name the URL.
    let root = openssl(s, &["x509", "-in", "ca/ca.pem", "-noout", "-text"]);
    assert!(!root.contains("CRL Distribution Points"), "{root}");
    for int in ["a.pem", "b.pem"] {
        let text = openssl(
            s,
            &[
                "x509",
                "-in",
                int,
                "-noout",
                "-ext",
                "crlDistributionPoints",
            ],
        );
        assert!(text.contains(&format!("URI:{URL}")), "{int}: {text}");
    }
    // The manifest records every CRL, and verifying it checks their files.
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.join("ca/manifest.json")).unwrap())
            .unwrap();
    let crls = manifest["crls"].as_array().unwrap();
    assert_eq!(crls.len(), 4, "{manifest}");
    assert_eq!(crls[0]["path"], "crl/root.crl");
    let verified = stdout(&ok(&s.uca(&["verify", "--manifest", "ca/manifest.json"])));
    assert!(verified.contains("4 CRLs"), "{verified}");
    std::fs::write(s.join(rev_all), b"tampered").unwrap();
    let err = fails_with(
        &s.uca(&["verify", "--manifest", "ca/manifest.json"]),
        "revoke-all.crl",
    );
    assert!(err.contains("fingerprint differs"), "{err}");
}

#[test]
fn openssl_rejects_a_leaf_under_a_revoked_intermediate_and_accepts_one_under_another() {
    let w = sealed_world();
    let s = &w.s;
    let rev_a = format!("ca/crl/revoke-{}.crl", w.serial_a);
    let (good, out) = verify_with_crls(s, "a", "leaf-a.pem", "ca/crl/root.crl");
    assert!(good, "the empty root CRL must accept: {out}");
    let (good, out) = verify_with_crls(s, "a", "leaf-a.pem", &rev_a);
    assert!(!good && out.contains("certificate revoked"), "{out}");
    let (good, out) = verify_with_crls(s, "b", "leaf-b.pem", &rev_a);
    assert!(good, "B is not revoked by A's CRL: {out}");
    for leaf in ["a", "b"] {
        let (good, out) = verify_with_crls(
            s,
            leaf,
            &format!("leaf-{leaf}.pem"),
            "ca/crl/revoke-all.crl",
        );
        assert!(
            !good && out.contains("certificate revoked"),
            "{leaf}: {out}"
        );
    }
}

fn go_interop(into: &Path) -> PathBuf {
    let bin = into.join("interop-go");
    let go_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/go");
    let mut cmd = Command::new("go");
    cmd.args(["build", "-buildvcs=false", "-o"])
        .arg(&bin)
        .arg(".")
        .current_dir(go_dir)
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off");
    if std::env::var_os("GOCACHE").is_none() {
        // The shared cache under target/ unless this user may not write
        // there (the non-root lane): then one under TMPDIR.
        let shared = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let writable = tempfile::tempdir_in(&shared).is_ok();
        let base = if writable {
            shared
        } else {
            std::env::temp_dir()
        };
        cmd.env("GOCACHE", base.join("go-build"));
    }
    let out = cmd
        .output()
        .expect("go must be installed (test.sh installs golang-go)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    bin
}

#[test]
fn go_parses_every_crl_checks_its_signature_and_finds_the_revoked_intermediate() {
    let w = sealed_world();
    let s = &w.s;
    let go = go_interop(s.path());
    let check = |crl: &str, certs: &[&str]| {
        let out = Command::new(&go)
            .args(["crl", "ca/ca.pem", crl])
            .args(certs)
            .current_dir(s.path())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (good, out) = check("ca/crl/root.crl", &["a.pem", "b.pem"]);
    assert!(good && out.starts_with("OK crl 1\n"), "{out}");
    assert_eq!(out.matches("GOOD").count(), 2, "{out}");
    let (good, out) = check(
        &format!("ca/crl/revoke-{}.crl", w.serial_a),
        &["a.pem", "b.pem"],
    );
    assert!(good && out.starts_with("OK crl 2\n"), "{out}");
    assert!(
        out.contains(&format!("REVOKED {}", w.serial_a.trim_start_matches('0'))),
        "{out}"
    );
    assert!(
        out.contains(&format!("GOOD {}", w.serial_b.trim_start_matches('0'))),
        "{out}"
    );
    // Another issuer's key does not verify the root's CRL.
    let out = Command::new(&go)
        .args(["crl", "a.pem", "ca/crl/root.crl"])
        .current_dir(s.path())
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn a_ca_without_intermediates_leaves_only_root_crl_and_no_url_is_needed() {
    let s = Scratch::new();
    s.init_ca_generating_passphrase();
    ok(&s.uca(&["seal", "--dir", "ca"]));
    let mut names: Vec<String> = std::fs::read_dir(s.join("ca/crl"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["root.crl"]);
    let out = openssl(
        &s,
        &[
            "crl",
            "-inform",
            "DER",
            "-in",
            "ca/crl/root.crl",
            "-CAfile",
            "ca/ca.pem",
            "-noout",
            "-verify",
        ],
    );
    assert!(out.contains("verify OK"), "{out}");
}

#[test]
fn crl_urls_are_checked_and_an_intermediate_cannot_name_another_than_the_cas() {
    let s = Scratch::new();
    let err = fails_with(
        &s.uca(&[
            "init",
            "--dir",
            "ca",
            "--name",
            "R",
            "--generate-passphrase",
            "--crl-url",
            "ftp://x/r.crl",
        ]),
        "--crl-url",
    );
    assert!(err.contains("ftp://x/r.crl"), "{err}");
    assert!(!s.join("ca").exists());
    s.init_ca(&["--crl-url", URL]);
    let csr = openssl_csr(&s, "other", "/CN=Other", &[]);
    let pass = s.pass_file();
    let err = fails_with(
        &s.uca(&[
            "sign",
            "--dir",
            "ca",
            &csr,
            "--intermediate",
            "--out",
            "other.pem",
            "--crl-url",
            "http://elsewhere.internal/x.crl",
            "--passphrase-file",
            pass.to_str().unwrap(),
        ]),
        "elsewhere.internal",
    );
    assert!(err.contains(URL), "{err}");
    assert!(!s.join("other.pem").exists());
    let toml = std::fs::read_to_string(s.join("ca/ca.toml")).unwrap();
    assert!(toml.contains(URL), "{toml}");
}

#[test]
fn check_reports_the_root_crl_next_update_as_it_approaches() {
    let s = Scratch::new();
    s.init_ca(&["--days", "20"]);
    let pass = s.pass_file();
    ok(&s.uca(&[
        "seal",
        "--dir",
        "ca",
        "--passphrase-file",
        pass.to_str().unwrap(),
    ]));
    let out = s.uca(&["check", "ca/crl"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.starts_with("WARN"), "{text}");
    assert!(
        text.contains("CRL #1 of CN=Test Root") && text.contains("root.crl"),
        "{text}"
    );
    let out = s.uca(&["check", "ca/crl/root.crl", "--within", "10d"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}
