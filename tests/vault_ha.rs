//! OpenBao as a real HA cluster, built as the README's "Vault and OpenBao"
//! section describes: three raft nodes on 127.0.0.2, .3 and .4 (all of
//! 127.0.0.0/8 is loopback), each named by its address with `uca vault tls
//! --node`, serving its own node certificate from the shared listener.hcl
//! and joining the others through retry_join.hcl over mutual TLS. Bootstrap
//! goes through a standby; after the leader is killed, a follower issues
//! leaves that chain to the root. And a standby whose active node cannot be
//! reached, modelled by a proxy in front of a dev server: bootstrap waits
//! there for each of its writes. Fails, never skips, without OpenBao.

#[path = "common/bao.rs"]
mod bao;
mod common;

use std::time::{Duration, Instant};

use bao::*;
use common::*;

const NODES: [&str; 3] = ["127.0.0.2", "127.0.0.3", "127.0.0.4"];

/// Polls `check` every 300 ms until it returns Some, or fails with `what`
/// and the last state after `limit`.
fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        match check() {
            Ok(v) => return v,
            Err(last) if Instant::now() >= deadline => {
                panic!("{what} within {} s: {last}", limit.as_secs())
            }
            Err(_) => std::thread::sleep(Duration::from_millis(300)),
        }
    }
}

/// `bao status` of one node: (is it the active node, the active node's address).
fn ha_status(env: &[(&str, String)]) -> Result<(bool, String), String> {
    let (_, out, err) = bao_cli(&["status", "-format=json"], env);
    let v: serde_json::Value =
        serde_json::from_str(&out).map_err(|_| format!("bao status: {out}{err}"))?;
    if v["sealed"] != false {
        return Err(format!("sealed: {out}"));
    }
    Ok((
        v["is_self"] == true,
        v["leader_address"].as_str().unwrap_or("").to_string(),
    ))
}

/// The node ids raft lists as voters, asked through `env`.
fn voters(env: &[(&str, String)]) -> Result<Vec<String>, String> {
    let (okp, out, err) = bao_cli(&["operator", "raft", "list-peers", "-format=json"], env);
    if !okp {
        return Err(err);
    }
    let peers: serde_json::Value = serde_json::from_str(&out).map_err(|e| e.to_string())?;
    Ok(peers["data"]["config"]["servers"]
        .as_array()
        .ok_or(out.clone())?
        .iter()
        .filter(|p| p["voter"] == true)
        .filter_map(|p| p["node_id"].as_str().map(str::to_string))
        .collect())
}

