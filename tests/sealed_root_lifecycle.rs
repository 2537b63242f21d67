//! The life of a CA hierarchy around its seal, as a user of another tool
//! meets it: an issuing CA made under a fresh root, and the CRLs a seal
//! leaves for every CA uca makes (a root, a CA signed by another root, a
//! two-tier issuing CA), whatever the parent's key type.

mod common;

use common::*;

fn openssl(s: &Scratch, args: &[&str]) -> (bool, String) {
    run("openssl", args, s.path())
}

/// `openssl crl -verify` of a DER CRL against the CA file `ca` (the CA's
/// certificate and, for an intermediate, its chain).
fn assert_crl_verifies(s: &Scratch, crl: &str, ca: &str) {
    let (good, out) = openssl(
        s,
        &["crl", "-inform", "DER", "-in", crl, "-CAfile", ca, "-noout"],
    );
    assert!(
        good && out.contains("verify OK"),
        "{crl} does not verify with {ca}: {out}"
    );
}

/// A CA whose key type differs from its parent's signs CRLs that name its
/// own key's algorithm: an issuing CA on P-384 or RSA under a P-256 root.
#[test]
fn an_intermediates_crls_verify_when_its_key_type_differs_from_its_roots() {
    for key in ["ec-p384", "rsa-2048", "ed25519"] {
        let s = Scratch::new();
        let pass = s.pass_file();
        let pass = pass.to_str().unwrap();
        ok(&s.uca(&[
            "init",
            "--dir",
            "root",
            "--name",
            "Acme Root",
            "--permit",
            "internal",
            "--passphrase-file",
            pass,
        ]));
        ok(&s.uca(&[
            "init",
            "--dir",
            "int",
            "--name",
            "Acme Issuing CA",
            "--key",
            key,
            "--intermediate-of",
            "root",
            "--root-passphrase-file",
            pass,
            "--passphrase-file",
            pass,
        ]));
        ok(&s.uca(&["seal", "--dir", "root", "--passphrase-file", pass]));
        ok(&s.uca(&["seal", "--dir", "int", "--passphrase-file", pass]));
        assert_crl_verifies(&s, "int/crl/root.crl", "int/ca.pem");
        let revocations: Vec<String> = std::fs::read_dir(s.join("root/crl"))
            .unwrap()
            .map(|e| format!("root/crl/{}", e.unwrap().file_name().to_string_lossy()))
            .collect();
        assert_eq!(revocations.len(), 2, "{revocations:?}");
        for crl in &revocations {
            assert_crl_verifies(&s, crl, "root/ca.pem");
        }
    }
}

