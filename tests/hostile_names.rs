//! Names from every source reach a certificate only after the same checks:
//! a CSR's CN, NAMEs, --san, SAN rules, plans, registry hosts and clients,
//! Vault's hosts; what is recorded is what was signed; intermediates keep
//! the constraints they do not narrow; inputs are capped by bytes read; k8s
//! Secret names are valid; printed Vault commands are quoted.

mod common;

use common::{fails_with, ok, openssl_csr, run, stdout, Scratch};

/// A CA constrained to `internal` and 10.0.0.0/8, path length 1.
fn constrained_ca(s: &Scratch) {
    s.init_ca(&[
        "--permit",
        "internal",
        "--permit",
        "10.0.0.0/8",
        "--pathlen",
        "1",
    ]);
}

fn pass(s: &Scratch) -> String {
    s.pass_file().to_str().unwrap().to_string()
}

fn sign(s: &Scratch, csr: &str, extra: &[&str]) -> std::process::Output {
    let pass = pass(s);
    let mut args = vec!["sign", "--dir", "ca", csr, "--passphrase-file", &pass];
    args.extend_from_slice(extra);
    s.uca(&args)
}

fn ledger_lines(s: &Scratch) -> Vec<serde_json::Value> {
    std::fs::read_to_string(s.join("ca/ledger.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_csr_common_name_outside_the_constraints_is_refused() {
    let s = Scratch::new();
    constrained_ca(&s);
    let refused = [
        ("/CN=*.evil.com", "subjectAltName=IP:10.0.0.5", "*.evil.com"),
        (
            "/CN=www.evil.com",
            "subjectAltName=IP:10.0.0.5",
            "www.evil.com",
        ),
        (
            "/CN=www.evil.com",
            "subjectAltName=DNS:web.internal",
            "www.evil.com",
        ),
        (
            "/CN=not a host",
            "subjectAltName=DNS:web.internal",
            "not a host",
        ),
        (
            "/CN=evil.com",
            "subjectAltName=DNS:web.internal",
            "evil.com",
        ),
        ("/CN=8.8.8.8", "subjectAltName=IP:10.0.0.5", "8.8.8.8"),
        // OpenSSL checks an IP CN as a DNS name against DNS constraints.
        ("/CN=10.0.0.5", "subjectAltName=IP:10.0.0.5", "10.0.0.5"),
    ];
    for (i, (subj, san, needle)) in refused.iter().enumerate() {
        let csr = openssl_csr(&s, &format!("bad{i}"), subj, &[san]);
        let out = format!("bad{i}.pem");
        let err = fails_with(&sign(&s, &csr, &["--out", &out]), needle);
        assert!(err.contains("CN"), "{subj}: {err}");
        assert!(!s.join(&out).exists(), "{subj}: {out} was written");
    }
    assert!(ledger_lines(&s).is_empty(), "nothing may be recorded");
}

#[test]
fn a_csr_whose_common_name_is_one_of_its_sans_is_signed() {
    let s = Scratch::new();
    constrained_ca(&s);
    let csr = openssl_csr(
        &s,
        "web",
        "/CN=web.internal",
        &["subjectAltName=DNS:web.internal,IP:10.0.0.5"],
    );
    ok(&sign(&s, &csr, &["--out", "web.pem"]));
    let (good, out) = run(
        "openssl",
        &[
            "verify",
            "-CAfile",
            "ca/ca.pem",
            "-verify_hostname",
            "web.internal",
            "web.pem",
        ],
        s.path(),
    );
    assert!(good, "{out}");
    // A host-name CN without SANs becomes the only SAN, as before.
    let csr = openssl_csr(&s, "db", "/CN=db.internal", &[]);
    let o = ok(&sign(&s, &csr, &["--out", "db.pem"]));
    assert!(
        stdout(&o).contains("SANs DNS:db.internal"),
        "{}",
        stdout(&o)
    );
    // A wildcard CN that is also a SAN, within the constraints.
    let csr = openssl_csr(
        &s,
        "wild",
        "/CN=*.svc.internal",
        &["subjectAltName=DNS:*.svc.internal"],
    );
    ok(&sign(&s, &csr, &["--out", "wild.pem"]));
}

#[test]
fn an_ip_common_name_is_signed_only_without_dns_constraints() {
    let s = Scratch::new();
    s.init_ca(&[]);
    let csr = openssl_csr(&s, "ip", "/CN=10.0.0.5", &["subjectAltName=IP:10.0.0.5"]);
    ok(&sign(&s, &csr, &["--out", "ip.pem"]));
}

#[test]
fn an_intermediate_common_name_is_a_label_or_a_name_within_the_constraints() {
    let s = Scratch::new();
    constrained_ca(&s);
    let csr = openssl_csr(&s, "int", "/CN=Acme Vault Intermediate", &[]);
    ok(&sign(
        &s,
        &csr,
        &["--intermediate", "--pathlen", "0", "--out", "int.pem"],
    ));
    let csr = openssl_csr(&s, "evil", "/CN=www.evil.com", &[]);
    fails_with(
        &sign(
            &s,
            &csr,
            &["--intermediate", "--pathlen", "0", "--out", "evil.pem"],
        ),
        "www.evil.com",
    );
}

/// Every source of names refuses one outside the constraints, before
/// anything is written.
#[test]
fn every_name_source_is_checked_against_the_constraints() {
    let s = Scratch::new();
    constrained_ca(&s);
    let p = pass(&s);
    let issue = |extra: &[&str]| {
        let mut args = vec!["issue", "--dir", "ca", "--out", "certs"];
        args.extend_from_slice(&["--passphrase-file", &p]);
        args.extend_from_slice(extra);
        s.uca(&args)
    };
    fails_with(&issue(&["web.evil.com"]), "web.evil.com");
    fails_with(&issue(&["8.8.8.8"]), "8.8.8.8");
    fails_with(
        &issue(&["web.internal", "--san", "DNS:web.evil.com"]),
        "web.evil.com",
    );
    fails_with(
        &issue(&["web.internal", "--san", "IP:192.168.0.1"]),
        "192.168.0.1",
    );
    fails_with(
        &issue(&["web1.internal", "--san-rule", "{base}.evil.com"]),
        "web.internal.evil.com",
    );
    fails_with(
        &issue(&["web1.internal", "--san-rule", "{host}.evil.com"]),
        "web1.evil.com",
    );
    std::fs::write(
        s.join("plan.toml"),
        "[[group]]\nname = \"g\"\nnames = [\"a.internal\", \"b.evil.com\"]\n",
    )
    .unwrap();
    fails_with(&issue(&["--plan", "plan.toml"]), "b.evil.com");
    std::fs::write(
        s.join("rule.toml"),
        "[[group]]\nname = \"g\"\nnames = [\"a1.internal\"]\nsan_rules = [\"{host}.evil.com\"]\n",
    )
    .unwrap();
    fails_with(&issue(&["--plan", "rule.toml"]), "a1.evil.com");
    let registry = |extra: &[&str]| {
        let mut args = vec!["registry", "--dir", "ca", "--out", "reg"];
        args.extend_from_slice(&["--passphrase-file", &p]);
        args.extend_from_slice(extra);
        s.uca(&args)
    };
    fails_with(&registry(&["registry.evil.com:5000"]), "registry.evil.com");
    fails_with(
        &registry(&["registry.internal", "--client", "ci.evil.com"]),
        "ci.evil.com",
    );
    fails_with(
        &registry(&["registry.internal", "--san", "DNS:r.evil.com"]),
        "r.evil.com",
    );
    let vault_tls = |extra: &[&str]| {
        let mut args = vec!["vault", "tls", "--dir", "ca", "--out", "vt"];
        args.extend_from_slice(&["--passphrase-file", &p]);
        args.extend_from_slice(extra);
        s.uca(&args)
    };
    fails_with(&vault_tls(&["--host", "vault.evil.com"]), "vault.evil.com");
    fails_with(
        &vault_tls(&["--host", "vault.internal", "--host", "v.evil.com"]),
        "v.evil.com",
    );
    fails_with(
        &vault_tls(&["--host", "vault.internal", "--node", "n1.evil.com"]),
        "n1.evil.com",
    );
    fails_with(
        &vault_tls(&["--host", "vault.internal", "--operator", "op.evil.com"]),
        "op.evil.com",
    );
    assert!(ledger_lines(&s).is_empty(), "nothing may be recorded");
    for dir in ["certs", "reg", "vt"] {
        let written = std::fs::read_dir(s.join(dir))
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(written, 0, "{dir} holds files");
    }
}

#[test]
fn a_csr_subject_with_repeated_attributes_is_refused() {
    let s = Scratch::new();
    constrained_ca(&s);
    let csr = openssl_csr(
        &s,
        "dup",
        "/O=Acme/OU=Eng/OU=Platform/CN=web.internal",
        &["subjectAltName=DNS:web.internal"],
    );
    fails_with(&sign(&s, &csr, &["--out", "dup.pem"]), "OU");
    let csr = openssl_csr(
        &s,
        "multi",
        "/O=Acme/CN=web.internal+OU=Eng",
        &["subjectAltName=DNS:web.internal"],
    );
    fails_with(&sign(&s, &csr, &["--out", "multi.pem"]), "multi-valued");
    assert!(!s.join("dup.pem").exists() && !s.join("multi.pem").exists());
    assert!(ledger_lines(&s).is_empty());
}

/// The subject the ledger and stdout report is the one in the certificate.
#[test]
fn the_recorded_subject_is_the_signed_subject() {
    let s = Scratch::new();
    constrained_ca(&s);
    let csr = openssl_csr(
        &s,
        "full",
        "/C=DE/O=Acme/OU=Eng/CN=web.internal",
        &["subjectAltName=DNS:web.internal"],
    );
    let o = ok(&sign(&s, &csr, &["--out", "full.pem"]));
    let (_, signed) = run(
        "openssl",
        &[
            "x509",
            "-in",
            "full.pem",
            "-noout",
            "-subject",
            "-nameopt",
            "sep_comma_plus_space",
        ],
        s.path(),
    );
    let signed = signed.trim().trim_start_matches("subject=").to_string();
    assert_eq!(signed, "C=DE, O=Acme, OU=Eng, CN=web.internal");
    assert!(
        stdout(&o).contains(&format!("signed {signed}:")),
        "{}",
        stdout(&o)
    );
    s.issue(&["api.internal"]);
    let ledger = ledger_lines(&s);
    assert_eq!(ledger[0]["subject"], signed.as_str());
    assert_eq!(ledger[0]["sans"], serde_json::json!(["DNS:web.internal"]));
    assert_eq!(ledger[1]["subject"], "CN=api.internal");
}

/// The permitted subtrees of a certificate, as OpenSSL prints them.
fn permitted_subtrees(s: &Scratch, pem: &str) -> Vec<String> {
    let (good, text) = run(
        "openssl",
        &["x509", "-in", pem, "-noout", "-text"],
        s.path(),
    );
    assert!(good, "{text}");
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line == "Permitted:" {
            inside = true;
        } else if inside && (line.starts_with("DNS:") || line.starts_with("IP:")) {
            out.push(line.to_string());
        } else if inside {
            inside = false;
        }
    }
    out.sort();
    out
}

fn sign_intermediate(s: &Scratch, name: &str, permits: &[&str]) -> std::process::Output {
    let csr = openssl_csr(s, name, "/CN=Acme Vault Intermediate", &[]);
    let out = format!("{name}.pem");
    let mut extra = vec!["--intermediate", "--pathlen", "0", "--out", &out];
    for p in permits {
        extra.extend_from_slice(&["--permit", p]);
    }
    sign(s, &csr, &extra)
}

#[test]
fn narrowing_an_intermediate_keeps_the_roots_other_constraints() {
    let s = Scratch::new();
    s.init_ca(&[
        "--permit",
        "internal",
        "--permit",
        "10.0.0.0/8",
        "--permit",
        "fd00::/8",
        "--pathlen",
        "1",
    ]);
    ok(&sign_intermediate(&s, "dns", &["svc.internal"]));
    assert_eq!(
        permitted_subtrees(&s, "dns.pem"),
        [
            "DNS:svc.internal",
            "IP:10.0.0.0/255.0.0.0",
            "IP:FD00:0:0:0:0:0:0:0/FF00:0:0:0:0:0:0:0"
        ]
    );
    ok(&sign_intermediate(&s, "v4", &["10.1.0.0/16"]));
    assert_eq!(
        permitted_subtrees(&s, "v4.pem"),
        [
            "DNS:internal",
            "IP:10.1.0.0/255.255.0.0",
            "IP:FD00:0:0:0:0:0:0:0/FF00:0:0:0:0:0:0:0"
        ]
    );
    ok(&sign_intermediate(&s, "v6", &["fd00:1::/32"]));
    assert_eq!(
        permitted_subtrees(&s, "v6.pem"),
        [
            "DNS:internal",
            "IP:10.0.0.0/255.0.0.0",
            "IP:FD00:1:0:0:0:0:0:0/FFFF:FFFF:0:0:0:0:0:0"
        ]
    );
    // A leaf for 8.8.8.8 under the DNS-narrowed intermediate fails to verify.
    let leaf_csr = openssl_csr(&s, "leaf", "/CN=leaf", &["subjectAltName=IP:8.8.8.8"]);
    let (good, out) = run(
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            &leaf_csr,
            "-CA",
            "dns.pem",
            "-CAkey",
            "dns.key",
            "-days",
            "1",
            "-copy_extensions",
            "copy",
            "-out",
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
            "dns.pem",
            "leaf.pem",
        ],
        s.path(),
    );
    assert!(
        !good && out.contains("permitted subtree violation"),
        "{out}"
    );
    for outside in ["evil.com", "0.0.0.0/0", "11.0.0.0/8", "fc00::/7"] {
        fails_with(&sign_intermediate(&s, "bad", &[outside]), outside);
    }
}

