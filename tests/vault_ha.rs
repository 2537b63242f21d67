//! OpenBao as a real HA cluster, built exactly as the README's "Vault and
//! OpenBao" section describes: three raft nodes on 127.0.0.2, .3 and .4
//! (all of 127.0.0.0/8 is loopback), each named by its address with `uca
//! vault tls --node`, each started from its own nodes/NAME/openbao.hcl as
//! uca wrote it (no file is edited), serving its own node certificate and
//! joining the others through retry_join over mutual TLS. Bootstrap goes
//! through a standby, with the AIA/CRL URLs on the cluster's address; after
//! the leader is killed, a follower issues leaves that chain to the root.
//! And a standby whose active node cannot be reached, modelled by a proxy
//! in front of a dev server: bootstrap waits there for each of its writes.
//! Fails, never skips, without OpenBao.

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

/// `bao server -config=vtls/nodes/IP/openbao.hcl`, the file as uca wrote
/// it; output in IP.log and IP.err.
fn start_node_from_its_file(s: &Scratch, ip: &str, port: u16) -> Bao {
    let config = s.join(&format!("vtls/nodes/{ip}/openbao.hcl"));
    let log = s.join(&format!("{ip}.log"));
    let mut child = bao_command()
        .args(["server", &format!("-config={}", config.display())])
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(s.join(&format!("{ip}.err"))).unwrap())
        .spawn()
        .unwrap();
    wait_for_listener(ip, port, &mut child, &log);
    Bao { child, port }
}

