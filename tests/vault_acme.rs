//! `uca vault bootstrap --acme` against a real OpenBao dev server: the
//! mount's ACME server, its convergence, the cert-manager files, and a real
//! ACME client from Debian (lego) that gets a certificate over http-01 and
//! chains it to uca's root with OpenSSL. These tests fail, never skip, when
//! OpenBao or lego is missing (./test.sh installs both).
//!
//! OpenBao checks an http-01 challenge at port 80 of the identifier's
//! address (no setting changes the port), resolving the name through
//! /etc/hosts. So the lego test runs itself again inside namespaces of its
//! own (`unshare --user --map-root-user --net --mount`), as root or as an
//! ordinary user: there it may bind port 80 of its private loopback, and a
//! test hosts file bind-mounted over /etc/hosts sends the names to it. The
//! host's /etc/hosts and network are never touched.

#[path = "common/bao.rs"]
mod bao;
mod common;

use std::process::{Command, Stdio};
use std::time::Instant;

use bao::*;
use common::*;

/// The name lego asks for: below the role's allowed domain.
const NAME: &str = "app.svc.internal";
/// A name the root's constraints permit but the role does not.
const OUTSIDE_ROLE: &str = "app.other.internal";

/// Where lego answers http-01: a loopback address of the test's own
/// network namespace.
const CHALLENGE_IP: &str = "127.0.0.80";
/// Set in the copy of the lego test that runs inside its namespaces.
const IN_NAMESPACES: &str = "UCA_TEST_ACME_IN_NAMESPACES";
const LEGO_TEST: &str =
    "lego_gets_a_certificate_from_openbao_after_bootstrap_acme_and_it_chains_to_the_root";