/// A root without constraints leaves every kind open; narrowing DNS
/// constrains DNS only (the IP kinds keep the root's state: open).
#[test]
fn narrowing_an_unconstrained_root_constrains_only_the_kind_given() {
    let s = Scratch::new();
    s.init_ca(&["--pathlen", "1"]);
    ok(&sign_intermediate(&s, "dns", &["svc.internal"]));
    assert_eq!(permitted_subtrees(&s, "dns.pem"), ["DNS:svc.internal"]);
}

/// Runs uca like `Scratch::uca`, but kills it (and fails the test) if it
/// is still running after `secs` seconds.
fn uca_within(s: &Scratch, args: &[&str], secs: u64) -> std::process::Output {
    use std::process::{Command, Stdio};
    let mut child = Command::new(common::uca_bin())
        .args(args)
        .current_dir(s.path())
        .env_remove("UCA_PASSPHRASE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("uca {args:?} still ran after {secs}s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// A FIFO at `name` with a thread that writes to it without end once a
/// reader opens it (and stops when the reader goes away).
fn endless_fifo(s: &Scratch, name: &str) -> String {
    let path = s.join(name);
    let (made, out) = run("mkfifo", &[path.to_str().unwrap()], s.path());
    assert!(made, "{out}");
    std::thread::spawn(move || {
        use std::io::Write;
        let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&path) else {
            return;
        };
        let chunk = [b'A'; 65536];
        while f.write_all(&chunk).is_ok() {}
    });
    name.to_string()
}

/// Every file uca reads is capped by bytes read, so neither /dev/zero nor a
/// FIFO that never ends keeps it reading.
#[test]
fn endless_inputs_are_refused_quickly() {
    let s = Scratch::new();
    constrained_ca(&s);
    let p = pass(&s);
    let commands: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["sign", "--dir", "ca", "--passphrase-file", &p, "IN"],
            "CSR",
        ),
        (vec!["inspect", "IN"], "at most"),
        (vec!["verify", "IN", "--ca", "ca/ca.pem"], "at most"),
        (vec!["verify", "ca/ca.pem", "--ca", "IN"], "at most"),
        (
            vec![
                "issue",
                "--dir",
                "ca",
                "--out",
                "o",
                "--passphrase-file",
                &p,
                "--plan",
                "IN",
            ],
            "plan",
        ),
        (
            vec![
                "issue",
                "--dir",
                "ca",
                "--out",
                "o",
                "--passphrase-file",
                "IN",
                "x.internal",
            ],
            "passphrase file",
        ),
    ];
    for (i, (args, needle)) in commands.iter().enumerate() {
        for input in [
            "/dev/zero".to_string(),
            endless_fifo(&s, &format!("fifo{i}")),
        ] {
            let args: Vec<&str> = args
                .iter()
                .map(|a| if *a == "IN" { input.as_str() } else { a })
                .collect();
            let o = uca_within(&s, &args, 30);
            let err = fails_with(&o, needle);
            assert!(err.contains(&input), "{args:?}: {err}");
        }
    }
    // check reports what it could not read, on one line, with status 3.
    for input in ["/dev/zero".to_string(), endless_fifo(&s, "fifo-check")] {
        let o = uca_within(&s, &["check", &input], 30);
        assert_eq!(o.status.code(), Some(3), "{}", common::stderr(&o));
        let err = common::stderr(&o);
        assert!(
            err.contains("at most") && err.trim_end().lines().count() == 1,
            "{err}"
        );
    }
    assert!(ledger_lines(&s).is_empty());
    assert!(!s.join("o").exists());
}

