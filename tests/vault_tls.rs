//! `uca vault tls` against real servers: an OpenBao raft server whose
//! listener uses uca's certificates and requires client certificates, and
//! OpenBao storing its data in a real PostgreSQL over mutual TLS, one server
//! and then two nodes sharing it, each started from the openbao.hcl uca
//! wrote; and two raft nodes assembled from listener.hcl and retry_join.hcl.
//! These tests fail, never skip, when OpenBao or PostgreSQL is missing.

#[path = "common/bao.rs"]
mod bao;
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bao::*;
use common::*;

/// `uca vault tls --dir ca --out vtls` for a listener on 127.0.0.1:`port`,
/// with the test's passphrase and `extra` arguments; asserts success.
fn vault_tls(s: &Scratch, port: u16, extra: &[&str]) -> std::process::Output {
    let pass = s.pass_file();
    let port = port.to_string();
    let mut args = vec![
        "vault",
        "tls",
        "--dir",
        "ca",
        "--out",
        "vtls",
        "--address",
        "127.0.0.1",
        "--port",
        &port,
        "--passphrase-file",
        pass.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    ok(&s.uca(&args))
}

#[test]
fn raft_server_with_uca_mtls_listener_init_unseal_and_bootstrap() {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal", "--permit", "127.0.0.0/8"]);
    let port = free_port_pair();
    vault_tls(
        &s,
        port,
        &[
            "--host",
            "127.0.0.1",
            "--host",
            "vault.internal",
            "--operator",
            "ops.internal",
        ],
    );
    let listener = std::fs::read_to_string(s.join("vtls/listener.hcl")).unwrap();
    assert!(
        listener.contains("tls_require_and_verify_client_cert = true"),
        "{listener}"
    );
    // The server starts from the configuration uca wrote, unchanged.
    let config = std::fs::read_to_string(s.join("vtls/openbao.hcl")).unwrap();
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
    let mtls = [
        "--cacert",
        cacert.as_str(),
        "--client-cert",
        cert.as_str(),
        "--client-key",
        key.as_str(),
    ];
    // Bootstrap over mTLS.
    let o = ok(&s.uca(&bootstrap_args(&addr, &mtls)));
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
    let o = ok(&s.uca(&bootstrap_args(&addr, &mtls)));
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
    let v = issue_through_role(&env, None, "pki_int/issue/web", "after-seal.svc.internal");
    assert_vault_leaf_verifies(&s, &v, "after-seal.pem", "after-seal.svc.internal");
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
            .env("HOME", bao::test_home())
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
    // The port opens while the server still recovers its data directory
    // ("the database system is starting up"): wait until it takes queries.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = pg
            .command("pg_isready")
            .arg("-h")
            .arg(&pg.dir)
            .args(["-p", &port.to_string(), "-U", "postgres", "-q"])
            .status()
            .unwrap();
        if ready.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "PostgreSQL did not accept connections within 60 s; see {}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
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
    let storage_url = format!("postgresql://openbao@127.0.0.1:{pg_port}/openbao");
    let o = vault_tls(
        &s,
        port,
        &[
            "--host",
            "127.0.0.1",
            "--operator",
            "ops",
            "--storage",
            &storage_url,
        ],
    );
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

    // OpenBao from the configuration uca wrote, unchanged: its data lands
    // in PostgreSQL over mTLS.
    let config = std::fs::read_to_string(s.join("vtls/openbao.hcl")).unwrap();
    assert!(config.contains("storage \"postgresql\""), "{config}");
    let single = start_server(&s, &config, port);
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

    // Two nodes sharing the database, each from its own configuration as
    // written: one is active, the other a standby that names it.
    drop(single);
    let key = init["unseal_keys_b64"][0].as_str().unwrap().to_string();
    let port = free_port_pair();
    let port_text = port.to_string();
    let pass = s.pass_file();
    ok(&s.uca(&[
        "vault",
        "tls",
        "--dir",
        "ca",
        "--out",
        "vtls2",
        "--port",
        &port_text,
        "--passphrase-file",
        pass.to_str().unwrap(),
        "--host",
        "127.0.0.1",
        "--node",
        "127.0.0.1",
        "--node",
        "127.0.0.2",
        "--storage",
        &storage_url,
    ]));
    let mut nodes = Vec::new();
    for (i, ip) in ["127.0.0.1", "127.0.0.2"].iter().enumerate() {
        let config = std::fs::read_to_string(s.join(&format!("vtls2/nodes/{ip}/openbao.hcl")));
        let config = config.unwrap();
        assert!(config.contains("ha_enabled = \"true\""), "{config}");
        nodes.push(start_node(&s, &format!("pg-node{i}"), &config, ip, port));
        let env = operator_env(&s, &format!("https://{ip}:{port}"), Some("ops"));
        let (oku, _, err) = bao_cli(&["operator", "unseal", &key], &env);
        assert!(oku, "unseal of {ip}: {err}");
    }
    let env = operator_env(&s, &format!("https://127.0.0.2:{port}"), Some("ops"));
    let start = Instant::now();
    loop {
        let (_, out, err) = bao_cli(&["status", "-format=json"], &env);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        if v["sealed"] == false
            && v["ha_enabled"] == true
            && v["is_self"] != true
            && v["leader_address"] == format!("https://127.0.0.1:{port}")
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "127.0.0.2 is not a standby of 127.0.0.1: {out}{err}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    drop(nodes);
}

#[test]
fn raft_cluster_joins_over_mutual_tls_with_node_certificates() {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal", "--permit", "127.0.0.0/8"]);
    let port = free_port_pair();
    // Each node is named by the address the others reach it at; two nodes
    // share this machine on 127.0.0.1 and 127.0.0.2.
    vault_tls(
        &s,
        port,
        &[
            "--host",
            "127.0.0.1",
            "--host",
            "127.0.0.2",
            "--operator",
            "ops.internal",
            "--node",
            "127.0.0.1",
            "--node",
            "127.0.0.2",
        ],
    );
    let listener = std::fs::read_to_string(s.join("vtls/listener.hcl")).unwrap();
    let retry_join = std::fs::read_to_string(s.join("vtls/retry_join.hcl")).unwrap();
    for ip in ["127.0.0.1", "127.0.0.2"] {
        assert!(
            retry_join.contains(&format!("leader_api_addr = \"https://{ip}:{port}\"")),
            "{retry_join}"
        );
    }
    // The same two files on every node, as an operator would use them: NODE
    // (its certificate, api_addr and cluster_addr) and the listener's
    // address made that node's own.
    let mut nodes = Vec::new();
    for (i, ip) in [(1, "127.0.0.1"), (2, "127.0.0.2")] {
        let raft = s.join(&format!("raft{i}"));
        std::fs::create_dir(&raft).unwrap();
        let config = format!(
            "storage \"raft\" {{\n  path = \"{}\"\n  node_id = \"node{i}\"\n{}}}\n{}\ndisable_mlock = true\n",
            raft.display(),
            retry_join.replace("/NODE/", &format!("/{ip}/")),
            listener
                .replace("NODE", ip)
                .replace("\"127.0.0.1:", &format!("\"{ip}:")),
        );
        nodes.push(start_node(&s, &format!("node{i}"), &config, ip, port));
    }
    let env = |ip: &str| operator_env(&s, &format!("https://{ip}:{port}"), Some("ops.internal"));

    let (oki, out, err) = bao_cli(
        &[
            "operator",
            "init",
            "-key-shares=1",
            "-key-threshold=1",
            "-format=json",
        ],
        &env("127.0.0.1"),
    );
    assert!(oki, "init of node1 over mTLS failed: {err}");
    let init: serde_json::Value = serde_json::from_str(&out).unwrap();
    let key = init["unseal_keys_b64"][0].as_str().unwrap().to_string();
    let token = init["root_token"].as_str().unwrap().to_string();
    let (oku, _, err) = bao_cli(&["operator", "unseal", &key], &env("127.0.0.1"));
    assert!(oku, "unseal of node1: {err}");

    // node2 joins node1 through retry_join, presenting its node certificate
    // to node1's listener; unsealing it completes the join.
    let mut with_token = env("127.0.0.1");
    with_token.push(("BAO_TOKEN", token));
    let start = Instant::now();
    loop {
        let _ = bao_cli(&["operator", "unseal", &key], &env("127.0.0.2"));
        let (okp, out, err) = bao_cli(
            &["operator", "raft", "list-peers", "-format=json"],
            &with_token,
        );
        let last = if okp {
            let peers: serde_json::Value = serde_json::from_str(&out).unwrap();
            let servers = peers["data"]["config"]["servers"].as_array().unwrap();
            let ids: Vec<&str> = servers
                .iter()
                .filter_map(|v| v["node_id"].as_str())
                .collect();
            if ids.contains(&"node1") && ids.contains(&"node2") {
                break;
            }
            out
        } else {
            err
        };
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "node2 did not join over mTLS: {last}\nnode2 log:\n{}",
            std::fs::read_to_string(s.join("node2.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    drop(nodes);
}
