//! pkilint's CRL linter (`lint_crl`, RFC 5280 profile) on the CRLs a seal
//! leaves: the root's empty CA-only CRL and a pre-signed revocation of two
//! intermediates, linted as authority revocation lists (ARL: CA
//! certificates only). Kept apart from tests/revocation.rs, which the
//! non-root lane runs: pkilint may be installed for root only.

mod common;

use std::process::Command;

use common::{ok, openssl_csr, Scratch};

fn lint(s: &Scratch, crl: &str) -> (bool, String) {
    let out = Command::new("python3")
        .args([
            "-m",
            "pkilint.bin.lint_crl",
            "lint",
            "-t",
            "ARL",
            "-p",
            "PKIX",
        ])
        .args(["-s", "NOTICE", "--document-format", "DER", crl])
        .current_dir(s.path())
        .output()
        .expect("python3 with pkilint (test.sh installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn pkilint_finds_nothing_in_the_root_crl_or_a_presigned_revocation() {
    let s = Scratch::new();
    s.init_ca(&["--crl-url", "http://pki.example.internal/root.crl"]);
    let pass = s.pass_file();
    let pass = pass.to_str().unwrap();
    for name in ["a", "b"] {
        let csr = openssl_csr(&s, name, &format!("/CN=Intermediate {name}"), &[]);
        let out = format!("{name}.pem");
        ok(&s.uca(&[
            "sign",
            "--dir",
            "ca",
            &csr,
            "--intermediate",
            "--out",
            &out,
            "--passphrase-file",
            pass,
        ]));
    }
    ok(&s.uca(&["seal", "--dir", "ca", "--passphrase-file", pass]));
    for crl in ["ca/crl/root.crl", "ca/crl/revoke-all.crl"] {
        let (clean, text) = lint(&s, crl);
        assert!(clean && text.trim().is_empty(), "{crl}: {text}");
    }
    // The linter is live: a damaged CRL is reported, not passed in silence.
    let mut der = std::fs::read(s.join("ca/crl/root.crl")).unwrap();
    der.truncate(der.len() - 10);
    std::fs::write(s.join("short.crl"), der).unwrap();
    let (clean, text) = lint(&s, "short.crl");
    assert!(!clean, "{text}");
}