/// Every Secret the k8s format writes has a valid RFC 1123 name, whatever
/// the NAME: IPv6 and IPv4 addresses, long names.
#[test]
fn k8s_secret_names_are_valid_for_every_name() {
    let s = Scratch::new();
    s.init_ca(&[]);
    let long = format!("{}.internal", vec!["a".repeat(60); 4].join("."));
    let long2 = long.replace("internal", "internax");
    std::fs::write(
        s.join("plan.toml"),
        format!(
            "[[group]]\nname = \"k\"\nnames = [\"::1\", \"fd00::5\", \"10.0.0.5\", \"web.internal\", \"{long}\", \"{long2}\"]\nformats = [\"k8s\"]\nsan_rules = [\"none\"]\n"
        ),
    )
    .unwrap();
    s.issue(&["--plan", "plan.toml"]);
    let script = r#"
import glob, re, sys, yaml
names = []
for path in sorted(glob.glob(sys.argv[1] + "/*/secret.yaml")):
    with open(path) as f:
        doc = yaml.safe_load(f)
    names.append(doc["metadata"]["name"])
label = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
bad = [n for n in names if not (isinstance(n, str) and len(n) <= 253 and re.fullmatch(label + r"(\." + label + r")*", n))]
print(len(names), len(set(names)), bad)
"#;
    let certs = s.join("certs");
    let (good, out) = run(
        "python3",
        &["-c", script, certs.to_str().unwrap()],
        s.path(),
    );
    assert!(good, "{out}");
    assert_eq!(out.trim(), "6 6 []", "{out}");
}

