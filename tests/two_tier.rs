//! Two tiers inside uca: `uca init --intermediate-of ROOT_DIR` makes an
//! issuing intermediate (path length 0) signed by the root, whose name
//! constraints it carries; the root is sealed at once and every leaf comes
//! from the intermediate. Java's PKIX ignores name constraints in a trust
//! anchor but enforces them in an intermediate: a certificate made (with
//! OpenSSL, under the intermediate's own key) for a name outside them is
//! refused by Java and OpenSSL alike, while uca's leaves are accepted (by
//! OpenSSL, rustls, Go, Java and Python).

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;

fn openssl(s: &Scratch, args: &[&str]) -> (bool, String) {
    run("openssl", args, s.path())
}

/// The root (constrained to `internal`), then the intermediate under it,
/// narrowed to `svc.internal`, then the root sealed.
fn two_tiers(s: &Scratch) {
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
    let out = stdout(&ok(&s.uca(&[
        "init",
        "--dir",
        "int",
        "--name",
        "Acme Issuing CA",
        "--intermediate-of",
        "root",
        "--root-passphrase-file",
        pass,
        "--permit",
        "svc.internal",
        "--days",
        "1000",
        "--passphrase-file",
        pass,
    ])));
    assert!(out.contains("path length 0"), "{out}");
    ok(&s.uca(&["seal", "--dir", "root", "--passphrase-file", pass]));
}

#[test]
fn leaves_come_from_the_intermediate_and_verify_to_the_sealed_root() {
    let s = Scratch::new();
    two_tiers(&s);
    let pass = s.pass_file();
    let pass = pass.to_str().unwrap();
    ok(&s.uca(&[
        "issue",
        "--dir",
        "int",
        "--out",
        "certs",
        "--passphrase-file",
        pass,
        "api.svc.internal",
    ]));
    let (good, out) = openssl(
        &s,
        &[
            "verify",
            "-CAfile",
            "root/ca.pem",
            "-untrusted",
            "certs/api.svc.internal/chain.pem",
            "certs/api.svc.internal/cert.pem",
        ],
    );
    assert!(good, "{out}");
    // rustls, Go, Java and Python agree with OpenSSL.
    let o = stdout(&ok(&s.uca(&[
        "verify",
        "--ca",
        "root/ca.pem",
        "--name",
        "api.svc.internal",
        "certs/api.svc.internal/chain.pem",
    ])));
    assert!(o.contains("CN=Acme Issuing CA <- CN=Acme Root"), "{o}");
    let jobs = [(
        "leaf",
        "root/ca.pem",
        "certs/api.svc.internal/chain.pem",
        "certs/api.svc.internal/key.pem",
    )];
    for (what, good, line) in interop_verdicts(&s, "api.svc.internal", &jobs) {
        assert!(good, "{what}: {line}");
    }
    let (_, text) = openssl(&s, &["x509", "-in", "int/ca.pem", "-noout", "-text"]);
    assert!(
        text.contains("CA:TRUE, pathlen:0") && text.contains("DNS:svc.internal"),
        "{text}"
    );
    // The root signed once and is sealed: nothing else comes from it.
    let ledger = std::fs::read_to_string(s.join("root/ledger.jsonl")).unwrap();
    assert_eq!(ledger.lines().count(), 1, "{ledger}");
    fails_with(
        &s.uca(&[
            "issue",
            "--dir",
            "root",
            "--out",
            "x",
            "--passphrase-file",
            pass,
            "a.internal",
        ]),
        "sealed",
    );
    // The intermediate's constraints bind uca itself.
    fails_with(
        &s.uca(&[
            "issue",
            "--dir",
            "int",
            "--out",
            "certs",
            "--passphrase-file",
            pass,
            "web.internal",
        ]),
        "outside the CA's name constraints",
    );
    // An intermediate cannot be asked for outside the root, nor by a root
    // that cannot have one.
    fails_with(
        &s.uca(&[
            "init",
            "--dir",
            "int2",
            "--name",
            "X",
            "--intermediate-of",
            "int",
            "--passphrase-file",
            pass,
        ]),
        "path length 0",
    );
    assert!(!s.join("int2").exists());
}