/// Runs the lego test again in a new user, network and mount namespace
/// (at most 180 s), and checks that it ran and passed there.
fn run_lego_test_in_namespaces() {
    let out = Command::new("timeout")
        .args([
            "180",
            "unshare",
            "--user",
            "--map-root-user",
            "--net",
            "--mount",
        ])
        .args(["--propagation", "private"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", LEGO_TEST, "--nocapture", "--test-threads=1"])
        .env(IN_NAMESPACES, "1")
        .stdin(Stdio::null())
        .output()
        .expect("timeout and unshare (coreutils, util-linux)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    assert!(
        out.status.success() && text.contains("test result: ok. 1 passed"),
        "the lego test failed in its namespaces ({}):\n{text}",
        out.status
    );
}

/// Inside the namespaces: loopback up, and /etc/hosts sending NAME and
/// OUTSIDE_ROLE to CHALLENGE_IP for every process started from here on.
fn set_up_namespaces(s: &Scratch) {
    let (okl, out) = run("ip", &["link", "set", "lo", "up"], s.path());
    assert!(okl, "ip link set lo up: {out}");
    let hosts = s.join("hosts");
    std::fs::write(
        &hosts,
        format!("127.0.0.1 localhost\n{CHALLENGE_IP} {NAME} {OUTSIDE_ROLE}\n"),
    )
    .unwrap();
    let hosts = hosts.display().to_string();
    let (okm, out) = run("mount", &["--bind", &hosts, "/etc/hosts"], s.path());
    assert!(okm, "mount --bind {hosts} /etc/hosts: {out}");
}

/// Runs lego (at most 90 s) against `directory` for `name`, answering
/// http-01 on port 80 of `ip`; returns (ok, output, seconds taken).
fn lego(
    s: &Scratch,
    directory: &str,
    name: &str,
    ip: &str,
    eab: Option<(&str, &str)>,
) -> (bool, String, f64) {
    let path = s.join("lego");
    let mut args = vec![
        "90".to_string(),
        "lego".into(),
        "--accept-tos".into(),
        "--email".into(),
        "ops@svc.internal".into(),
        "--server".into(),
        directory.into(),
        "--domains".into(),
        name.into(),
        "--http".into(),
        "--http.port".into(),
        format!("{ip}:80"),
        "--path".into(),
        path.display().to_string(),
    ];
    if let Some((kid, hmac)) = eab {
        args.extend([
            "--eab".into(),
            "--kid".into(),
            kid.into(),
            "--hmac".into(),
            hmac.into(),
        ]);
    }
    args.push("run".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let start = Instant::now();
    let (ok, out) = run("timeout", &args, s.path());
    (ok, out, start.elapsed().as_secs_f64())
}

fn assert_lego_installed() {
    let o = Command::new("lego").arg("--version").output();
    assert!(
        o.is_ok_and(|o| o.status.success()),
        "lego is not installed (Debian package lego; ./test.sh installs it)"
    );
}

fn bao_env(bao: &Bao) -> [(&'static str, String); 2] {
    [
        ("BAO_ADDR", format!("http://127.0.0.1:{}", bao.port)),
        ("BAO_TOKEN", "test-root-token".to_string()),
    ]
}

fn bao_json(bao: &Bao, args: &[&str]) -> serde_json::Value {
    let (ok, out, err) = bao_cli(args, &bao_env(bao));
    assert!(ok, "bao {args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("bao {args:?}: {e}: {out}"))
}

#[test]
fn lego_gets_a_certificate_from_openbao_after_bootstrap_acme_and_it_chains_to_the_root() {
    assert_lego_installed();
    if std::env::var_os(IN_NAMESPACES).is_none() {
        return run_lego_test_in_namespaces();
    }
    let ip = CHALLENGE_IP;
    let s = Scratch::new();
    set_up_namespaces(&s);
    s.init_ca(&["--permit", "internal"]);
    let bao = start_dev(&s);
    let addr = format!("http://127.0.0.1:{}", bao.port);
    std::fs::write(s.join("token.txt"), "test-root-token\n").unwrap();

    let o = ok(&s.uca(&bootstrap_args(&addr, &["--acme"])));
    let text = stdout(&o);
    let directory = format!("{addr}/v1/pki_int/roles/web/acme/directory");
    for line in [
        "tuned the mount for ACME".to_string(),
        format!("set the mount's cluster path to {addr}/v1/pki_int"),
        "turned on ACME: roles web, default directory role:web, issuer default, EAB always-required".into(),
        format!("ACME directory: {directory}"),
        "bao write -f pki_int/roles/web/acme/new-eab".into(),
    ] {
        assert!(text.contains(&line), "missing {line:?} in:\n{text}");
    }

    // EAB is required by default: an account without a key is refused.
    let (okl, out, _) = lego(&s, &directory, NAME, ip, None);
    assert!(!okl && out.contains("External Account Binding"), "{out}");

    let eab = bao_json(
        &bao,
        &[
            "write",
            "-format=json",
            "-f",
            "pki_int/roles/web/acme/new-eab",
        ],
    );
    let kid = eab["data"]["id"].as_str().unwrap();
    let hmac = eab["data"]["key"].as_str().unwrap();
    let (okl, out, secs) = lego(&s, &directory, NAME, ip, Some((kid, hmac)));
    assert!(okl, "lego failed after {secs:.1} s:\n{out}");
    eprintln!("lego got a certificate for {NAME} over http-01 in {secs:.2} s");

    let leaf = format!("lego/certificates/{NAME}.crt");
    let issuer = format!("lego/certificates/{NAME}.issuer.crt");
    let (okv, out) = run(
        "openssl",
        &[
            "verify",
            "-CAfile",
            "ca/ca.pem",
            "-untrusted",
            &issuer,
            &leaf,
        ],
        s.path(),
    );
    eprintln!("openssl verify: {}", out.trim());
    assert!(okv && out.contains(&format!("{leaf}: OK")), "{out}");
    let (okx, out) = run(
        "openssl",
        &[
            "x509",
            "-in",
            &leaf,
            "-noout",
            "-ext",
            "subjectAltName,extendedKeyUsage",
        ],
        s.path(),
    );
    assert!(okx && out.contains(&format!("DNS:{NAME}")), "{out}");
    // ACME issues for servers only, whatever the role allows.
    assert!(
        out.contains("TLS Web Server Authentication") && !out.contains("Client"),
        "{out}"
    );
    // uca's own verifier agrees (lego's NAME.crt holds the leaf, then the
    // intermediate).
    ok(&s.uca(&["verify", &leaf, "--ca", "ca/ca.pem", "--name", NAME]));

    // A name outside the role is refused, though the challenge is answered.
    let (okl, out, _) = lego(&s, &directory, OUTSIDE_ROLE, ip, Some((kid, hmac)));
    assert!(
        !okl && out.contains("rejectedIdentifier"),
        "a name outside the role was not refused as such:\n{out}"
    );
    assert!(
        !s.join(&format!("lego/certificates/{OUTSIDE_ROLE}.crt"))
            .exists(),
        "{out}"
    );
}

#[test]
fn bootstrap_acme_converges_and_writes_cert_manager_files_that_parse() {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal"]);
    let bao = start_dev(&s);
    let addr = format!("http://127.0.0.1:{}", bao.port);
    std::fs::write(s.join("token.txt"), "test-root-token\n").unwrap();
    let acme = ["--acme", "--acme-eab", "not-required", "--k8s-out", "k8s"];

    let text = stdout(&ok(&s.uca(&bootstrap_args(&addr, &acme))));
    let directory = format!("{addr}/v1/pki_int/roles/web/acme/directory");
    assert!(text.contains("EAB not required"), "{text}");
    let config = bao_json(&bao, &["read", "-format=json", "pki_int/config/acme"]);
    assert_eq!(config["data"]["enabled"], true, "{config}");
    assert_eq!(config["data"]["eab_policy"], "not-required", "{config}");
    assert_eq!(
        config["data"]["allowed_roles"],
        serde_json::json!(["web"]),
        "{config}"
    );
    assert_eq!(
        config["data"]["allowed_issuers"],
        serde_json::json!(["default"]),
        "{config}"
    );
    assert_eq!(
        config["data"]["default_directory_policy"], "role:web",
        "{config}"
    );

    // The directory answers anyone, with the headers ACME needs.
    let (okc, out) = run("curl", &["-sS", "--max-time", "10", &directory], s.path());
    assert!(
        okc && out.contains(&format!("{addr}/v1/pki_int/roles/web/acme/new-account")),
        "{out}"
    );
    let nonce = directory.replace("/directory", "/new-nonce");
    let (okc, out) = run("curl", &["-sS", "--max-time", "10", "-I", &nonce], s.path());
    assert!(
        okc && out.to_ascii_lowercase().contains("replay-nonce:"),
        "{out}"
    );
    assert!(out.to_ascii_lowercase().contains("link:"), "{out}");

    // The cert-manager files, as Kubernetes would read them.
    let issuer = yaml(&s, "k8s/cluster-issuer-acme.yaml");
    assert_eq!(issuer["apiVersion"], "cert-manager.io/v1");
    assert_eq!(issuer["kind"], "ClusterIssuer");
    let spec = &issuer["spec"]["acme"];
    assert_eq!(spec["server"], directory.as_str(), "{issuer}");
    let root_pem = std::fs::read_to_string(s.join("ca/ca.pem")).unwrap();
    let bundle = base64_decode(spec["caBundle"].as_str().unwrap());
    assert_eq!(bundle.trim(), root_pem.trim(), "caBundle is not the root");
    assert!(spec["solvers"][0]["http01"].is_object(), "{issuer}");
    assert!(spec["privateKeySecretRef"]["name"].is_string(), "{issuer}");
    assert!(spec.get("externalAccountBinding").is_none(), "{issuer}");
    let configmap = yaml(&s, "k8s/trust-bundle-configmap.yaml");
    assert_eq!(configmap["kind"], "ConfigMap");
    assert_eq!(
        configmap["data"]["ca.crt"].as_str().unwrap().trim(),
        root_pem.trim()
    );

    // An interrupted or undone ACME setup is completed by a re-run.
    bao_json(
        &bao,
        &[
            "write",
            "-format=json",
            "pki_int/config/acme",
            "enabled=false",
        ],
    );
    bao_json(
        &bao,
        &[
            "write",
            "-format=json",
            "pki_int/config/cluster",
            "path=http://elsewhere.invalid/v1/pki_int",
        ],
    );
    let text = stdout(&ok(&s.uca(&bootstrap_args(&addr, &acme))));
    for line in [
        "turned on ACME",
        "set the mount's cluster path",
        "the mount already passes the headers ACME needs",
        "k8s/cluster-issuer-acme.yaml is up to date",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    // A run with nothing to do changes nothing.
    let text = stdout(&ok(&s.uca(&bootstrap_args(&addr, &acme))));
    for line in [
        "ACME is already on",
        "the mount's cluster path is",
        "the mount already passes the headers ACME needs",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    assert!(
        !text.contains("turned on ACME") && !text.contains("tuned the mount"),
        "{text}"
    );

    // A file in the way is refused before Vault changes.
    std::fs::create_dir(s.join("k8s-taken")).unwrap();
    std::fs::write(
        s.join("k8s-taken/cluster-issuer-acme.yaml"),
        "someone else's\n",
    )
    .unwrap();
    let o = s.uca(&bootstrap_args(
        &addr,
        &[
            "--acme",
            "--acme-eab",
            "always-required",
            "--k8s-out",
            "k8s-taken",
        ],
    ));
    fails_with(&o, "exists with other contents");
    let config = bao_json(&bao, &["read", "-format=json", "pki_int/config/acme"]);
    assert_eq!(
        config["data"]["eab_policy"], "not-required",
        "Vault was changed: {config}"
    );
    assert!(!s.join("k8s-taken/trust-bundle-configmap.yaml").exists());

    // With EAB required, the ClusterIssuer binds its account to a key.
    let text = stdout(&ok(
        &s.uca(&bootstrap_args(&addr, &["--acme", "--k8s-out", "k8s-eab"]))
    ));
    assert!(
        text.contains("turned on ACME") && text.contains("EAB always-required"),
        "{text}"
    );
    let issuer = yaml(&s, "k8s-eab/cluster-issuer-acme.yaml");
    let binding = &issuer["spec"]["acme"]["externalAccountBinding"];
    assert!(binding["keyID"].is_string(), "{issuer}");
    assert!(binding["keySecretRef"]["name"].is_string(), "{issuer}");
}

#[test]
fn acme_settings_are_checked_before_vault_is_touched() {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal"]);
    std::fs::write(s.join("token.txt"), "test-root-token\n").unwrap();
    // Nothing listens here: each refusal comes before a connection.
    let addr = "http://127.0.0.1:9";
    for (extra, needle) in [
        (
            vec!["--acme", "--acme-base-url", "ftp://vault.internal"],
            "--acme-base-url",
        ),
        (
            vec![
                "--acme",
                "--acme-base-url",
                "https://vault.internal:8200/v1/pki",
            ],
            "no path",
        ),
        (vec!["--acme", "--acme-role", "we b"], "--acme-role"),
        (vec!["--acme", "--acme-role", "../sys"], "--acme-role"),
    ] {
        let o = s.uca(&bootstrap_args(addr, &extra));
        fails_with(&o, needle);
    }
    for extra in [
        vec!["--acme-eab", "not-required"],
        vec!["--k8s-out", "k8s"],
        vec!["--acme-eab", "sometimes"],
    ] {
        let o = s.uca(&bootstrap_args(addr, &extra));
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("--acme"), "{}", stderr(&o));
    }
    assert!(!s.join("k8s").exists());
}

/// A YAML file parsed by PyYAML (as Kubernetes tooling reads it), as JSON.
fn yaml(s: &Scratch, file: &str) -> serde_json::Value {
    let (okp, out) = run(
        "python3",
        &[
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
            file,
        ],
        s.path(),
    );
    assert!(okp, "{file} does not parse as YAML: {out}");
    serde_json::from_str(&out).unwrap()
}

fn base64_decode(text: &str) -> String {
    use base64::Engine;
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .unwrap(),
    )
    .unwrap()
}

#[test]
fn ceremony_vault_section_turns_on_acme_and_refuses_acme_settings_without_it() {
    let s = Scratch::new();
    let bao = start_dev(&s);
    std::fs::write(s.join("token.txt"), "test-root-token\n").unwrap();
    let plan = format!(
        "[ca]\nname = \"Ceremony Root\"\npermit = [\"internal\"]\n\n[[group]]\nname = \"svc\"\nnames = [\"svc1.internal\"]\n\n\
         [vault]\naddr = \"http://127.0.0.1:{}\"\ntoken_file = \"token.txt\"\nrole = \"svc\"\nallowed_domains = [\"svc.internal\"]\n\
         acme = true\nacme_eab = \"new-account-required\"\nk8s_out = \"k8s\"\n",
        bao.port
    );
    std::fs::write(s.join("plan.toml"), &plan).unwrap();
    let text = stdout(&ok(&s.uca(&["ceremony", "plan.toml", "--out", "out"])));
    assert!(
        text.contains("turned on ACME: roles svc, default directory role:svc, issuer default, EAB new-account-required"),
        "{text}"
    );
    let issuer = yaml(&s, "k8s/cluster-issuer-acme.yaml");
    assert_eq!(
        issuer["spec"]["acme"]["server"],
        format!(
            "http://127.0.0.1:{}/v1/pki_int/roles/svc/acme/directory",
            bao.port
        )
        .as_str()
    );
    let config = bao_json(&bao, &["read", "-format=json", "pki_int/config/acme"]);
    assert_eq!(
        config["data"]["eab_policy"], "new-account-required",
        "{config}"
    );

    // A Kubernetes file already in the way is refused before the root exists.
    std::fs::create_dir(s.join("k8s-taken")).unwrap();
    std::fs::write(
        s.join("k8s-taken/trust-bundle-configmap.yaml"),
        "another root\n",
    )
    .unwrap();
    std::fs::write(
        s.join("plan3.toml"),
        plan.replace("\"k8s\"", "\"k8s-taken\""),
    )
    .unwrap();
    fails_with(
        &s.uca(&["ceremony", "plan3.toml", "--out", "out3"]),
        "trust-bundle-configmap.yaml",
    );
    assert!(!s.join("out3").exists());

    // ACME settings without acme = true are refused before the root exists.
    std::fs::write(s.join("plan2.toml"), plan.replace("acme = true\n", "")).unwrap();
    fails_with(
        &s.uca(&["ceremony", "plan2.toml", "--out", "out2"]),
        "acme_eab configures the ACME server",
    );
    assert!(!s.join("out2").exists());
}