#[test]
fn three_node_cluster_bootstraps_through_a_standby_and_issues_after_failover() {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal", "--permit", "127.0.0.0/8"]);
    let port = free_port_pair();
    let pass = s.pass_file();
    let port_text = port.to_string();
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
        &port_text,
        "--host",
        "vault.internal",
        "--operator",
        "ops.internal",
        "--passphrase-file",
        pass.to_str().unwrap(),
    ];
    for ip in NODES {
        args.extend(["--node", ip]);
    }
    ok(&s.uca(&args));
    // Each node's certificate names the node (the address the others join
    // it by, and its api_addr) and the shared --host name.
    for ip in NODES {
        let path = format!("vtls/nodes/{ip}/cert.pem");
        let (okx, text) = run(
            "openssl",
            &["x509", "-in", &path, "-noout", "-ext", "subjectAltName"],
            s.path(),
        );
        assert!(
            okx && text.contains(&format!("IP Address:{ip}"))
                && text.contains("DNS:vault.internal"),
            "{path}: {text}"
        );
    }
    let listener = std::fs::read_to_string(s.join("vtls/listener.hcl")).unwrap();
    let retry_join = std::fs::read_to_string(s.join("vtls/retry_join.hcl")).unwrap();
    assert!(
        listener.contains("/nodes/NODE/cert.pem")
            && listener.contains(&format!("api_addr = \"https://NODE:{port}\"")),
        "{listener}"
    );

    // The same two files on every node, with NODE made that node's name;
    // on one machine the listen address is the node's own too.
    let mut servers: Vec<Option<Bao>> = Vec::new();
    for (i, ip) in NODES.iter().enumerate() {
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
        servers.push(Some(start_node(&s, &format!("node{i}"), &config, ip, port)));
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
        &env(NODES[0]),
    );
    assert!(oki, "init over mTLS failed: {err}");
    let init: serde_json::Value = serde_json::from_str(&out).unwrap();
    let key = init["unseal_keys_b64"][0].as_str().unwrap().to_string();
    let token = init["root_token"].as_str().unwrap().to_string();
    std::fs::write(s.join("token.txt"), format!("{token}\n")).unwrap();
    let with_token = |ip: &str| {
        let mut e = env(ip);
        e.push(("BAO_TOKEN", token.clone()));
        e
    };
    let (oku, _, err) = bao_cli(&["operator", "unseal", &key], &env(NODES[0]));
    assert!(oku, "unseal of {}: {err}", NODES[0]);
    wait_for(
        "the first node became active",
        Duration::from_secs(30),
        || match ha_status(&env(NODES[0]))? {
            (true, _) => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    // The others join through retry_join with their node certificates
    // (unsealing completes the join) and become voters.
    wait_for(
        "all three nodes are raft voters",
        Duration::from_secs(60),
        || {
            for ip in &NODES[1..] {
                let _ = bao_cli(&["operator", "unseal", &key], &env(ip));
            }
            let ids = voters(&with_token(NODES[0]))?;
            (ids.len() == 3)
                .then_some(())
                .ok_or(format!("voters {ids:?}"))
        },
    );

    // Bootstrap through a standby: uca moves to the active node it names.
    let leader = NODES
        .iter()
        .copied()
        .find(|ip| ha_status(&env(ip)).is_ok_and(|(active, _)| active))
        .expect("no active node");
    let standby = NODES.iter().copied().find(|ip| *ip != leader).unwrap();
    let cacert = s.join("vtls/listener/ca.pem").display().to_string();
    let cert = s.join("vtls/operators/ops.internal/cert.pem");
    let client_key = s.join("vtls/operators/ops.internal/key.pem");
    let standby_addr = format!("https://{standby}:{port}");
    let o = ok(&s.uca(&bootstrap_args(
        &standby_addr,
        &[
            "--cacert",
            &cacert,
            "--client-cert",
            cert.to_str().unwrap(),
            "--client-key",
            client_key.to_str().unwrap(),
        ],
    )));
    let text = stdout(&o);
    assert!(
        text.contains(&format!(
            "node {standby_addr} is a standby; bootstrapping through the active node https://{leader}:{port}"
        )) && text.contains("verified it chains to Test Root")
            && text.contains("bootstrap complete"),
        "{text}"
    );
    // The default AIA and CRL URLs name one node, and bootstrap says so.
    assert!(
        text.contains(&format!(
            "note: in an HA cluster these URLs should name every node, not https://{leader}:{port}"
        )),
        "{text}"
    );

    // Kill the leader; after the election a follower issues through the role.
    let leader_index = NODES.iter().position(|ip| *ip == leader).unwrap();
    let mut dead = servers[leader_index].take().unwrap();
    // SAFETY: kill has no memory-safety preconditions; the pid is our child's.
    assert_eq!(
        unsafe { libc::kill(dead.child.id() as i32, libc::SIGKILL) },
        0
    );
    let _ = dead.child.wait();
    let survivors: Vec<&str> = NODES.iter().copied().filter(|ip| *ip != leader).collect();
    let new_leader = wait_for("a new leader was elected", Duration::from_secs(30), || {
        survivors
            .iter()
            .copied()
            .find(|ip| ha_status(&env(ip)).is_ok_and(|(active, _)| active))
            .ok_or_else(|| {
                format!(
                    "{:?}",
                    survivors
                        .iter()
                        .map(|ip| ha_status(&env(ip)))
                        .collect::<Vec<_>>()
                )
            })
    });
    let follower = survivors
        .iter()
        .copied()
        .find(|ip| *ip != new_leader)
        .unwrap();
    let follower_env = with_token(follower);
    let v: serde_json::Value = wait_for(
        "the follower issued through the role",
        Duration::from_secs(30),
        || {
            let (okw, out, err) = bao_cli(
                &[
                    "write",
                    "-format=json",
                    "pki_int/issue/web",
                    "common_name=after-failover.svc.internal",
                    "ttl=1h",
                ],
                &follower_env,
            );
            if okw {
                serde_json::from_str(&out).map_err(|e| e.to_string())
            } else {
                Err(err)
            }
        },
    );
    let leaf = write_pem(&s, "leaf.pem", v["data"]["certificate"].as_str().unwrap());
    let int = write_pem(&s, "int.pem", v["data"]["issuing_ca"].as_str().unwrap());
    let (okv, out) = run(
        "openssl",
        &["verify", "-CAfile", "ca/ca.pem", "-untrusted", &int, &leaf],
        s.path(),
    );
    assert!(okv && out.contains("leaf.pem: OK"), "{out}");
    assert_vault_leaf_verifies(&s, &v, "leaf-chain.pem", "after-failover.svc.internal");
    drop(servers);
}

/// What the lagging standby has seen: writes forwarded, and requests it
/// made wait (412) because it had not applied the index they sent back.
#[derive(Default)]
struct StandbyLog {
    writes: usize,
    made_to_wait: usize,
    lagged_for: usize,
}

/// A standby whose active node cannot be reached, in front of a real
/// OpenBao dev server: sys/leader names an active node at `dead_port`,
/// where nothing listens; every write is forwarded and answered with a new
/// `X-Vault-Index`; a request after a write that does not send that index
/// back is answered as a node that has not applied the write would be
/// ("no mount entry found"), and one that does gets a 412 the first time,
/// as a standby still catching up, and then the real answer; unless it
/// never `catches_up`, as a standby cut off from the active node.
fn lagging_standby(
    upstream: u16,
    dead_port: u16,
    catches_up: bool,
) -> (u16, std::sync::Arc<std::sync::Mutex<StandbyLog>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let log = std::sync::Arc::new(std::sync::Mutex::new(StandbyLog::default()));
    let state = log.clone();
    std::thread::spawn(move || {
        // One connection at a time: uca sends one request at a time.
        for conn in listener.incoming().flatten() {
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                continue;
            }
            let mut parts = request_line.split_whitespace();
            let method = parts.next().unwrap_or("").to_string();
            let path = parts.next().unwrap_or("").to_string();
            let (mut headers, mut length, mut index) = (String::new(), 0usize, None);
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
                if let Some(v) = lower.strip_prefix("x-vault-index:") {
                    index = Some(v.trim().to_string());
                } else if !lower.starts_with("connection:")
                    && !lower.starts_with("host:")
                    && !lower.starts_with("x-vault-inconsistent:")
                {
                    headers.push_str(&line);
                }
            }
            let mut body = vec![0u8; length];
            reader.read_exact(&mut body).unwrap();
            let mut c = &conn;
            let respond = |c: &mut &std::net::TcpStream, status: u16, text: String| {
                let _ = write!(
                    c,
                    "HTTP/1.1 {status} Standby\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                );
            };
            if path.starts_with("/v1/sys/leader") {
                let v = serde_json::json!({"ha_enabled": true, "is_self": false,
                    "leader_address": format!("http://127.0.0.1:{dead_port}")});
                respond(&mut c, 200, v.to_string());
                continue;
            }
            {
                let mut st = state.lock().unwrap();
                let latest = format!("w{}", st.writes);
                let behind = st.writes > 0 && !path.starts_with("/v1/sys/health");
                if behind && index.as_deref() != Some(latest.as_str()) {
                    let why =
                        format!("no mount entry found (this standby has not applied {latest})");
                    respond(
                        &mut c,
                        400,
                        serde_json::json!({ "errors": [why] }).to_string(),
                    );
                    continue;
                }
                if behind && (st.lagged_for != st.writes || !catches_up) {
                    st.lagged_for = st.writes;
                    st.made_to_wait += 1;
                    respond(&mut c, 412, r#"{"errors":[]}"#.into());
                    continue;
                }
            }
            let mut up = std::net::TcpStream::connect(("127.0.0.1", upstream)).unwrap();
            write!(
                up,
                "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{upstream}\r\n{headers}\r\n"
            )
            .unwrap();
            up.write_all(&body).unwrap();
            let mut answer = Vec::new();
            up.read_to_end(&mut answer).unwrap();
            if method == "POST" {
                let mut st = state.lock().unwrap();
                st.writes += 1;
                let line_end = answer.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
                let header = format!("X-Vault-Index: w{}\r\n", st.writes);
                answer.splice(line_end..line_end, header.into_bytes());
            }
            let _ = c.write_all(&answer);
        }
    });
    (port, log)
}

/// When the active node cannot be reached, bootstrap through a standby
/// says so and reads its own writes: every request after a write carries
/// that write's index and waits while the node has not applied it.
#[test]
fn bootstrap_through_a_standby_without_its_active_node_waits_for_each_write() {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal"]);
    let bao = start_dev(&s);
    std::fs::write(s.join("token.txt"), "test-root-token\n").unwrap();
    let dead_port = free_port();
    let (port, log) = lagging_standby(bao.port, dead_port, true);
    let addr = format!("http://127.0.0.1:{port}");
    let o = ok(&s.uca(&bootstrap_args(&addr, &[])));
    let text = stdout(&o);
    assert!(
        text.contains(&format!(
            "node {addr} is a standby and the active node http://127.0.0.1:{dead_port} cannot be used (cannot reach Vault at"
        )) && text.contains("verified it chains to Test Root")
            && text.contains("bootstrap complete"),
        "{text}"
    );
    let log = log.lock().unwrap();
    assert!(
        log.writes >= 6 && log.made_to_wait >= 5,
        "writes {}, waits {}",
        log.writes,
        log.made_to_wait
    );
}

/// A standby that never applies our writes: bootstrap asks again for a
/// bounded time, then fails naming the lag, and never claims success.
#[test]
fn bootstrap_through_a_standby_that_never_catches_up_fails_in_bounded_time() {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal"]);
    let bao = start_dev(&s);
    std::fs::write(s.join("token.txt"), "test-root-token\n").unwrap();
    let (port, log) = lagging_standby(bao.port, free_port(), false);
    let addr = format!("http://127.0.0.1:{port}");
    let start = Instant::now();
    let o = s.uca(&bootstrap_args(&addr, &[]));
    let msg = fails_with(
        &o,
        &format!("Vault at {addr} did not catch up with our last write within 30 s"),
    );
    assert!(msg.contains("HTTP 412"), "{msg}");
    assert!(!stdout(&o).contains("bootstrap complete"), "{}", stdout(&o));
    assert!(start.elapsed() < Duration::from_secs(60));
    assert!(log.lock().unwrap().made_to_wait > 10);
}