/// A leaf outside the intermediate's constraints, made by OpenSSL with the
/// intermediate's key: `bad.pem` for `www.example.com`, `good.pem` for
/// `ok.svc.internal`, both serverAuth.
fn openssl_leaves(s: &Scratch) {
    let pass = format!("file:{}", s.pass_file().display());
    let (good, out) = openssl(
        s,
        &[
            "pkey",
            "-in",
            "int/private/ca-key.pem",
            "-passin",
            &pass,
            "-out",
            "int.key",
        ],
    );
    assert!(good, "{out}");
    let (good, out) = openssl(s, &["x509", "-in", "int/ca.pem", "-out", "int.pem"]);
    assert!(good, "{out}");
    for (name, host) in [("bad", "www.example.com"), ("good", "ok.svc.internal")] {
        std::fs::write(
            s.join(&format!("{name}.ext")),
            format!(
                "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:{host}\nauthorityKeyIdentifier=keyid\n"
            ),
        )
        .unwrap();
        let key = format!("{name}.key");
        let csr = format!("{name}.csr");
        let (good, out) = openssl(
            s,
            &[
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &key,
                "-subj",
                &format!("/CN={host}"),
                "-out",
                &csr,
            ],
        );
        assert!(good, "{out}");
        let (good, out) = openssl(
            s,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "int.pem",
                "-CAkey",
                "int.key",
                "-CAcreateserial",
                "-days",
                "30",
                "-extfile",
                &format!("{name}.ext"),
                "-out",
                &format!("{name}.pem"),
            ],
        );
        assert!(good, "{out}");
        let chain = [
            std::fs::read(s.join(&format!("{name}.pem"))).unwrap(),
            std::fs::read(s.join("int.pem")).unwrap(),
        ]
        .concat();
        std::fs::write(s.join(&format!("{name}-chain.pem")), chain).unwrap();
    }
}

