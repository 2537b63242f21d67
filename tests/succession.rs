//! Succession: a root sealed with escrow cross-signs its successor with a
//! quorum's shares (`uca recover cross-sign`). A client that trusts only
//! the old root then validates a leaf under the new root through the
//! cross-certificate; clients that trust the new root, or both, validate it
//! directly; and the act is in the old root's signed recovery log.

mod common;

use common::*;

fn openssl_verify(s: &Scratch, args: &[&str]) -> (bool, String) {
    let mut all = vec!["verify"];
    all.extend_from_slice(args);
    run("openssl", &all, s.path())
}

/// `old/`: "Old Root" (constrained to `internal`), sealed with 2-of-3
/// escrow, its shares in `shares/`.
fn old_root_in_escrow(s: &Scratch) {
    let pass = s.pass_file();
    let pass = pass.to_str().unwrap();
    ok(&s.uca(&[
        "init",
        "--dir",
        "old",
        "--name",
        "Old Root",
        "--permit",
        "internal",
        "--passphrase-file",
        pass,
    ]));
    ok(&s.uca(&[
        "seal",
        "--dir",
        "old",
        "--escrow-shares",
        "2/3",
        "--escrow-dir",
        "shares",
        "--passphrase-file",
        pass,
    ]));
}

/// `new/`: "New Root", constrained to `internal` too, open.
fn new_root(s: &Scratch) {
    let pass = s.pass_file();
    let pass = pass.to_str().unwrap();
    ok(&s.uca(&[
        "init",
        "--dir",
        "new",
        "--name",
        "New Root",
        "--permit",
        "internal",
        "--passphrase-file",
        pass,
    ]));
}

#[test]
fn a_quorum_cross_signs_the_successor_and_old_clients_trust_its_leaves() {
    let s = Scratch::new();
    let pass = s.pass_file();
    let pass = pass.to_str().unwrap();
    old_root_in_escrow(&s);
    new_root(&s);
    ok(&s.uca(&[
        "issue",
        "--dir",
        "new",
        "--out",
        "certs",
        "--passphrase-file",
        pass,
        "web.internal",
    ]));
    let leaf = "certs/web.internal/cert.pem";
    // Before: a client of the old root only does not trust the new leaf.
    assert!(!openssl_verify(&s, &["-CAfile", "old/ca.pem", leaf]).0);

    let cross = |extra: &[&str]| {
        let mut args = vec![
            "recover",
            "--dir",
            "old",
            "--share",
            "shares/share-1-of-3.json",
            "--share",
            "shares/share-3-of-3.json",
            "cross-sign",
        ];
        args.extend_from_slice(extra);
        s.uca(&args)
    };
    // One share is not a quorum; the old root's own certificate is no successor.
    let before = s.files();
    fails_with(
        &s.uca(&[
            "recover",
            "--dir",
            "old",
            "--share",
            "shares/share-1-of-3.json",
            "cross-sign",
            "new/ca.pem",
            "--out",
            "cross.pem",
        ]),
        "needs 2 of its 3",
    );
    fails_with(
        &cross(&["old/ca.pem", "--out", "cross.pem"]),
        "this CA's own certificate",
    );
    fails_with(
        &cross(&[leaf, "--out", "cross.pem"]),
        "not a self-signed root",
    );
    assert_eq!(s.files(), before, "a refused cross-sign changed something");

    let out = stdout(&ok(&cross(&["new/ca.pem", "--out", "cross.pem"])));
    assert!(out.contains("cross-signed CN=New Root"), "{out}");

    // Old clients: the leaf's chain plus the cross-certificate.
    let (good, out) = openssl_verify(
        &s,
        &["-CAfile", "old/ca.pem", "-untrusted", "cross.pem", leaf],
    );
    assert!(good, "old-root client: {out}");
    let chain = [
        std::fs::read(s.join(leaf)).unwrap(),
        std::fs::read(s.join("cross.pem")).unwrap(),
    ]
    .concat();
    std::fs::write(s.join("served.pem"), chain).unwrap();
    let out = stdout(&ok(&s.uca(&["verify", "--ca", "old/ca.pem", "served.pem"])));
    assert!(
        out.contains("CN=New Root <- CN=Old Root"),
        "rustls through the cross-certificate: {out}"
    );
    // New clients, and a bundle of both, directly.
    assert!(openssl_verify(&s, &["-CAfile", "new/ca.pem", leaf]).0);
    ok(&s.uca(&[
        "trust",
        "bundle",
        "old/ca.pem",
        "new/ca.pem",
        "--format",
        "pem",
        "--out",
        "both.pem",
    ]));
    assert!(openssl_verify(&s, &["-CAfile", "both.pem", leaf]).0);
    // The cross-certificate carries the successor's key identifier and the
    // old root's constraints hold below it.
    let (good, out) = run(
        "openssl",
        &[
            "x509",
            "-in",
            "cross.pem",
            "-noout",
            "-ext",
            "subjectKeyIdentifier,nameConstraints",
        ],
        s.path(),
    );
    assert!(good && out.contains("DNS:internal"), "{out}");
    let ski = |file: &str| {
        let (good, out) = run(
            "openssl",
            &[
                "x509",
                "-in",
                file,
                "-noout",
                "-ext",
                "subjectKeyIdentifier",
            ],
            s.path(),
        );
        assert!(good, "{out}");
        out.lines().last().unwrap_or("").trim().to_string()
    };
    assert_eq!(ski("cross.pem"), ski("new/ca.pem"));
    // The act is recorded and verifies with the old root's manifest.
    let out = stdout(&ok(&s.uca(&["verify", "--manifest", "old/manifest.json"])));
    assert!(out.contains("1 recovery entry"), "{out}");
}

