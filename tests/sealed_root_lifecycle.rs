//! The life of a CA hierarchy around its seal, as a user of another tool
//! meets it: an issuing CA made under a fresh root, and the CRLs a seal
//! leaves for every CA uca makes (a root, a CA signed by another root, a
//! two-tier issuing CA), whatever the parent's key type.

mod common;

use common::*;

fn openssl(s: &Scratch, args: &[&str]) -> (bool, String) {
    run("openssl", args, s.path())
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
