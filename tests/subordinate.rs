//! A CA below another root: `uca init --csr-out` leaves a pending CA and a
//! CSR, the parent signs it (OpenSSL as an enterprise root, or another
//! uca), and `uca init --import-cert` completes the CA only with the
//! pending key's CA certificate and a chain that verifies up to a root.
//! The completed CA issues leaves that verify to that root.

#[path = "common/bao.rs"]
mod bao;
mod common;

use bao::*;
use common::*;

fn openssl(s: &Scratch, args: &[&str]) -> String {
    let (good, out) = run("openssl", args, s.path());
    assert!(good, "openssl {args:?}: {out}");
    out
}

/// An enterprise root made by OpenSSL: root.pem, root.key.
fn openssl_root(s: &Scratch) {
    openssl(
        s,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
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
}

/// OpenSSL signs `csr` as a CA constrained to `internal` (or as `ext` says).
fn openssl_sign(s: &Scratch, csr: &str, out: &str, ext: &str) {
    std::fs::write(s.join("ext.cnf"), ext).unwrap();
    openssl(
        s,
        &[
            "x509",
            "-req",
            "-in",
            csr,
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
            out,
        ],
    );
}

const CA_EXT: &str = "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nnameConstraints=critical,permitted;DNS:internal\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n";

fn pass(s: &Scratch) -> String {
    s.pass_file().to_str().unwrap().to_string()
}

fn request(s: &Scratch, dir: &str, name: &str, csr: &str) {
    let p = pass(s);
    let out = ok(&s.uca(&[
        "init",
        "--dir",
        dir,
        "--name",
        name,
        "--csr-out",
        csr,
        "--passphrase-file",
        &p,
    ]));
    assert!(stdout(&out).contains("--import-cert"), "{}", stdout(&out));
}

fn issue_and_verify(s: &Scratch, dir: &str, root: &str, name: &str) {
    let p = pass(s);
    ok(&s.uca(&[
        "issue",
        "--dir",
        dir,
        "--out",
        "certs",
        "--passphrase-file",
        &p,
        name,
    ]));
    let leaf = format!("certs/{name}/cert.pem");
    let chain = format!("certs/{name}/chain.pem");
    let out = openssl(s, &["verify", "-CAfile", root, "-untrusted", &chain, &leaf]);
    assert!(out.contains(": OK"), "{out}");
    // Peers get the root to trust; the leaf's chain carries the CA.
    assert_eq!(
        std::fs::read(s.join(&format!("certs/{name}/ca.pem"))).unwrap(),
        std::fs::read(s.join(root)).unwrap()
    );
    let out = stdout(&ok(&s.uca(&["verify", "--ca", root, &chain])));
    assert!(out.starts_with("OK:"), "{out}");
}

#[test]
fn a_ca_signed_by_an_openssl_root_issues_leaves_that_verify_to_that_root() {
    let s = Scratch::new();
    openssl_root(&s);
    request(&s, "sub", "Team Sub CA", "sub.csr");
    // Pending: nothing issues yet, and the message says what to do.
    let p = pass(&s);
    let o = s.uca(&[
        "issue",
        "--dir",
        "sub",
        "--out",
        "x",
        "--passphrase-file",
        &p,
        "a.internal",
    ]);
    fails_with(&o, "waits for its certificate");
    openssl_sign(&s, "sub.csr", "sub.pem", CA_EXT);
    std::fs::write(
        s.join("chain.pem"),
        [
            std::fs::read(s.join("sub.pem")).unwrap(),
            std::fs::read(s.join("root.pem")).unwrap(),
        ]
        .concat(),
    )
    .unwrap();
    let out = stdout(&ok(&s.uca(&[
        "init",
        "--dir",
        "sub",
        "--import-cert",
        "chain.pem",
    ])));
    assert!(out.contains("below the root 'Enterprise Root'"), "{out}");
    assert!(!s.join("sub/pending.csr").exists());
    issue_and_verify(&s, "sub", "root.pem", "web.internal");
    // The constraints the root put in the certificate hold.
    let o = s.uca(&[
        "issue",
        "--dir",
        "sub",
        "--out",
        "certs",
        "--passphrase-file",
        &p,
        "web.example.com",
    ]);
    fails_with(&o, "outside the CA's name constraints");
    // A second import never replaces the certificate.
    fails_with(
        &s.uca(&["init", "--dir", "sub", "--import-cert", "chain.pem"]),
        "already has its certificate",
    );
}

#[test]
fn a_ca_signed_by_another_uca_root_issues_and_seals() {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal"]);
    request(&s, "sub", "Sub Two", "sub.csr");
    let p = pass(&s);
    ok(&s.uca(&[
        "sign",
        "--dir",
        "ca",
        "sub.csr",
        "--intermediate",
        "--out",
        "sub.pem",
        "--passphrase-file",
        &p,
    ]));
    std::fs::write(
        s.join("chain.pem"),
        [
            std::fs::read(s.join("sub.pem")).unwrap(),
            std::fs::read(s.join("ca/ca.pem")).unwrap(),
        ]
        .concat(),
    )
    .unwrap();
    ok(&s.uca(&["init", "--dir", "sub", "--import-cert", "chain.pem"]));
    issue_and_verify(&s, "sub", "ca/ca.pem", "api.internal");
    ok(&s.uca(&["seal", "--dir", "sub", "--passphrase-file", &p]));
    let out = stdout(&ok(&s.uca(&["verify", "--manifest", "sub/manifest.json"])));
    assert!(out.starts_with("OK:"), "{out}");
}

#[test]
fn an_import_that_does_not_fit_is_refused_and_changes_nothing() {
    let s = Scratch::new();
    openssl_root(&s);
    request(&s, "sub", "Team Sub CA", "sub.csr");
    request(&s, "other", "Other CA", "other.csr");
    openssl_sign(&s, "sub.csr", "sub.pem", CA_EXT);
    openssl_sign(&s, "other.csr", "other.pem", CA_EXT);
    openssl_sign(
        &s,
        "sub.csr",
        "leafish.pem",
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n",
    );
    let cat = |out: &str, parts: &[&str]| {
        let bytes: Vec<u8> = parts
            .iter()
            .flat_map(|p| std::fs::read(s.join(p)).unwrap())
            .collect();
        std::fs::write(s.join(out), bytes).unwrap();
    };
    cat("own-only.pem", &["sub.pem"]);
    cat("other-key.pem", &["other.pem", "root.pem"]);
    cat("not-ca.pem", &["leafish.pem", "root.pem"]);
    cat("no-root.pem", &["sub.pem", "sub.pem"]);
    let before = s.files();
    for (file, needle) in [
        ("own-only.pem", "append the chain up to the root"),
        ("other-key.pem", "not for the key of sub"),
        ("not-ca.pem", "is not a CA certificate"),
        ("no-root.pem", "not signed by certificate 2"),
        ("missing.pem", "missing.pem"),
    ] {
        let o = s.uca(&["init", "--dir", "sub", "--import-cert", file]);
        fails_with(&o, needle);
        assert_eq!(s.files(), before, "{file} changed something");
    }
    // A directory without a pending CA.
    s.init_ca(&[]);
    cat("chain.pem", &["sub.pem", "root.pem"]);
    fails_with(
        &s.uca(&["init", "--dir", "ca", "--import-cert", "chain.pem"]),
        "already has its certificate",
    );
    fails_with(
        &s.uca(&["init", "--dir", "nothing", "--import-cert", "chain.pem"]),
        "holds no CA waiting",
    );
}

/// Vault's intermediate below a CA below another root: bootstrap imports the
/// whole chain, and its probe certificate chains to the top root.
#[test]
fn vault_bootstraps_below_a_ca_that_another_root_signed() {
    let s = Scratch::new();
    openssl_root(&s);
    request(&s, "sub", "Team Sub CA", "sub.csr");
    openssl_sign(
        &s,
        "sub.csr",
        "sub.pem",
        "basicConstraints=critical,CA:TRUE,pathlen:1\nkeyUsage=critical,keyCertSign,cRLSign\nnameConstraints=critical,permitted;DNS:internal\n",
    );
    std::fs::write(
        s.join("chain.pem"),
        [
            std::fs::read(s.join("sub.pem")).unwrap(),
            std::fs::read(s.join("root.pem")).unwrap(),
        ]
        .concat(),
    )
    .unwrap();
    ok(&s.uca(&["init", "--dir", "sub", "--import-cert", "chain.pem"]));
    let bao = start_dev(&s);
    std::fs::write(s.join("token.txt"), "test-root-token\n").unwrap();
    let addr = format!("http://127.0.0.1:{}", bao.port);
    let p = pass(&s);
    let out = ok(&s.uca(&[
        "vault",
        "bootstrap",
        "--dir",
        "sub",
        "--addr",
        &addr,
        "--token-file",
        "token.txt",
        "--role",
        "web",
        "--allowed-domain",
        "svc.internal",
        "--passphrase-file",
        &p,
        "--days",
        "365",
        "--max-ttl",
        "720h",
    ]));
    assert!(
        stdout(&out).contains("verified it chains to"),
        "{}",
        stdout(&out)
    );
    let env = [
        ("BAO_ADDR", addr.clone()),
        ("BAO_TOKEN", "test-root-token".to_string()),
    ];
    let (issued, json, err) = bao_cli(
        &[
            "write",
            "-format=json",
            "pki_int/issue/web",
            "common_name=app.svc.internal",
        ],
        &env,
    );
    assert!(issued, "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    std::fs::write(
        s.join("app.pem"),
        v["data"]["certificate"].as_str().unwrap(),
    )
    .unwrap();
    let chain: String = v["data"]["ca_chain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| format!("{}\n", c.as_str().unwrap()))
        .collect();
    std::fs::write(s.join("app-chain.pem"), chain).unwrap();
    let out = openssl(
        &s,
        &[
            "verify",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "app-chain.pem",
            "app.pem",
        ],
    );
    assert!(out.contains(": OK"), "{out}");
}