/// `vault commands` refuses values that are not names (as bootstrap does,
/// before anything reaches a server), and quotes every value it prints.
#[test]
fn vault_commands_validate_and_quote_every_value() {
    let s = Scratch::new();
    let hostile: &[(&str, &str)] = &[
        ("--allowed-domain", "x.internal;touch INJECTED"),
        ("--allowed-domain", "x.internal$(touch INJECTED)"),
        ("--allowed-domain", "*.x.internal"),
        ("--allowed-domain", "x.internal x.evil"),
        ("--role", "web;touch INJECTED"),
        ("--role", "web/../../sys"),
        ("--mount", "pki;touch INJECTED"),
        ("--mount", "pki int"),
        ("--max-ttl", "1h;touch INJECTED"),
        ("--role-max-ttl", "1h`touch INJECTED`"),
        ("--issuing-url", "http://x.internal/a b"),
    ];
    for (flag, value) in hostile {
        let mut args = vec!["vault", "commands", "--dir", "ca"];
        if *flag != "--allowed-domain" {
            args.extend_from_slice(&["--allowed-domain", "svc.internal"]);
        }
        args.extend_from_slice(&[flag, value]);
        let o = s.uca(&args);
        fails_with(&o, value);
        assert!(stdout(&o).is_empty(), "{flag} {value}: printed something");
    }
    // bootstrap refuses the same values before it contacts anything.
    constrained_ca(&s);
    for (flag, value) in hostile {
        let mut args = vec![
            "vault",
            "bootstrap",
            "--dir",
            "ca",
            "--addr",
            "http://127.0.0.1:9",
        ];
        if *flag != "--allowed-domain" {
            args.extend_from_slice(&["--allowed-domain", "svc.internal"]);
        }
        args.extend_from_slice(&[flag, value]);
        fails_with(&s.uca(&args), value);
    }

    // Benign values with spaces and quotes come out as one word each.
    let o = ok(&s.uca(&[
        "vault",
        "commands",
        "--dir",
        "my 'ca' dir",
        "--allowed-domain",
        "svc.internal",
        "--allowed-domain",
        "web.internal",
        "--common-name",
        "Acme's Vault $(touch INJECTED) Intermediate",
        "--issuing-url",
        "http://x.internal/ca;$(touch%20INJECTED)",
        "--role",
        "web-servers",
        "--mount",
        "team/pki_int",
    ]));
    let script = stdout(&o);
    std::fs::write(s.join("commands.sh"), &script).unwrap();
    let (good, out) = run("bash", &["-n", "commands.sh"], s.path());
    assert!(good, "{out}\n{script}");
    std::fs::create_dir_all(s.join("team")).unwrap();
    // argv goes to stderr: some lines redirect stdout to a file.
    let harness = "bao() { { printf 'bao'; printf ' <%s>' \"$@\"; echo; } >&2; }\n\
                   vault() { bao \"$@\"; }\n\
                   uca() { { printf 'uca'; printf ' <%s>' \"$@\"; echo; } >&2; }\n\
                   VAULT_ADDR=https://vault.internal:8200\n\
                   . ./commands.sh\n";
    std::fs::write(s.join("harness.sh"), harness).unwrap();
    let (good, argv) = run("bash", &["harness.sh"], s.path());
    assert!(good, "{argv}");
    assert!(!s.join("INJECTED").exists(), "a value ran as a command");
    for want in [
        "<common_name=Acme's Vault $(touch INJECTED) Intermediate>",
        "uca <sign> <--dir> <my 'ca' dir> <--intermediate>",
        "<issuing_certificates=http://x.internal/ca;$(touch%20INJECTED)>",
        "<crl_distribution_points=https://vault.internal:8200/v1/team/pki_int/crl>",
        "<team/pki_int/roles/web-servers> <allowed_domains=svc.internal,web.internal>",
        "<--ca> <my 'ca' dir/ca.pem> <--name> <uca-probe.svc.internal>",
    ] {
        assert!(argv.contains(want), "missing {want} in:\n{argv}");
    }
}