/// The AIA and CRL URLs of the certificate in `file`, by openssl.
fn aia_and_crl(s: &Scratch, file: &str) -> String {
    let (okx, text) = run(
        "openssl",
        &[
            "x509",
            "-in",
            file,
            "-noout",
            "-ext",
            "authorityInfoAccess,crlDistributionPoints",
        ],
        s.path(),
    );
    assert!(okx, "{file}: {text}");
    text
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
        "--host",
        "vault.internal",
        "--operator",
        "ops.internal",
        "--port",
        &port_text,
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

    // Each node starts from its own file, as written.
    let mut servers: Vec<Option<Bao>> = NODES
        .iter()
        .map(|ip| Some(start_node_from_its_file(&s, ip, port)))
        .collect();
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
    let tls_args = [
        "--cacert",
        &cacert,
        "--client-cert",
        cert.to_str().unwrap(),
        "--client-key",
        client_key.to_str().unwrap(),
    ];
    let o = ok(&s.uca(&bootstrap_args(&standby_addr, &tls_args)));
    let text = stdout(&o);
    assert!(
        text.contains(&format!(
            "node {standby_addr} is a standby; bootstrapping through the active node https://{leader}:{port}"
        )) && text.contains("verified it chains to Test Root")
            && text.contains("bootstrap complete"),
        "{text}"
    );
    // Without --cluster-addr the AIA and CRL URLs name --addr as given,
    // never the active node bootstrap moved to; here --addr is one node
    // (sys/ha-status lists it), so bootstrap warns that they die with it
    // and says how to fix it.
    assert!(
        text.contains(&format!(
            "warning: AIA/CRL URLs use {standby_addr}, one node of the cluster: they stop answering when that node is down; pass --cluster-addr"
        )),
        "{text}"
    );
    let (read, urls, err) = bao_cli(
        &["read", "-format=json", "pki_int/config/urls"],
        &with_token(standby),
    );
    assert!(
        read && urls.contains(&format!("{standby_addr}/v1/pki_int/crl"))
            && !urls.contains(&format!("https://{leader}:")),
        "{urls}{err}"
    );
    // Run again with the cluster's load-balanced address: the URLs move
    // there, and nothing else is signed.
    let cluster_addr = format!("https://vault.internal:{port}");
    let mut with_cluster = tls_args.to_vec();
    with_cluster.extend(["--cluster-addr", &cluster_addr]);
    let o = ok(&s.uca(&bootstrap_args(&standby_addr, &with_cluster)));
    let text = stdout(&o);
    assert!(
        text.contains(&format!("AIA/CRL URLs use {cluster_addr} (--cluster-addr)"))
            && text.contains("already bootstrapped")
            && !text.contains("warning:"),
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
    // The leaf points at the cluster's address, which outlives the old leader.
    let urls = aia_and_crl(&s, &leaf);
    assert!(
        urls.contains(&format!("CA Issuers - URI:{cluster_addr}/v1/pki_int/ca"))
            && urls.contains(&format!("URI:{cluster_addr}/v1/pki_int/crl"))
            && !urls.contains(leader),
        "{urls}"
    );
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
    let log = std::sync::Arc::new(std::sync::Mutex::new(StandbyLog::default()));
    let state = log.clone();
    let port = http_proxy(upstream, move |r| {
        if r.path.starts_with("/v1/sys/leader") {
            let v = serde_json::json!({"ha_enabled": true, "is_self": false,
                "leader_address": format!("http://127.0.0.1:{dead_port}")});
            return ProxyAction::Answer(200, v.to_string());
        }
        let index = r.header("x-vault-index");
        r.drop_header("x-vault-index");
        r.drop_header("x-vault-inconsistent");
        let mut st = state.lock().unwrap();
        let latest = format!("w{}", st.writes);
        let behind = st.writes > 0 && !r.path.starts_with("/v1/sys/health");
        if behind && index.as_deref() != Some(latest.as_str()) {
            let why = format!("no mount entry found (this standby has not applied {latest})");
            return ProxyAction::Answer(400, serde_json::json!({ "errors": [why] }).to_string());
        }
        if behind && (st.lagged_for != st.writes || !catches_up) {
            st.lagged_for = st.writes;
            st.made_to_wait += 1;
            return ProxyAction::Answer(412, r#"{"errors":[]}"#.into());
        }
        if r.method != "POST" {
            return ProxyAction::Forward(None);
        }
        // uca sends one request at a time: the write counted now is the
        // one whose answer carries the new index.
        st.writes += 1;
        let header = format!("X-Vault-Index: w{}", st.writes);
        ProxyAction::Forward(Some(Box::new(move |answer| answer.insert_header(&header))))
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

/// A plain HTTP GET of `url` (http://127.0.0.1:PORT/...): the status code
/// and the body, as a TLS client fetching an AIA or CRL URL sees them,
/// with no token and no namespace header.
fn http_get(url: &str) -> (u16, Vec<u8>) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut conn = std::net::TcpStream::connect(host).unwrap();
    write!(conn, "GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).unwrap();
    let end = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&answer[..end]).into_owned();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, answer[end + 4..].to_vec())
}

/// The issuing and CRL URLs bootstrap writes answer where they point: in a
/// namespace the path names it (a client fetching them sends no namespace
/// header); with --cluster-addr they name that address, and bootstrap says
/// which address it wrote and why.
#[test]
fn the_urls_bootstrap_writes_answer_in_a_namespace_and_name_the_cluster_address() {
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
    let o = ok(&s.uca(&bootstrap_args(&addr, &["--namespace", "team-a"])));
    let text = stdout(&o);
    assert!(
        text.contains(&format!("AIA/CRL URLs use {addr} (--addr)")),
        "{text}"
    );
    let urls = |env: &[(&str, String)]| {
        let (okr, out, err) = bao_cli(
            &[
                "read",
                "-format=json",
                "-namespace=team-a",
                "pki_int/config/urls",
            ],
            env,
        );
        assert!(okr, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        (
            v["data"]["issuing_certificates"][0]
                .as_str()
                .unwrap()
                .to_string(),
            v["data"]["crl_distribution_points"][0]
                .as_str()
                .unwrap()
                .to_string(),
        )
    };
    let (issuing, crl) = urls(&env);
    assert_eq!(issuing, format!("{addr}/v1/team-a/pki_int/ca"));
    let (status, der) = http_get(&issuing);
    assert_eq!(status, 200, "{issuing}: {}", String::from_utf8_lossy(&der));
    std::fs::write(s.join("aia.der"), &der).unwrap();
    let (okx, subject) = run(
        "openssl",
        &[
            "x509", "-inform", "DER", "-in", "aia.der", "-noout", "-subject",
        ],
        s.path(),
    );
    assert!(okx && subject.contains("Vault Intermediate"), "{subject}");
    let (status, body) = http_get(&crl);
    assert_eq!(status, 200, "{crl}: {}", String::from_utf8_lossy(&body));

    let o = ok(&s.uca(&bootstrap_args(
        &addr,
        &[
            "--namespace",
            "team-a",
            "--cluster-addr",
            "https://vault.internal:8200/",
        ],
    )));
    let text = stdout(&o);
    assert!(
        text.contains("AIA/CRL URLs use https://vault.internal:8200 (--cluster-addr)"),
        "{text}"
    );
    assert_eq!(
        urls(&env),
        (
            "https://vault.internal:8200/v1/team-a/pki_int/ca".to_string(),
            "https://vault.internal:8200/v1/team-a/pki_int/crl".to_string()
        )
    );
}

/// A plan's `[vault]` takes `cluster_addr` as bootstrap takes
/// `--cluster-addr`: checked before the root exists, then written into the
/// issuing and CRL URLs.
#[test]
fn a_plan_names_the_cluster_address_for_the_urls() {
    let s = Scratch::new();
    let bao = start_dev(&s);
    std::fs::write(s.join("token.txt"), "test-root-token\n").unwrap();
    let plan = |cluster_addr: &str| {
        format!(
            "[ca]\nname = \"Ceremony Root\"\npermit = [\"internal\"]\n\n[[group]]\nname = \"svc\"\nnames = [\"svc1.internal\"]\n\n\
             [vault]\naddr = \"http://127.0.0.1:{}\"\ntoken_file = \"token.txt\"\nrole = \"svc\"\nallowed_domains = [\"svc.internal\"]\n\
             cluster_addr = \"{cluster_addr}\"\n",
            bao.port
        )
    };
    std::fs::write(s.join("bad.toml"), plan("vault.internal:8200")).unwrap();
    fails_with(
        &s.uca(&["ceremony", "bad.toml", "--out", "bad"]),
        "invalid cluster_addr 'vault.internal:8200'",
    );
    assert!(!s.join("bad").exists());
    std::fs::write(s.join("plan.toml"), plan("https://vault.internal:8200")).unwrap();
    let o = ok(&s.uca(&["ceremony", "plan.toml", "--out", "out"]));
    let text = stdout(&o);
    assert!(
        text.contains("configured URLs: issuing https://vault.internal:8200/v1/pki_int/ca, CRL https://vault.internal:8200/v1/pki_int/crl"),
        "{text}"
    );
}