/// A CA that an RSA enterprise root (made with OpenSSL) signed seals with
/// CRLs OpenSSL verifies.
#[test]
fn a_subordinate_of_an_rsa_root_seals_with_crls_that_verify() {
    let s = Scratch::new();
    let pass = s.pass_file();
    let pass = pass.to_str().unwrap();
    let (good, out) = openssl(
        &s,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "root.key",
            "-out",
            "root.pem",
            "-subj",
            "/CN=Enterprise Root",
            "-days",
            "3650",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    assert!(good, "{out}");
    ok(&s.uca(&[
        "init",
        "--dir",
        "sub",
        "--name",
        "Team CA",
        "--csr-out",
        "sub.csr",
        "--passphrase-file",
        pass,
    ]));
    std::fs::write(
        s.join("ext.cnf"),
        "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
    )
    .unwrap();
    let (good, out) = openssl(
        &s,
        &[
            "x509",
            "-req",
            "-in",
            "sub.csr",
            "-CA",
            "root.pem",
            "-CAkey",
            "root.key",
            "-CAcreateserial",
            "-days",
            "1000",
            "-extfile",
            "ext.cnf",
            "-out",
            "sub.pem",
        ],
    );
    assert!(good, "{out}");
    let chain = [
        std::fs::read_to_string(s.join("sub.pem")).unwrap(),
        std::fs::read_to_string(s.join("root.pem")).unwrap(),
    ]
    .concat();
    std::fs::write(s.join("chain.pem"), chain).unwrap();
    ok(&s.uca(&["init", "--dir", "sub", "--import-cert", "chain.pem"]));
    ok(&s.uca(&["seal", "--dir", "sub", "--passphrase-file", pass]));
    assert_crl_verifies(&s, "sub/crl/root.crl", "sub/ca.pem");
    ok(&s.uca(&["verify", "--manifest", "sub/manifest.json"]));
}

fn not_after(s: &Scratch, cert: &str) -> String {
    let (good, out) = openssl(s, &["x509", "-in", cert, "-noout", "-enddate"]);
    assert!(good, "{out}");
    out.trim().to_string()
}

/// `init --intermediate-of` without `--days` right after the root's own
/// `init` (a second or more later): the intermediate ends when the root
/// does, instead of being refused for outliving it by that second.
#[test]
fn an_intermediate_of_a_fresh_root_needs_no_days_and_ends_with_the_root() {
    let s = Scratch::new();
    let pass = s.pass_file();
    let pass = pass.to_str().unwrap();
    ok(&s.uca(&[
        "init",
        "--dir",
        "root",
        "--name",
        "Acme Root",
        "--passphrase-file",
        pass,
    ]));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    ok(&s.uca(&[
        "init",
        "--dir",
        "int",
        "--name",
        "Acme Issuing CA",
        "--intermediate-of",
        "root",
        "--root-passphrase-file",
        pass,
        "--passphrase-file",
        pass,
    ]));
    assert_eq!(not_after(&s, "int/ca.pem"), not_after(&s, "root/ca.pem"));
    // An explicit lifetime is still checked against the root.
    let err = fails_with(
        &s.uca(&[
            "init",
            "--dir",
            "int2",
            "--name",
            "Acme Issuing CA 2",
            "--intermediate-of",
            "root",
            "--days",
            "3650",
            "--root-passphrase-file",
            pass,
            "--passphrase-file",
            pass,
        ]),
        "would outlive the CA",
    );
    assert!(err.contains("--days '3650'"), "{err}");
    assert!(!s.join("int2").exists());
}

/// A root sealed with 2-of-3 escrow (`shares/`) that signed intermediate
/// `a.pem` while open.
fn escrowed_root(s: &Scratch) {
    let pass = s.pass_file();
    let pass = pass.to_str().unwrap();
    s.init_ca(&[]);
    let csr = openssl_csr(s, "a", "/CN=Intermediate A", &[]);
    ok(&s.uca(&[
        "sign",
        "--dir",
        "ca",
        &csr,
        "--intermediate",
        "--out",
        "a.pem",
        "--passphrase-file",
        pass,
    ]));
    ok(&s.uca(&[
        "seal",
        "--dir",
        "ca",
        "--passphrase-file",
        pass,
        "--escrow-shares",
        "2/3",
        "--escrow-dir",
        "shares",
    ]));
}

fn recover(s: &Scratch, operation: &[&str]) -> String {
    let mut args = vec![
        "recover",
        "--dir",
        "ca",
        "--share",
        "shares/share-1-of-3.json",
        "--share",
        "shares/share-3-of-3.json",
    ];
    args.extend_from_slice(operation);
    stdout(&ok(&s.uca(&args)))
}

/// The entries chain from the manifest, so one removed from the middle
/// breaks the chain; one removed from the end, or the whole log, left
/// nothing to break. What the removed acts left (a ledger entry signed
/// after the seal, a CRL the manifest does not list) names them.
#[test]
fn a_recovery_log_cut_short_or_removed_fails_verification() {
    let s = Scratch::new();
    escrowed_root(&s);
    let csr = openssl_csr(&s, "b", "/CN=Intermediate B", &[]);
    recover(&s, &["revoke", "a.pem"]);
    let out = recover(&s, &["sign", &csr, "--intermediate", "--out", "b.pem"]);
    let verified = stdout(&ok(&s.uca(&["verify", "--manifest", "ca/manifest.json"])));
    // The head the recovery printed is the one verification ends at.
    let head = out
        .split("recovery entry 2, SHA-256 ")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_else(|| panic!("no head in {out}"));
    assert!(
        verified.contains(&format!("(the last: SHA-256 {head})")),
        "{verified}"
    );
    let log = std::fs::read_to_string(s.join("ca/recoveries.jsonl")).unwrap();
    let first = log.lines().next().unwrap();

    std::fs::write(s.join("ca/recoveries.jsonl"), format!("{first}\n")).unwrap();
    let err = fails_with(
        &s.uca(&["verify", "--manifest", "ca/manifest.json"]),
        "was signed after the seal",
    );
    assert!(err.contains("CN=Intermediate B"), "{err}");
    assert!(err.contains("cut short or removed"), "{err}");

    std::fs::remove_file(s.join("ca/recoveries.jsonl")).unwrap();
    let err = fails_with(
        &s.uca(&["verify", "--manifest", "ca/manifest.json"]),
        "cut short or removed",
    );
    assert!(err.contains("CN=Intermediate B"), "{err}");
    assert!(
        err.contains("crl/root-3.crl: a CRL of the root that the manifest does not list"),
        "{err}"
    );

    std::fs::write(s.join("ca/recoveries.jsonl"), log).unwrap();
    ok(&s.uca(&["verify", "--manifest", "ca/manifest.json"]));
}

/// Runs `uca ARGS` on a terminal (script), typing `lines` one at a time,
/// each once uca has asked for it (its prompt contains "custodian").
/// Returns the exit status and everything the terminal showed.
fn at_terminal(s: &Scratch, args: &str, lines: &[&str]) -> (bool, String) {
    use std::io::{Read, Write};
    let command = format!("{} {args}", uca_bin().display());
    let mut child = std::process::Command::new("timeout")
        .args(["60", "script", "-qec", &command, "/dev/null"])
        .current_dir(s.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("script (util-linux)");
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut text = String::new();
    let mut stdin = child.stdin.take().unwrap();
    for (i, line) in lines.iter().enumerate() {
        while text.matches("custodian").count() <= i {
            let chunk = rx
                .recv_timeout(std::time::Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("no prompt {} in {text}", i + 1));
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
        // As a person would: after uca has turned echo off, which it
        // does right after printing the prompt.
        std::thread::sleep(std::time::Duration::from_millis(300));
        writeln!(stdin, "{line}").unwrap();
    }
    drop(stdin);
    let status = child.wait().unwrap();
    reader.join().unwrap();
    text.extend(
        rx.try_iter()
            .map(|c| String::from_utf8_lossy(&c).into_owned()),
    );
    (status.success(), text)
}

/// A custodian who types the bare share (its hex) where a path or a share
/// file's text is asked for is refused without it being shown.
#[test]
fn a_bare_share_typed_at_the_terminal_is_refused_unshown() {
    let s = Scratch::new();
    escrowed_root(&s);
    let before = s.files();
    let file = std::fs::read_to_string(s.join("shares/share-2-of-3.json")).unwrap();
    let share: serde_json::Value = serde_json::from_str(&file).unwrap();
    let hex = share["share"].as_str().unwrap();
    let (good, text) = at_terminal(&s, "recover --dir ca revoke a.pem", &[hex]);
    assert!(!good, "{text}");
    assert!(
        text.contains("custodian 1 entered neither the path of a share file"),
        "{text}"
    );
    assert!(!text.contains(hex), "the share was shown: {text}");
    assert_eq!(s.files(), before);
}

/// At the terminal a custodian may paste the share file as it is printed,
/// over its several lines; nothing of it is echoed.
#[test]
fn a_custodian_pastes_a_share_file_as_printed_at_the_terminal() {
    let s = Scratch::new();
    escrowed_root(&s);
    let pasted = std::fs::read_to_string(s.join("shares/share-3-of-3.json")).unwrap();
    assert!(pasted.lines().count() > 5, "{pasted}");
    let (good, text) = at_terminal(
        &s,
        "recover --dir ca revoke a.pem",
        &["shares/share-1-of-3.json", pasted.trim_end()],
    );
    assert!(good, "{text}");
    assert!(text.contains("custodian 2 of 2"), "{text}");
    assert!(text.contains("signed CRL number 3"), "{text}");
    let share: serde_json::Value = serde_json::from_str(&pasted).unwrap();
    let secret = share["share"].as_str().unwrap();
    assert!(!text.contains(secret), "the share was echoed: {text}");
    assert!(
        !text.contains("share-1-of-3.json"),
        "the path was echoed: {text}"
    );
    ok(&s.uca(&["verify", "--manifest", "ca/manifest.json"]));
}

/// A successor ceremony writes the old+new roots in the formats of `uca
/// trust bundle` that need no secret: PEM, a ConfigMap and a trust-manager
/// Bundle, each exactly what `uca trust bundle` writes for the two roots,
/// and names the command for a Java truststore.
#[test]
fn a_successor_ceremony_writes_the_bundle_in_the_trust_bundle_formats() {
    let s = Scratch::new();
    escrowed_root(&s);
    std::fs::write(
        s.join("plan.toml"),
        "[ca]\nname = \"New Root\"\n\n[[group]]\nname = \"web\"\nnames = [\"web.internal\"]\n",
    )
    .unwrap();
    let out = stdout(&ok(&s.uca(&[
        "ceremony",
        "plan.toml",
        "--out",
        "new",
        "--successor-of",
        "ca",
        "--share",
        "shares/share-1-of-3.json",
        "--share",
        "shares/share-2-of-3.json",
    ])));
    for (format, file) in [
        ("pem", "trust-bundle.pem"),
        ("configmap", "trust-bundle-configmap.yaml"),
        ("trust-manager", "trust-bundle-trust-manager.yaml"),
        ("p12", "trust-bundle.p12"),
    ] {
        let made = format!("made-{format}");
        let mut args = vec![
            "trust",
            "bundle",
            "ca/ca.pem",
            "new/ca/ca.pem",
            "--format",
            format,
            "--out",
            &made,
        ];
        if format == "p12" {
            args.push("--no-password");
        }
        ok(&s.uca(&args));
        let written = format!("new/succession/{file}");
        assert!(out.contains(&written), "{out}");
        assert_eq!(
            std::fs::read(s.join(&written)).unwrap(),
            std::fs::read(s.join(&made)).unwrap(),
            "{written}"
        );
    }
    // Java lists both roots of the truststore without a password.
    let listed = std::process::Command::new("keytool")
        .args([
            "-list",
            "-storetype",
            "PKCS12",
            "-keystore",
            "new/succession/trust-bundle.p12",
        ])
        .current_dir(s.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(listed.status.success(), "{text}");
    assert_eq!(text.matches("trustedCertEntry").count(), 2, "{text}");
}

/// The renewal command `uca check --plan` prints runs as printed once the
/// CA directory is filled in, and renews what check marked RENEW.
#[test]
fn the_renewal_command_check_prints_runs_as_printed() {
    let s = Scratch::new();
    let pass = s.pass_file();
    let pass = pass.to_str().unwrap();
    s.init_ca(&["--permit", "internal"]);
    std::fs::write(
        s.join("plan.toml"),
        "[[group]]\nname = \"short\"\nnames = [\"a.internal\"]\ndays = 10\n\n[[group]]\nname = \"long\"\nnames = [\"b.internal\"]\ndays = 200\n",
    )
    .unwrap();
    ok(&s.uca(&[
        "issue",
        "--dir",
        "ca",
        "--out",
        "certs",
        "--plan",
        "plan.toml",
        "--passphrase-file",
        pass,
    ]));
    let listing = stdout(&s.uca(&["check", "certs", "--plan", "plan.toml", "--within", "30d"]));
    let first = listing.lines().next().unwrap();
    assert!(first.starts_with("RENEW: 1 certificate "), "{listing}");
    let command = first
        .split_once(": uca ")
        .and_then(|(_, c)| c.split(" (").next())
        .unwrap_or_else(|| panic!("no command in {first}"));
    let args: Vec<String> = command
        .split_whitespace()
        .map(|w| if w == "CA_DIR" { "ca".into() } else { w.into() })
        .chain(["--passphrase-file".into(), pass.into()])
        .collect();
    assert_eq!(args[0], "issue", "{command}");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let read = |n: &str| std::fs::read(s.join(&format!("certs/{n}/cert.pem"))).unwrap();
    let (a, b) = (read("a.internal"), read("b.internal"));
    let out = stdout(&ok(&s.uca(&args)));
    assert!(out.contains("issued 1 certificate"), "{out}");
    assert_ne!(read("a.internal"), a);
    assert_eq!(read("b.internal"), b);
}