/// Without `--share`, the custodians are asked one at a time at the
/// terminal (here a pseudo-terminal made by `script`): one types the path
/// of their share file, the next pastes the share itself. Without a
/// terminal the command says how to give the shares, and changes nothing.
#[test]
fn custodians_may_enter_their_shares_at_the_terminal_one_at_a_time() {
    let s = Scratch::new();
    old_root_in_escrow(&s);
    new_root(&s);
    let before = s.files();
    fails_with(
        &s.uca(&[
            "recover",
            "--dir",
            "old",
            "cross-sign",
            "new/ca.pem",
            "--out",
            "cross.pem",
        ]),
        "no terminal to ask the custodians at",
    );
    assert_eq!(s.files(), before);

    let pasted: String = std::fs::read_to_string(s.join("shares/share-2-of-3.json"))
        .unwrap()
        .lines()
        .collect();
    let command = format!(
        "{} recover --dir old cross-sign new/ca.pem --out cross.pem",
        uca_bin().display()
    );
    let mut child = std::process::Command::new("timeout")
        .args(["60", "script", "-qec", &command, "/dev/null"])
        .current_dir(s.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("script (util-linux)");
    use std::io::Write;
    write!(
        child.stdin.take().unwrap(),
        "shares/share-1-of-3.json\n{pasted}\n"
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("custodian 2 of 2"), "{text}");
    assert!(text.contains("cross-signed CN=New Root"), "{text}");
    let (good, out) = openssl_verify(&s, &["-CAfile", "old/ca.pem", "new/ca.pem"]);
    assert!(
        !good,
        "the new root alone must not verify to the old: {out}"
    );
    let (good, out) = openssl_verify(
        &s,
        &["-CAfile", "old/ca.pem", "-partial_chain", "cross.pem"],
    );
    assert!(good, "{out}");
}

/// `uca ceremony PLAN --successor-of OLD --share ...`: the new root is made
/// and sealed as usual, the old root's quorum cross-signs it, and
/// OUT/succession holds the cross-certificate and the old+new bundles.
/// Clients that trust only the old root (with the cross-certificate), only
/// the new root (also once the old one is gone), or both, all verify a leaf
/// of the new root: OpenSSL, rustls (uca verify), Go, Java and Python.
#[test]
fn a_successor_ceremony_is_trusted_by_old_new_and_bundle_clients_everywhere() {
    let s = Scratch::new();
    old_root_in_escrow(&s);
    std::fs::write(
        s.join("plan.toml"),
        "[ca]\nname = \"New Root\"\npermit = [\"internal\"]\n\n[[group]]\nname = \"web\"\nnames = [\"web.internal\"]\nprofile = \"server\"\n",
    )
    .unwrap();
    // A plan wider than the old root cannot succeed it: refused before anything is made.
    std::fs::write(s.join("wide.toml"), "[ca]\nname = \"Wide Root\"\npermit = [\"example.com\"]\n\n[[group]]\nname = \"w\"\nnames = [\"a.example.com\"]\n").unwrap();
    fails_with(
        &s.uca(&[
            "ceremony",
            "wide.toml",
            "--out",
            "wide",
            "--successor-of",
            "old",
            "--share",
            "shares/share-1-of-3.json",
            "--share",
            "shares/share-2-of-3.json",
        ]),
        "within the old root's",
    );
    assert!(!s.join("wide").exists());
    let out = stdout(&ok(&s.uca(&[
        "ceremony",
        "plan.toml",
        "--out",
        "new",
        "--successor-of",
        "old",
        "--share",
        "shares/share-1-of-3.json",
        "--share",
        "shares/share-2-of-3.json",
    ])));
    assert!(
        out.contains("migration, in order:") && out.contains("trust uninstall"),
        "{out}"
    );
    let leaf = "new/certs/web.internal/cert.pem";
    let served = [
        std::fs::read(s.join(leaf)).unwrap(),
        std::fs::read(s.join("new/succession/cross.pem")).unwrap(),
    ]
    .concat();
    std::fs::write(s.join("served.pem"), served).unwrap();
    let bundle = "new/succession/trust-bundle.pem";
    // OpenSSL.
    for (ca, chain) in [
        ("old/ca.pem", "served.pem"),
        ("new/ca/ca.pem", leaf),
        (bundle, leaf),
        (bundle, "served.pem"),
    ] {
        let (good, o) = openssl_verify(&s, &["-CAfile", ca, "-untrusted", chain, leaf]);
        assert!(good, "OpenSSL trusting {ca} with {chain}: {o}");
    }
    // rustls.
    for (ca, chain) in [
        ("old/ca.pem", "served.pem"),
        ("new/ca/ca.pem", "served.pem"),
        (bundle, "served.pem"),
    ] {
        let o = stdout(&ok(&s.uca(&[
            "verify",
            "--ca",
            ca,
            "--name",
            "web.internal",
            chain,
        ])));
        assert!(o.starts_with("OK:"), "rustls trusting {ca}: {o}");
    }
    // Go, Java and Python.
    let key = "new/certs/web.internal/key.pem";
    let jobs = [
        ("old-only", "old/ca.pem", "served.pem", key),
        ("new-only", "new/ca/ca.pem", "served.pem", key),
        ("new-only-bare", "new/ca/ca.pem", leaf, key),
        ("bundle", bundle, "served.pem", key),
    ];
    for (what, good, line) in interop_verdicts(&s, "web.internal", &jobs) {
        // Java's CertPathValidator checks the path it is given rather than
        // building one, so leaf + cross-certificate cannot end at the new
        // root; a client of the new root is given the bare chain
        // ("new-only-bare"), as once the old root is gone.
        if what == "java new-only" {
            assert!(!good, "{what}: {line}");
            continue;
        }
        assert!(good, "{what}: {line}");
    }
    // The old root recorded the act.
    let o = stdout(&ok(&s.uca(&["verify", "--manifest", "old/manifest.json"])));
    assert!(o.contains("1 recovery entry"), "{o}");
}
