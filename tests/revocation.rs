//! Revocation that survives the seal: the CRLs a seal leaves in DIR/crl/,
//! checked with stock OpenSSL (`crl -verify`, `verify -crl_check_all`),
//! Go's crypto/x509 (tests/interop/go) and Java's PKIX validation with
//! revocation (tests/interop/java-crl); M-of-N escrow and `uca recover`,
//! also against a real OpenBao. pkilint's CRL linter runs in
//! tests/revocation_lint.rs, outside the non-root lane (like
//! tests/conformance.rs: pkilint may be installed for root only).

#[path = "common/bao.rs"]
mod bao;
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

// ------------------------------------------------- M-of-N escrow, recovery --

/// Every file under the scratch directory with its SHA-256: a refused
/// command must leave this unchanged.
fn tree(s: &Scratch) -> Vec<(String, String)> {
    s.files()
        .into_iter()
        .map(|f| {
            let p = s.join(&f);
            let digest = match std::fs::read(&p) {
                Ok(bytes) if p.is_file() => {
                    hex(ring::digest::digest(&ring::digest::SHA256, &bytes).as_ref())
                }
                _ => String::new(),
            };
            (f, digest)
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A CA with intermediates A and B (leaves and their own CRLs as in
/// [`sealed_world`]), sealed with 3-of-5 escrow into `shares/`.
fn escrowed_world() -> World {
    let s = Scratch::new();
    s.init_ca(&["--crl-url", URL]);
    intermediate(&s, "a", &[]);
    intermediate(&s, "b", &[]);
    let pass = s.pass_file();
    let sealed = ok(&s.uca(&[
        "seal",
        "--dir",
        "ca",
        "--passphrase-file",
        pass.to_str().unwrap(),
        "--escrow-shares",
        "3/5",
        "--escrow-dir",
        "shares",
    ]));
    assert!(
        stdout(&sealed).contains("3 of its 5 custodians"),
        "{}",
        stdout(&sealed)
    );
    let (serial_a, serial_b) = (serial_of(&s, "a.pem"), serial_of(&s, "b.pem"));
    World {
        s,
        serial_a,
        serial_b,
    }
}

fn share(i: u8) -> String {
    format!("shares/share-{i}-of-5.json")
}

fn recover(s: &Scratch, shares: &[u8], operation: &[&str]) -> std::process::Output {
    let files: Vec<String> = shares.iter().map(|i| share(*i)).collect();
    let mut args = vec!["recover", "--dir", "ca"];
    for f in &files {
        args.extend_from_slice(&["--share", f]);
    }
    args.extend_from_slice(operation);
    s.uca(&args)
}

#[test]
fn escrow_keeps_only_the_escrowed_key_and_writes_one_0600_share_per_custodian() {
    use std::os::unix::fs::PermissionsExt;
    let w = escrowed_world();
    let s = &w.s;
    let mode = |p: &str| std::fs::metadata(s.join(p)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("shares"), 0o700);
    for i in 1..=5 {
        assert_eq!(mode(&share(i)), 0o600, "{}", share(i));
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(s.join(&share(i))).unwrap()).unwrap();
        assert_eq!(
            (
                v["index"].as_u64(),
                v["threshold"].as_u64(),
                v["shares"].as_u64()
            ),
            (Some(i.into()), Some(3), Some(5))
        );
    }
    assert_eq!(mode("ca/private/escrow-key.pem"), 0o600);
    // The copy under the operator's passphrase is gone: only a quorum opens the key.
    assert!(!s.join("ca/private/ca-key.pem").exists());
    let manifest = std::fs::read_to_string(s.join("ca/manifest.json")).unwrap();
    assert!(
        manifest.contains("\"escrow\": {\"threshold\":3,\"shares\":5"),
        "{manifest}"
    );
    ok(&s.uca(&["verify", "--manifest", "ca/manifest.json"]));
    // The operator's passphrase no longer opens anything.
    let pass = s.pass_file();
    fails_with(
        &s.uca(&[
            "issue",
            "--dir",
            "ca",
            "--out",
            "certs",
            "web1",
            "--passphrase-file",
            pass.to_str().unwrap(),
        ]),
        "sealed",
    );
}

#[test]
fn bad_escrow_requests_are_refused_before_anything_is_sealed() {
    let s = Scratch::new();
    s.init_ca_generating_passphrase();
    let before = tree(&s);
    for bad in ["1/5", "6/5", "3", "2/256", "0/0", "a/b", "3/5/7"] {
        let err = fails_with(
            &s.uca(&[
                "seal",
                "--dir",
                "ca",
                "--escrow-shares",
                bad,
                "--escrow-dir",
                "shares",
            ]),
            "--escrow-shares",
        );
        assert!(err.contains(bad), "{err}");
        assert_eq!(tree(&s), before, "{bad}");
    }
    let err = fails_with(
        &s.uca(&[
            "seal",
            "--dir",
            "ca",
            "--escrow-shares",
            "2/3",
            "--escrow-dir",
            "ca/private/shares",
        ]),
        "--escrow-dir",
    );
    assert!(err.contains("inside the CA directory"), "{err}");
    std::fs::create_dir(s.join("shares")).unwrap();
    std::fs::write(s.join("shares/share-2-of-3.json"), "kept").unwrap();
    let before = tree(&s);
    fails_with(
        &s.uca(&[
            "seal",
            "--dir",
            "ca",
            "--escrow-shares",
            "2/3",
            "--escrow-dir",
            "shares",
        ]),
        "share-2-of-3.json already exists",
    );
    assert_eq!(tree(&s), before);
    let both = s.uca(&[
        "seal",
        "--dir",
        "ca",
        "--escrow-shares",
        "2/3",
        "--escrow-dir",
        "shares",
        "--destroy-key",
    ]);
    assert!(!both.status.success() && common::stderr(&both).contains("--destroy-key"));
    // --force replaces them, and the CA was open until then.
    ok(&s.uca(&[
        "seal",
        "--dir",
        "ca",
        "--escrow-shares",
        "2/3",
        "--escrow-dir",
        "shares",
        "--force",
    ]));
    assert!(std::fs::read_to_string(s.join("shares/share-2-of-3.json"))
        .unwrap()
        .contains("uca-escrow-share-1"));
}

#[test]
fn a_ca_sealed_without_escrow_never_signs_again_whatever_shares_are_brought() {
    let s = Scratch::new();
    s.init_ca_generating_passphrase();
    ok(&s.uca(&["seal", "--dir", "ca"]));
    let record = std::fs::read_to_string(s.join("ca/sealed.json")).unwrap();
    assert!(!record.contains("escrow"), "{record}");
    let manifest = std::fs::read_to_string(s.join("ca/manifest.json")).unwrap();
    assert!(!manifest.contains("escrow"), "{manifest}");
    assert!(!s.join("ca/private/escrow-key.pem").exists());
    // Shares of another, escrowed CA change nothing.
    let other = escrowed_world();
    for i in 1..=3 {
        std::fs::copy(other.s.join(&share(i)), s.join(&format!("share-{i}.json"))).unwrap();
    }
    let before = tree(&s);
    let err = fails_with(
        &s.uca(&[
            "recover",
            "--dir",
            "ca",
            "--share",
            "share-1.json",
            "--share",
            "share-2.json",
            "--share",
            "share-3.json",
            "revoke",
            "00ff",
        ]),
        "without escrow",
    );
    assert!(err.contains("never signs again"), "{err}");
    assert_eq!(tree(&s), before);
}

/// Rewrites a share's field and recomputes its check, as someone who knows
/// the format could: only the comparison with the CA and its manifest can
/// catch it.
fn forge_share(s: &Scratch, from: &str, to: &str, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.join(from)).unwrap()).unwrap();
    edit(&mut v);
    let text = format!(
        "{}\n{}\n{}\n{}\n{}\n{}\n{}\n",
        v["format"].as_str().unwrap(),
        v["ca"].as_str().unwrap(),
        v["index"],
        v["threshold"],
        v["shares"],
        v["share"].as_str().unwrap(),
        v["secret_sha256"].as_str().unwrap()
    );
    v["check"] = hex(ring::digest::digest(&ring::digest::SHA256, text.as_bytes()).as_ref()).into();
    std::fs::write(s.join(to), serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

#[test]
fn too_few_damaged_foreign_repeated_or_wrong_threshold_shares_are_named_and_nothing_changes() {
    let w = escrowed_world();
    let s = &w.s;
    let other = escrowed_world();
    std::fs::copy(other.s.join(&share(3)), s.join("foreign.json")).unwrap();
    let text = std::fs::read_to_string(s.join(&share(2))).unwrap();
    let flipped = text
        .replacen("\"share\": \"", "\"share\": \"0", 1)
        .replacen("\"share\": \"00", "\"share\": \"1", 1);
    std::fs::write(s.join("damaged.json"), flipped).unwrap();
    forge_share(s, &share(3), "threshold.json", |v| {
        v["threshold"] = 2.into()
    });
    forge_share(s, &share(3), "altered.json", |v| {
        let mut hex = v["share"].as_str().unwrap().to_string();
        let first = if hex.starts_with('0') { "1" } else { "0" };
        hex.replace_range(0..1, first);
        v["share"] = hex.into();
    });
    let before = tree(s);
    let revoke = ["revoke", "a.pem"];
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![share(1), share(2)],
            "2 valid shares given; the key of ca needs 3 of its 5: nothing was decrypted",
        ),
        (
            vec![share(1), "damaged.json".into(), share(3)],
            "damaged.json",
        ),
        (
            vec![share(1), share(2), "foreign.json".into()],
            "another CA",
        ),
        (vec![share(1), share(2), share(2)], "repeats share 2"),
        (
            vec![share(1), share(2), "threshold.json".into()],
            "2-of-5 split",
        ),
        (
            vec![share(1), share(2), "altered.json".into()],
            "do not recombine",
        ),
    ];
    for (files, needle) in cases {
        let mut args = vec!["recover", "--dir", "ca"];
        for f in &files {
            args.extend_from_slice(&["--share", f]);
        }
        args.extend_from_slice(&revoke);
        let err = fails_with(&s.uca(&args), needle);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert_eq!(tree(s), before, "{files:?}");
    }
    let err = fails_with(&recover(s, &[1, 2, 3], &["revoke", "abcdef"]), "abcdef");
    assert!(err.contains("not in the ledger"), "{err}");
    assert_eq!(tree(s), before);
}

#[test]
fn three_of_five_shares_revoke_an_intermediate_and_openssl_then_rejects_a_leaf_under_it() {
    let w = escrowed_world();
    let s = &w.s;
    let sealed = std::fs::read_to_string(s.join("ca/sealed.json")).unwrap();
    // Two intermediates: root.crl is 1, their revocations 2 and 3, all 4.
    let out = stdout(&ok(&recover(s, &[2, 4, 5], &["revoke", "a.pem"])));
    assert!(out.contains("CRL number 5"), "{out}");
    let crl = "ca/crl/root-5.crl";
    let text = crl_text(s, crl);
    assert!(
        text.contains("Only CA Certificates") && text.contains(&w.serial_a.to_ascii_uppercase()),
        "{text}"
    );
    let verified = openssl(
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
    assert!(verified.contains("verify OK"), "{verified}");
    let (good, out) = verify_with_crls(s, "a", "leaf-a.pem", crl);
    assert!(!good && out.contains("certificate revoked"), "{out}");
    let (good, out) = verify_with_crls(s, "b", "leaf-b.pem", crl);
    assert!(good, "{out}");
    // The next revocation keeps the earlier one, with the next number.
    ok(&recover(
        s,
        &[1, 2, 3],
        &["revoke", &w.serial_b.to_ascii_uppercase()],
    ));
    let text = crl_text(s, "ca/crl/root-6.crl");
    assert!(
        text.contains(&w.serial_a.to_ascii_uppercase())
            && text.contains(&w.serial_b.to_ascii_uppercase()),
        "{text}"
    );
    // Recorded, signed, and the CA stays sealed exactly as it was.
    let verified = stdout(&ok(&s.uca(&["verify", "--manifest", "ca/manifest.json"])));
    assert!(
        verified.contains("2 recovery entries signed by the root"),
        "{verified}"
    );
    let log = std::fs::read_to_string(s.join("ca/recoveries.jsonl")).unwrap();
    assert!(
        log.contains(r#"\"shares\":[2,4,5]"#) && log.contains(r#"\"operation\":\"revoke\""#),
        "{log}"
    );
    assert_eq!(
        std::fs::read_to_string(s.join("ca/sealed.json")).unwrap(),
        sealed
    );
    fails_with(
        &s.uca(&["issue", "--dir", "ca", "--out", "certs", "web1"]),
        "sealed",
    );
    // Go agrees.
    let go = go_interop(s.path());
    let out = Command::new(&go)
        .args(["crl", "ca/ca.pem", crl, "a.pem", "b.pem"])
        .current_dir(s.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && text.starts_with("OK crl 5\n")
            && text.contains("REVOKED")
            && text.contains("GOOD"),
        "{text}"
    );
}

#[test]
fn a_recovered_intermediate_is_signed_recorded_and_an_altered_log_fails_verification() {
    let w = escrowed_world();
    let s = &w.s;
    let csr = openssl_csr(s, "fresh", "/CN=Fresh Vault Intermediate", &[]);
    let before = tree(s);
    fails_with(
        &recover(
            s,
            &[1, 2],
            &["sign", &csr, "--intermediate", "--out", "fresh.pem"],
        ),
        "2 valid shares",
    );
    assert_eq!(tree(s), before);
    let leaf = recover(s, &[1, 2, 3], &["sign", &csr, "--out", "fresh.pem"]);
    assert!(!leaf.status.success() && common::stderr(&leaf).contains("--intermediate"));
    assert_eq!(tree(s), before);
    let out = stdout(&ok(&recover(
        s,
        &[1, 3, 5],
        &["sign", &csr, "--intermediate", "--out", "fresh.pem"],
    )));
    assert!(out.contains("CN=Fresh Vault Intermediate"), "{out}");
    let (good, text) = run(
        "openssl",
        &["verify", "-CAfile", "ca/ca.pem", "fresh.pem"],
        s.path(),
    );
    assert!(good, "{text}");
    let ext = openssl(
        s,
        &[
            "x509",
            "-in",
            "fresh.pem",
            "-noout",
            "-ext",
            "basicConstraints,crlDistributionPoints",
        ],
    );
    assert!(ext.contains("CA:TRUE") && ext.contains(URL), "{ext}");
    let ledger = std::fs::read_to_string(s.join("ca/ledger.jsonl")).unwrap();
    assert!(ledger.contains(&serial_of(s, "fresh.pem")), "{ledger}");
    let verified = stdout(&ok(&s.uca(&["verify", "--manifest", "ca/manifest.json"])));
    assert!(verified.contains("1 recovery entry"), "{verified}");
    // An altered entry no longer verifies.
    let log = std::fs::read_to_string(s.join("ca/recoveries.jsonl")).unwrap();
    std::fs::write(
        s.join("ca/recoveries.jsonl"),
        log.replace("sign-intermediate", "revoke"),
    )
    .unwrap();
    fails_with(
        &s.uca(&["verify", "--manifest", "ca/manifest.json"]),
        "does not verify",
    );
    std::fs::write(s.join("ca/recoveries.jsonl"), log).unwrap();
    std::fs::write(s.join("fresh.pem"), std::fs::read(s.join("a.pem")).unwrap()).unwrap();
    fails_with(
        &s.uca(&["verify", "--manifest", "ca/manifest.json"]),
        "fresh.pem",
    );
}

#[test]
fn a_ceremony_seals_with_escrow_and_its_shares_recover() {
    let s = Scratch::new();
    std::fs::write(
        s.join("plan.toml"),
        "[ca]\nname = \"Ceremony Root\"\n[[group]]\nname = \"web\"\nnames = [\"web1.internal\"]\n",
    )
    .unwrap();
    let out = stdout(&ok(&s.uca(&[
        "ceremony",
        "plan.toml",
        "--out",
        "out",
        "--escrow-shares",
        "2/3",
        "--escrow-dir",
        "shares",
    ])));
    assert!(
        out.contains("recoverable by any 2 of 3 custodians"),
        "{out}"
    );
    assert!(s.join("out/ca/private/escrow-key.pem").exists());
    assert!(!s.join("out/ca/private/ca-key.pem").exists());
    let serial = serial_of(&s, "out/certs/web1.internal/cert.pem");
    ok(&s.uca(&[
        "recover",
        "--dir",
        "out/ca",
        "--share",
        "shares/share-1-of-3.json",
        "--share",
        "shares/share-3-of-3.json",
        "revoke",
        &serial,
    ]));
    // A leaf: the CRL is not CA-only.
    let text = crl_text(&s, "out/ca/crl/root-2.crl");
    assert!(
        !text.contains("Only CA Certificates") && text.contains(&serial.to_ascii_uppercase()),
        "{text}"
    );
    ok(&s.uca(&["verify", "--manifest", "out/ca/manifest.json"]));
}

#[test]
fn after_an_escrowed_seal_and_a_recovery_no_file_holds_the_passphrase_or_the_plain_key() {
    let s = Scratch::new();
    s.init_ca(&[]);
    let passphrase = common::PASSPHRASE;
    // Decrypt the key out of the tree, only to know what to look for.
    let key_der = std::env::temp_dir().join(format!("uca-escrow-key-{}.der", std::process::id()));
    openssl(
        &s,
        &[
            "pkey",
            "-in",
            "ca/private/ca-key.pem",
            "-passin",
            "file:pass.txt",
            "-outform",
            "DER",
            "-out",
            key_der.to_str().unwrap(),
        ],
    );
    let key = std::fs::read(&key_der).unwrap();
    std::fs::remove_file(&key_der).unwrap();
    let scalar = key[key.len() - 32..].to_vec();
    intermediate(&s, "a", &[]);
    let pass = s.pass_file();
    ok(&s.uca(&[
        "seal",
        "--dir",
        "ca",
        "--escrow-shares",
        "2/3",
        "--escrow-dir",
        "shares",
        "--passphrase-file",
        pass.to_str().unwrap(),
    ]));
    // The operator's own copy is theirs to destroy (uca says so).
    std::fs::remove_file(&pass).unwrap();
    ok(&s.uca(&[
        "recover",
        "--dir",
        "ca",
        "--share",
        "shares/share-1-of-3.json",
        "--share",
        "shares/share-2-of-3.json",
        "revoke",
        "a.pem",
    ]));
    // The operator's passphrase opens nothing any more.
    std::fs::write(s.join("old-pass"), format!("{passphrase}\n")).unwrap();
    let (opened, _) = run(
        "openssl",
        &[
            "pkey",
            "-in",
            "ca/private/escrow-key.pem",
            "-passin",
            "file:old-pass",
            "-noout",
        ],
        s.path(),
    );
    assert!(
        !opened,
        "the escrowed key opens with the operator's passphrase"
    );
    std::fs::remove_file(s.join("old-pass")).unwrap();
    let mut scanned = 0;
    for f in s.files() {
        let p = s.join(&f);
        if !p.is_file() {
            continue;
        }
        scanned += 1;
        let bytes = std::fs::read(&p).unwrap();
        let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        assert!(!has(passphrase.as_bytes()), "the passphrase is in {f}");
        assert!(!has(&key), "the plain CA key is in {f}");
        assert!(!has(&scalar), "CA key material is in {f}");
    }
    assert!(scanned >= 12, "scanned only {scanned} files");
}

#[test]
fn a_seal_without_escrow_destroys_an_escrowed_key_an_interrupted_attempt_left() {
    let s = Scratch::new();
    s.init_ca_generating_passphrase();
    // What a seal with escrow killed before its record leaves behind.
    std::fs::copy(
        s.join("ca/private/ca-key.pem"),
        s.join("ca/private/escrow-key.pem"),
    )
    .unwrap();
    ok(&s.uca(&["seal", "--dir", "ca"]));
    assert!(!s.join("ca/private/escrow-key.pem").exists());
}

#[test]
fn a_plans_escrow_section_and_crl_url_drive_the_ceremony_and_conflicts_are_refused() {
    let s = Scratch::new();
    let plan = "[ca]\nname = \"Plan Root\"\ncrl_url = \"http://pki.example.internal/root.crl\"\n\
                [escrow]\nshares = \"2/3\"\ndir = \"custody\"\n\
                [[group]]\nname = \"web\"\nnames = [\"web1.internal\"]\n";
    std::fs::write(s.join("plan.toml"), plan).unwrap();
    let before = tree(&s);
    let both = s.uca(&[
        "ceremony",
        "plan.toml",
        "--out",
        "out",
        "--escrow-shares",
        "2/3",
        "--escrow-dir",
        "x",
    ]);
    let err = fails_with(&both, "[escrow]");
    assert!(err.contains("--escrow-shares"), "{err}");
    assert_eq!(tree(&s), before);
    let ca = s.init_ca(&[]);
    let err = fails_with(
        &s.uca(&[
            "issue",
            "--dir",
            ca.to_str().unwrap(),
            "--out",
            "certs",
            "--plan",
            "plan.toml",
        ]),
        "[escrow] section is for uca ceremony",
    );
    assert!(!err.is_empty());
    std::fs::remove_dir_all(&ca).unwrap();
    ok(&s.uca(&["ceremony", "plan.toml", "--out", "out"]));
    for i in 1..=3 {
        assert!(s.join(&format!("custody/share-{i}-of-3.json")).exists());
    }
    let toml = std::fs::read_to_string(s.join("out/ca/ca.toml")).unwrap();
    assert!(
        toml.contains("crl_url = \"http://pki.example.internal/root.crl\""),
        "{toml}"
    );
    // The recovered intermediate carries the plan's URL.
    let csr = openssl_csr(&s, "vault2", "/CN=Vault Intermediate 2", &[]);
    ok(&s.uca(&[
        "recover",
        "--dir",
        "out/ca",
        "--share",
        "custody/share-2-of-3.json",
        "--share",
        "custody/share-3-of-3.json",
        "sign",
        &csr,
        "--intermediate",
        "--out",
        "vault2.pem",
    ]));
    let ext = openssl(
        &s,
        &[
            "x509",
            "-in",
            "vault2.pem",
            "-noout",
            "-ext",
            "crlDistributionPoints",
        ],
    );
    assert!(
        ext.contains("http://pki.example.internal/root.crl"),
        "{ext}"
    );
}

/// The issue's lifecycle against a real OpenBao: a ceremony with 3-of-5
/// escrow bootstraps Vault's intermediate and seals; two shares change
/// nothing; three revoke that intermediate (OpenSSL then rejects its leaf)
/// and sign a new one for a fresh mount, whose leaf passes; the CA stays
/// sealed and its manifest verifies with both recovery entries.
#[test]
fn lifecycle_vault_intermediate_revoked_and_replaced_by_a_quorum() {
    let s = Scratch::new();
    let server = bao::start_dev(&s);
    let addr = format!("http://127.0.0.1:{}", server.port);
    std::fs::write(s.join("token.txt"), "test-root-token\n").unwrap();
    let plan = format!(
        "[ca]\nname = \"Lifecycle Root\"\npermit = [\"internal\"]\ncrl_url = \"{URL}\"\n\n\
         [[group]]\nname = \"svc\"\nnames = [\"svc1.internal\"]\n\n\
         [vault]\naddr = \"{addr}\"\ntoken_file = \"token.txt\"\nrole = \"svc\"\nallowed_domains = [\"svc.internal\"]\n\n\
         [escrow]\nshares = \"3/5\"\ndir = \"shares\"\n"
    );
    std::fs::write(s.join("plan.toml"), plan).unwrap();
    ok(&s.uca(&["ceremony", "plan.toml", "--out", "out"]));
    let ledger = std::fs::read_to_string(s.join("out/ca/ledger.jsonl")).unwrap();
    let old_serial = ledger
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["profile"] == "intermediate")
        .map(|e| e["serial"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("no intermediate in {ledger}"));
    let env = [
        ("BAO_ADDR", addr.clone()),
        ("BAO_TOKEN", "test-root-token".to_string()),
    ];
    // A leaf of the old intermediate, and the intermediate's own CRL.
    let mount_crl = |mount: &str, file: &str| {
        let (okr, out, err) = bao::bao_cli(
            &["read", "-format=json", &format!("{mount}/cert/crl")],
            &env,
        );
        assert!(okr, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        std::fs::write(s.join(file), v["data"]["certificate"].as_str().unwrap()).unwrap();
    };
    let leaf = bao::issue_through_role(&env, None, "pki_int/issue/svc", "app.svc.internal");
    std::fs::write(
        s.join("old-leaf.pem"),
        leaf["data"]["certificate"].as_str().unwrap(),
    )
    .unwrap();
    std::fs::write(
        s.join("old.pem"),
        leaf["data"]["issuing_ca"].as_str().unwrap(),
    )
    .unwrap();
    mount_crl("pki_int", "old.crl");
    // The ceremony's Vault intermediate names the plan's CRL URL.
    let ext = openssl(
        &s,
        &[
            "x509",
            "-in",
            "old.pem",
            "-noout",
            "-ext",
            "crlDistributionPoints",
        ],
    );
    assert!(ext.contains(URL), "{ext}");
    let check = |int: &str, int_crl: &str, leaf: &str, root_crl: &str| {
        run(
            "openssl",
            &[
                "verify",
                "-crl_check_all",
                "-CAfile",
                "out/ca/ca.pem",
                "-untrusted",
                int,
                "-CRLfile",
                root_crl,
                "-CRLfile",
                int_crl,
                leaf,
            ],
            s.path(),
        )
    };
    let (good, out) = check("old.pem", "old.crl", "old-leaf.pem", "out/ca/crl/root.crl");
    assert!(good, "{out}");
    // Two shares: refused, nothing changes.
    let before = tree(&s);
    let two = [
        "--share",
        "shares/share-1-of-5.json",
        "--share",
        "shares/share-4-of-5.json",
    ];
    let mut args = vec!["recover", "--dir", "out/ca"];
    args.extend_from_slice(&two);
    args.extend_from_slice(&["revoke", &old_serial]);
    fails_with(&s.uca(&args), "2 valid shares given");
    assert_eq!(tree(&s), before);
    // Three: the Vault intermediate is revoked.
    let quorum = [
        "--share",
        "shares/share-1-of-5.json",
        "--share",
        "shares/share-4-of-5.json",
        "--share",
        "shares/share-5-of-5.json",
    ];
    let mut args = vec!["recover", "--dir", "out/ca"];
    args.extend_from_slice(&quorum);
    args.extend_from_slice(&["revoke", "old.pem"]);
    ok(&s.uca(&args));
    let revoked = "out/ca/crl/root-3.crl"; // root.crl 1, revoke-SERIAL 2, then 3
    let (good, out) = check("old.pem", "old.crl", "old-leaf.pem", revoked);
    assert!(!good && out.contains("certificate revoked"), "{out}");
    // A fresh mount gets a new intermediate from the quorum.
    let (oke, _, err) = bao::bao_cli(&["secrets", "enable", "-path=pki_new", "pki"], &env);
    assert!(oke, "{err}");
    let (okg, out, err) = bao::bao_cli(
        &[
            "write",
            "-format=json",
            "pki_new/intermediate/generate/internal",
            "common_name=Lifecycle Vault 2",
            "key_type=ec",
            "key_bits=256",
        ],
        &env,
    );
    assert!(okg, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    std::fs::write(s.join("new.csr"), v["data"]["csr"].as_str().unwrap()).unwrap();
    let mut args = vec!["recover", "--dir", "out/ca"];
    args.extend_from_slice(&quorum);
    args.extend_from_slice(&[
        "sign",
        "new.csr",
        "--intermediate",
        "--out",
        "new.pem",
        "--chain",
    ]);
    ok(&s.uca(&args));
    for cmd in [
        vec![
            "write",
            "pki_new/intermediate/set-signed",
            "certificate=@new.pem",
        ],
        vec![
            "write",
            "pki_new/roles/svc",
            "allowed_domains=svc.internal",
            "allow_subdomains=true",
            "max_ttl=1h",
        ],
    ] {
        let mut c = bao::bao_command();
        c.args(&cmd).current_dir(s.path());
        for (k, v) in &env {
            c.env(k, v);
        }
        let o = c.output().unwrap();
        assert!(
            o.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let leaf = bao::issue_through_role(&env, None, "pki_new/issue/svc", "app.svc.internal");
    std::fs::write(
        s.join("new-leaf.pem"),
        leaf["data"]["certificate"].as_str().unwrap(),
    )
    .unwrap();
    std::fs::write(
        s.join("new-int.pem"),
        leaf["data"]["issuing_ca"].as_str().unwrap(),
    )
    .unwrap();
    mount_crl("pki_new", "new.crl");
    let (good, out) = check("new-int.pem", "new.crl", "new-leaf.pem", revoked);
    assert!(good, "{out}");
    // Sealed as before, and the manifest verifies with both entries.
    fails_with(
        &s.uca(&["issue", "--dir", "out/ca", "--out", "more", "x.internal"]),
        "sealed",
    );
    let verified = stdout(&ok(&s.uca(&[
        "verify",
        "--manifest",
        "out/ca/manifest.json",
    ])));
    assert!(
        verified.contains("2 recovery entries signed by the root"),
        "{verified}"
    );
}

/// Java's PKIX validation with revocation on (tests/interop/java-crl),
/// compiled into the scratch directory. Returns a checker of
/// (chain, CRLs) -> (valid, output).
fn java_pkix(s: &Scratch) -> impl Fn(&str, &[&str]) -> (bool, String) + '_ {
    let source =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/java-crl/CrlCheck.java");
    let out = Command::new("javac")
        .args(["-Xlint:all", "-Werror", "-d", "java-crl"])
        .arg(source)
        .current_dir(s.path())
        .output()
        .expect("javac must be installed (test.sh installs openjdk-17-jdk-headless)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    move |chain, crls| {
        let out = Command::new("java")
            .args([
                "-Dcom.sun.security.enableCRLDP=false",
                "-cp",
                "java-crl",
                "CrlCheck",
                "ca/ca.pem",
                chain,
            ])
            .args(crls)
            .current_dir(s.path())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }
}

#[test]
fn java_pkix_with_revocation_rejects_a_leaf_under_a_revoked_intermediate_only() {
    let w = escrowed_world();
    let s = &w.s;
    for name in ["a", "b"] {
        let chain = [
            std::fs::read_to_string(s.join(&format!("leaf-{name}.pem"))).unwrap(),
            std::fs::read_to_string(s.join(&format!("{name}.pem"))).unwrap(),
        ]
        .concat();
        std::fs::write(s.join(&format!("chain-{name}.pem")), chain).unwrap();
    }
    let java = java_pkix(s);
    let (good, out) = java("chain-a.pem", &["ca/crl/root.crl", "a.crl"]);
    assert!(good, "{out}");
    let pre_signed = format!("ca/crl/revoke-{}.crl", w.serial_a);
    let (good, out) = java("chain-a.pem", &[&pre_signed, "a.crl"]);
    assert!(!good && out.contains("revoked"), "{out}");
    ok(&recover(s, &[3, 4, 5], &["revoke", "a.pem"]));
    let (good, out) = java("chain-a.pem", &["ca/crl/root-5.crl", "a.crl"]);
    assert!(!good && out.contains("revoked"), "{out}");
    let (good, out) = java("chain-b.pem", &["ca/crl/root-5.crl", "b.crl"]);
    assert!(good, "{out}");
}

/// `uca seal --escrow-shares` killed (SIGKILL, strace fault injection) at
/// every file-system call: each time, either the operator's key and
/// passphrase are intact and the CA still issues, or the seal is recorded;
/// run again, the seal completes, and a quorum of the shares it left
/// recovers the key.
#[test]
fn a_kill_at_any_system_call_of_an_escrowed_seal_is_recoverable() {
    const CALLS: &str = "openat,write,fsync,fdatasync,link,linkat,rename,renameat,renameat2,unlink,unlinkat,chmod,fchmod,fchmodat,mkdir,mkdirat,flock,ftruncate";
    let template = Scratch::new();
    template.init_ca_generating_passphrase();
    ok(&template.uca(&["issue", "--dir", "ca", "--out", "certs", "web1"]));
    let seal: &[&str] = &[
        "seal",
        "--dir",
        "ca",
        "--escrow-shares",
        "2/3",
        "--escrow-dir",
        "shares",
        "--force",
    ];
    let strace = |dir: &Path, extra: &[&str]| {
        Command::new("strace")
            .args(["-f", "-qq", "-e"])
            .args(extra)
            .arg("--")
            .arg(common::uca_bin())
            .args(seal)
            .current_dir(dir)
            .env_remove("UCA_PASSPHRASE")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("strace must be installed (test.sh installs it)")
    };
    let copy = |to: &Path| {
        let status = Command::new("cp")
            .arg("-a")
            .arg(template.path())
            .arg(to)
            .status()
            .unwrap();
        assert!(status.success());
    };
    // How often an undisturbed escrowed seal makes each call.
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("t");
    copy(&dir);
    let log = work.path().join("calls.log");
    let out = strace(
        &dir,
        &[&format!("trace={CALLS}"), "-o", log.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut points: Vec<(String, usize)> = Vec::new();
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for line in std::fs::read_to_string(&log).unwrap().lines() {
        let name = line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .split('(')
            .next()
            .unwrap_or("");
        if CALLS.split(',').any(|c| c == name) {
            *counts.entry(name.to_string()).or_insert(0) += 1;
        }
    }
    for (call, n) in &counts {
        points.extend((1..=*n).map(|k| (call.clone(), k)));
    }
    assert!(points.len() > 20, "{counts:?}");
    let failures = std::sync::Mutex::new(Vec::new());
    let outcomes = std::sync::Mutex::new([0usize; 2]);
    std::thread::scope(|scope| {
        for part in points.chunks(points.len().div_ceil(2)) {
            let (failures, outcomes, copy, strace) = (&failures, &outcomes, &copy, &strace);
            scope.spawn(move || {
                for (call, k) in part {
                    let work = tempfile::tempdir().unwrap();
                    let dir = work.path().join("t");
                    copy(&dir);
                    let at = format!("{call}#{k}");
                    let killed = strace(
                        &dir,
                        &[
                            call,
                            "-e",
                            &format!("inject={call}:signal=SIGKILL:when={k}"),
                        ],
                    );
                    if killed.status.success() {
                        failures.lock().unwrap().push(format!("{at}: not killed"));
                        continue;
                    }
                    let ca = dir.join("ca");
                    let recorded = ca.join("sealed.json").exists();
                    let completed = std::fs::read_to_string(ca.join("sealed.json"))
                        .is_ok_and(|r| r.contains("\"state\": \"sealed\""));
                    let intact = ca.join("private/passphrase").exists()
                        && ca.join("private/ca-key.pem").exists();
                    if !recorded && !intact {
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("{at}: a secret went before the seal was recorded"));
                        continue;
                    }
                    outcomes.lock().unwrap()[usize::from(recorded)] += 1;
                    let again = strace(&dir, &["trace=none"]);
                    let run = |args: &[&str]| {
                        Command::new(common::uca_bin())
                            .args(args)
                            .current_dir(&dir)
                            .output()
                            .unwrap()
                    };
                    let recovered = run(&[
                        "recover",
                        "--dir",
                        "ca",
                        "--share",
                        "shares/share-1-of-3.json",
                        "--share",
                        "shares/share-3-of-3.json",
                        "revoke",
                        "certs/web1/cert.pem",
                    ]);
                    let stderr = String::from_utf8_lossy(&recovered.stderr).into_owned();
                    let verified = run(&["verify", "--manifest", "ca/manifest.json"]);
                    // A seal killed after its last write is complete already.
                    if !(again.status.success() || completed)
                        || ca.join("private/ca-key.pem").exists()
                        || ca.join("private/passphrase").exists()
                        || !recovered.status.success()
                        || !verified.status.success()
                    {
                        failures.lock().unwrap().push(format!(
                            "{at}: not completed ({}; {stderr})",
                            String::from_utf8_lossy(&again.stderr)
                        ));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} points:\n{}",
        failures.len(),
        points.len(),
        failures.join("\n")
    );
    let outcomes = outcomes.into_inner().unwrap();
    assert!(outcomes[0] > 0 && outcomes[1] > 0, "{outcomes:?}");
}
