//! Every security fact uca acts on (path length, key type, name
//! constraints, validity, name) comes from ca.pem. ca.toml is an editable
//! file: rewriting its copies of those facts changes nothing uca does.

mod common;

use common::{fails_with, ok, openssl_csr, run, stdout, Scratch};

/// Replaces `from` with `to` in ca/ca.toml, asserting it was there.
fn edit_settings(s: &Scratch, from: &str, to: &str) {
    let path = s.join("ca/ca.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{from} not in {text}");
    std::fs::write(&path, text.replace(from, to)).unwrap();
}

/// `uca issue --dir ca --out certs ...`, whatever its outcome.
fn issue(s: &Scratch, extra: &[&str]) -> std::process::Output {
    let pass = s.pass_file();
    let mut args = vec![
        "issue",
        "--dir",
        "ca",
        "--out",
        "certs",
        "--passphrase-file",
        pass.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    s.uca(&args)
}

#[test]
fn the_path_length_comes_from_the_certificate_not_ca_toml() {
    let s = Scratch::new();
    s.init_ca(&["--pathlen", "0"]);
    edit_settings(&s, "pathlen = 0", "pathlen = 3");
    let csr = openssl_csr(&s, "int", "/CN=Edited Intermediate", &[]);
    let pass = s.pass_file();
    fails_with(
        &s.uca(&[
            "sign",
            "--dir",
            "ca",
            &csr,
            "--intermediate",
            "--pathlen",
            "2",
            "--out",
            "int.pem",
            "--passphrase-file",
            pass.to_str().unwrap(),
        ]),
        "path length 0",
    );
    assert!(!s.join("int.pem").exists());
}

#[test]
fn the_manifest_key_type_comes_from_the_certificate_not_ca_toml() {
    let s = Scratch::new();
    s.init_ca_generating_passphrase();
    edit_settings(&s, "key = \"ec-p256\"", "key = \"ed25519\"");
    ok(&s.uca(&["issue", "--dir", "ca", "--out", "certs", "web1"]));
    let sealed = ok(&s.uca(&["seal", "--dir", "ca"]));
    assert!(
        stdout(&sealed).contains("-digest sha256"),
        "{}",
        stdout(&sealed)
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.join("ca/manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["ca"]["key"], "ec-p256");
    ok(&s.uca(&["verify", "--manifest", "ca/manifest.json"]));
    common::assert_manifest_verifies_with_openssl(&s, "ca");
}

#[test]
fn permits_and_name_in_ca_toml_are_not_constraints() {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal"]);
    // Widen the constraints in ca.toml: ca.pem still permits only internal.
    edit_settings(&s, "permit = [", "permit = [\n    \"evil.com\",");
    fails_with(&issue(&s, &["www.evil.com"]), "www.evil.com");
    assert!(!s.join("certs/www.evil.com").exists());
    // Rename the CA in ca.toml: a plan for the real CA still matches it.
    edit_settings(&s, "name = \"Test Root\"", "name = \"Someone Else\"");
    std::fs::write(
        s.join("plan.toml"),
        "[ca]\nname = \"Test Root\"\n\n[[group]]\nname = \"web\"\nnames = [\"web1.internal\"]\n",
    )
    .unwrap();
    let pass = s.pass_file();
    ok(&s.uca(&[
        "issue",
        "--dir",
        "ca",
        "--out",
        "certs",
        "--plan",
        "plan.toml",
        "--passphrase-file",
        pass.to_str().unwrap(),
    ]));
}

#[test]
fn the_validity_limit_comes_from_the_certificate_not_ca_toml() {
    let s = Scratch::new();
    s.init_ca(&["--days", "30"]);
    let text = std::fs::read_to_string(s.join("ca/ca.toml")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("not_after"))
        .unwrap()
        .to_string();
    edit_settings(&s, &line, "not_after = \"2099-01-01T00:00:00Z\"");
    let o = issue(&s, &["--days", "365", "web1"]);
    // Either refused, or capped at the root's real expiry: never beyond it.
    if o.status.success() {
        let (done, out) = run(
            "openssl",
            &[
                "x509",
                "-in",
                "certs/web1/cert.pem",
                "-noout",
                "-checkend",
                &(31 * 86400).to_string(),
            ],
            s.path(),
        );
        assert!(!done, "the leaf outlives the root: {out}");
    }
}