#[test]
fn java_and_openssl_enforce_the_intermediates_constraints() {
    let s = Scratch::new();
    two_tiers(&s);
    openssl_leaves(&s);
    let (good, out) = openssl(
        &s,
        &[
            "verify",
            "-CAfile",
            "root/ca.pem",
            "-untrusted",
            "int.pem",
            "bad.pem",
        ],
    );
    assert!(
        !good && out.contains("subtree violation"),
        "OpenSSL accepted a name outside: {out}"
    );
    let (good, out) = openssl(
        &s,
        &[
            "verify",
            "-CAfile",
            "root/ca.pem",
            "-untrusted",
            "int.pem",
            "good.pem",
        ],
    );
    assert!(good, "{out}");

    // Java 17's own PKIX and JSSE (tests/interop/java/Interop.java).
    let classes = s.join("java-classes");
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/java/Interop.java");
    let out = Command::new("javac")
        .arg("-d")
        .arg(&classes)
        .arg(&source)
        .output()
        .expect("javac (./test.sh installs openjdk-17-jdk-headless)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let root = s.join("root/ca.pem");
    let jobs: String = ["bad", "good"]
        .iter()
        .map(|name| {
            format!(
                "{name}\t{}\t{}\t{}\tserver\t-\n",
                root.display(),
                s.join(&format!("{name}-chain.pem")).display(),
                s.join(&format!("{name}.key")).display()
            )
        })
        .collect();
    std::fs::write(s.join("jobs.tsv"), jobs).unwrap();
    let out = Command::new("timeout")
        .args(["120", "java", "-cp"])
        .arg(&classes)
        .args(["Interop", "verify"])
        .arg(s.join("jobs.tsv"))
        .output()
        .expect("java");
    let text = String::from_utf8_lossy(&out.stdout);
    let verdict = |id: &str| {
        text.lines()
            .find(|l| l.split_whitespace().nth(1) == Some(id))
            .unwrap_or_else(|| {
                panic!(
                    "no verdict for {id}: {text} {}",
                    String::from_utf8_lossy(&out.stderr)
                )
            })
            .to_string()
    };
    assert!(verdict("good").starts_with("OK"), "{text}");
    let bad = verdict("bad");
    assert!(
        bad.starts_with("FAIL") && bad.to_lowercase().contains("name"),
        "Java accepted a name outside the intermediate's constraints: {bad}"
    );
}

/// `uca check` warns about an intermediate that outlives its issuer (made
/// with OpenSSL: uca refuses to sign one): from the issuer's expiry on,
/// every chain through it fails, whatever its own date says.
#[test]
fn check_warns_of_an_intermediate_that_outlives_its_issuer() {
    let s = Scratch::new();
    let ok_run = |args: &[&str]| {
        let (good, out) = openssl(&s, args);
        assert!(good, "openssl {args:?}: {out}");
    };
    ok_run(&[
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
        "/CN=Short Root",
        "-days",
        "90",
    ]);
    ok_run(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "int.key",
        "-subj",
        "/CN=Long Intermediate",
        "-out",
        "int.csr",
    ]);
    std::fs::write(
        s.join("ca.ext"),
        "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n",
    )
    .unwrap();
    ok_run(&[
        "x509",
        "-req",
        "-in",
        "int.csr",
        "-CA",
        "root.pem",
        "-CAkey",
        "root.key",
        "-CAcreateserial",
        "-days",
        "400",
        "-extfile",
        "ca.ext",
        "-out",
        "int.pem",
    ]);
    let o = s.uca(&["check", "root.pem", "int.pem"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    let line = out
        .lines()
        .find(|l| l.contains("Long Intermediate"))
        .unwrap_or("");
    assert!(
        line.starts_with("WARN") && line.contains("outlives its issuer"),
        "{out}"
    );
    let json = stdout(&s.uca(&["check", "--json", "root.pem", "int.pem"]));
    assert!(json.contains("\"reason\": \"outlives_issuer\""), "{json}");
    // Alone, with its issuer not among the certificates checked, it is OK.
    assert_eq!(s.uca(&["check", "int.pem"]).status.code(), Some(0));
}

const TWO_TIER_PLAN: &str = r#"
[ca]
name = "Acme Root"
permit = ["internal"]

[intermediate]
name = "Acme Issuing CA"
permit = ["svc.internal"]
days = 1000

[[group]]
name = "api"
names = ["api{1..3}.svc.internal"]
formats = ["pem", "pkcs12"]
pkcs12_password_file = "p12pass"
"#;

/// `uca ceremony` with `[intermediate]`: the root signs the issuing CA and
/// is sealed at once (its ledger holds that one certificate, its key is
/// nowhere); every leaf comes from the intermediate and carries it in its
/// chain; both are sealed and their manifests verify.
#[test]
fn a_two_tier_ceremony_seals_the_root_after_its_one_signature() {
    let s = Scratch::new();
    std::fs::write(s.join("plan.toml"), TWO_TIER_PLAN).unwrap();
    std::fs::write(s.join("p12pass"), "bundle-password\n").unwrap();
    let out = stdout(&ok(&s.uca(&["ceremony", "plan.toml", "--out", "out"])));
    assert!(
        out.contains("sealed root    out/root") && out.contains("its only act"),
        "{out}"
    );
    let ledger = std::fs::read_to_string(s.join("out/root/ledger.jsonl")).unwrap();
    assert_eq!(ledger.lines().count(), 1, "{ledger}");
    assert!(ledger.contains("CN=Acme Issuing CA"), "{ledger}");
    for dir in ["out/root", "out/ca"] {
        assert!(
            !s.join(&format!("{dir}/private/ca-key.pem")).exists(),
            "{dir} kept a key"
        );
        let o = stdout(&ok(&s.uca(&[
            "verify",
            "--manifest",
            &format!("{dir}/manifest.json"),
        ])));
        assert!(o.starts_with("OK:"), "{o}");
    }
    let (good, o) = openssl(
        &s,
        &[
            "verify",
            "-CAfile",
            "out/root/ca.pem",
            "-untrusted",
            "out/certs/api2.svc.internal/chain.pem",
            "out/certs/api2.svc.internal/cert.pem",
        ],
    );
    assert!(good, "{o}");
    // The root's pre-signed revocation of the intermediate is ready.
    let crls: Vec<String> = std::fs::read_dir(s.join("out/root/crl"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(crls.iter().any(|c| c.starts_with("revoke-")), "{crls:?}");
}

#[test]
fn a_two_tier_plan_is_checked_whole_before_anything_is_made() {
    let s = Scratch::new();
    std::fs::write(s.join("p12pass"), "bundle-password\n").unwrap();
    for (name, edit, needle) in [
        ("outside.toml", TWO_TIER_PLAN.replace("api{1..3}.svc.internal", "web.internal"), "outside the CA's name constraints"),
        ("wide.toml", TWO_TIER_PLAN.replace("permit = [\"svc.internal\"]", "permit = [\"example.com\"]"), "outside the root's name constraints"),
        ("long.toml", TWO_TIER_PLAN.replace("days = 1000", "days = 5000"), "outlive the CA"),
        ("vault.toml", format!("{TWO_TIER_PLAN}\n[vault]\naddr = \"http://127.0.0.1:1\"\nallowed_domains = [\"svc.internal\"]\n"), "[vault] and [intermediate] together"),
    ] {
        std::fs::write(s.join(name), edit).unwrap();
        fails_with(&s.uca(&["ceremony", name, "--out", "out"]), needle);
        assert!(!s.join("out").exists(), "{name} left out/ behind");
    }
    // An existing CA takes no [intermediate]: it points at init --intermediate-of.
    s.init_ca(&["--permit", "internal"]);
    let pass = s.pass_file();
    fails_with(
        &s.uca(&[
            "issue",
            "--dir",
            "ca",
            "--out",
            "certs",
            "--plan",
            "long.toml",
            "--passphrase-file",
            pass.to_str().unwrap(),
        ]),
        "--intermediate-of",
    );
}
