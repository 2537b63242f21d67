//! The complete OpenBao configurations `uca vault tls` writes, read back
//! without starting a server: each node's nodes/NAME/openbao.hcl (raft with
//! a retry_join to every other node, its own listener, api_addr and
//! cluster_addr naming it), a single server's openbao.hcl, PostgreSQL
//! storage shared by nodes, and the options that choose ports, addresses
//! and the raft directory. tests/vault_ha.rs starts a cluster from them.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;

/// An HCL body: attributes and blocks, as OpenBao's configuration uses
/// them (`key = "string" | true | false | number`, `name ["label"] { ... }`).
#[derive(Debug, Default)]
struct Body {
    attrs: BTreeMap<String, String>,
    blocks: Vec<(String, Option<String>, Body)>,
}

impl Body {
    fn attr(&self, key: &str) -> &str {
        self.attrs
            .get(key)
            .unwrap_or_else(|| panic!("no {key} in {self:?}"))
    }

    fn blocks<'a>(&'a self, name: &'a str) -> impl Iterator<Item = (&'a str, &'a Body)> + 'a {
        self.blocks
            .iter()
            .filter(move |(n, _, _)| n == name)
            .map(|(_, label, body)| (label.as_deref().unwrap_or(""), body))
    }

    fn block<'a>(&'a self, name: &'a str, label: &str) -> &'a Body {
        let found: Vec<_> = self.blocks(name).filter(|(l, _)| *l == label).collect();
        assert_eq!(found.len(), 1, "{name} \"{label}\" in {self:?}");
        found[0].1
    }
}

/// The tokens of HCL text: words, strings (unescaped), `=`, `{`, `}`.
fn tokens(text: &str) -> Vec<(bool, String)> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '#' => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '"' => {
                let mut s = String::new();
                loop {
                    match chars.next().expect("unterminated string") {
                        '"' => break,
                        '\\' => s.push(chars.next().unwrap()),
                        c => s.push(c),
                    }
                }
                out.push((true, s));
            }
            '=' | '{' | '}' => out.push((false, c.to_string())),
            c if c.is_whitespace() => {}
            c => {
                let mut w = c.to_string();
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || "={}\"#".contains(n) {
                        break;
                    }
                    w.push(n);
                    chars.next();
                }
                out.push((false, w));
            }
        }
    }
    out
}

fn parse_body(toks: &mut std::iter::Peekable<std::vec::IntoIter<(bool, String)>>) -> Body {
    let mut body = Body::default();
    while let Some((_, word)) = toks.next() {
        if word == "}" {
            return body;
        }
        match toks.next().expect("a body ends early") {
            (false, eq) if eq == "=" => {
                let (_, value) = toks.next().expect("a value");
                assert!(
                    body.attrs.insert(word.clone(), value).is_none(),
                    "{word} set twice"
                );
            }
            (true, label) => {
                assert_eq!(toks.next().map(|t| t.1).as_deref(), Some("{"));
                body.blocks.push((word, Some(label), parse_body(toks)));
            }
            (false, brace) if brace == "{" => body.blocks.push((word, None, parse_body(toks))),
            other => panic!("unexpected {other:?} after {word}"),
        }
    }
    body
}

fn parse(path: &Path) -> Body {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(!text.contains("NODE"), "a placeholder is left in:\n{text}");
    parse_body(&mut tokens(&text).into_iter().peekable())
}

/// The subjectAltName line of a certificate file, by openssl.
fn sans(s: &Scratch, cert: &str) -> String {
    let (okx, text) = run(
        "openssl",
        &["x509", "-in", cert, "-noout", "-ext", "subjectAltName"],
        s.path(),
    );
    assert!(okx, "{cert}: {text}");
    text
}

/// A file named in a configuration: an absolute path that exists.
fn existing_absolute(path: &str) -> &str {
    assert!(Path::new(path).is_absolute(), "{path} is not absolute");
    assert!(Path::new(path).is_file(), "{path} does not exist");
    path
}

fn vault_tls(s: &Scratch, extra: &[&str]) -> std::process::Output {
    let pass = s.pass_file();
    let mut args = vec![
        "vault",
        "tls",
        "--dir",
        "ca",
        "--out",
        "vtls",
        "--passphrase-file",
        pass.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    s.uca(&args)
}

const NODES: [&str; 3] = ["127.0.0.2", "127.0.0.3", "127.0.0.4"];

#[test]
fn each_node_gets_a_complete_configuration_naming_itself_and_joining_the_others() {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal", "--permit", "127.0.0.0/8"]);
    let mut args = vec![
        "--host",
        "vault.internal",
        "--operator",
        "ops.internal",
        "--port",
        "18200",
        "--cluster-port",
        "18300",
        "--raft-dir",
        "data",
    ];
    for n in NODES {
        args.extend(["--node", n]);
    }
    let o = ok(&vault_tls(&s, &args));
    let out = s.path().canonicalize().unwrap();
    let vtls = out.join("vtls");
    for n in NODES {
        let file = format!("vtls/nodes/{n}/openbao.hcl");
        assert!(
            stdout(&o).contains(&format!("wrote {file} (OpenBao server {n}, complete")),
            "{}",
            stdout(&o)
        );
        let conf = parse(&s.join(&file));
        let own = |f: &str| vtls.join(format!("nodes/{n}/{f}")).display().to_string();

        let raft = conf.block("storage", "raft");
        assert_eq!(
            raft.attr("path"),
            out.join(format!("data/{n}")).display().to_string()
        );
        assert_eq!(raft.attr("node_id"), n);
        let joins: Vec<&Body> = raft.blocks("retry_join").map(|b| b.1).collect();
        let others: Vec<String> = NODES
            .iter()
            .filter(|o| **o != n)
            .map(|o| format!("https://{o}:18200"))
            .collect();
        let targets: Vec<&str> = joins.iter().map(|j| j.attr("leader_api_addr")).collect();
        assert_eq!(targets, others, "{file}");
        for j in &joins {
            assert_eq!(j.attr("leader_ca_cert_file"), own("ca.pem"));
            assert_eq!(j.attr("leader_client_cert_file"), own("cert.pem"));
            assert_eq!(j.attr("leader_client_key_file"), own("key.pem"));
        }

        let listener = conf.block("listener", "tcp");
        assert_eq!(listener.attr("address"), format!("{n}:18200"));
        assert_eq!(listener.attr("cluster_address"), format!("{n}:18300"));
        assert_eq!(listener.attr("tls_require_and_verify_client_cert"), "true");
        let cert = existing_absolute(listener.attr("tls_cert_file"));
        assert_eq!(cert, own("cert.pem"));
        existing_absolute(listener.attr("tls_key_file"));
        existing_absolute(listener.attr("tls_client_ca_file"));
        // The node answers to the name the others join it by, and to the
        // name clients use.
        let names = sans(&s, cert);
        assert!(
            names.contains(&format!("IP Address:{n}")) && names.contains("DNS:vault.internal"),
            "{cert}: {names}"
        );
        assert_eq!(conf.attr("api_addr"), format!("https://{n}:18200"));
        assert_eq!(conf.attr("cluster_addr"), format!("https://{n}:18300"));
        assert_eq!(conf.attr("disable_mlock"), "true");
        assert_eq!(conf.blocks.len(), 2, "{file}: {conf:?}");
    }
    // The stanzas of earlier versions are still written, with the ports.
    let listener = std::fs::read_to_string(s.join("vtls/listener.hcl")).unwrap();
    assert!(
        listener.contains("cluster_address = \"0.0.0.0:18300\"")
            && listener.contains("cluster_addr = \"https://NODE:18300\""),
        "{listener}"
    );
    // uca creates no raft directory: OpenBao does, on first start.
    assert!(!s.join("data").exists());
}

#[test]
fn nodes_named_by_dns_bind_every_address_and_address_overrides_for_all() {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal", "--permit", "10.0.0.0/8"]);
    ok(&vault_tls(
        &s,
        &[
            "--host",
            "vault.internal",
            "--node",
            "vault1.internal",
            "--node",
            "10.0.0.12",
        ],
    ));
    let dns = parse(&s.join("vtls/nodes/vault1.internal/openbao.hcl"));
    assert_eq!(dns.block("listener", "tcp").attr("address"), "0.0.0.0:8200");
    assert_eq!(dns.attr("api_addr"), "https://vault1.internal:8200");
    assert_eq!(dns.attr("cluster_addr"), "https://vault1.internal:8201");
    let default_raft = s
        .path()
        .canonicalize()
        .unwrap()
        .join("vtls/raft/vault1.internal");
    assert_eq!(
        dns.block("storage", "raft").attr("path"),
        default_raft.display().to_string()
    );
    let ip = parse(&s.join("vtls/nodes/10.0.0.12/openbao.hcl"));
    assert_eq!(
        ip.block("listener", "tcp").attr("address"),
        "10.0.0.12:8200"
    );
    // The DNS-named node's certificate names it: the others join it by it.
    let names = sans(&s, "vtls/nodes/vault1.internal/cert.pem");
    assert!(names.contains("DNS:vault1.internal"), "{names}");

    let s = Scratch::new();
    s.init_ca(&["--permit", "internal", "--permit", "10.0.0.0/8"]);
    ok(&vault_tls(
        &s,
        &[
            "--host",
            "vault.internal",
            "--node",
            "10.0.0.12",
            "--node",
            "10.0.0.13",
            "--address",
            "::",
        ],
    ));
    let ip = parse(&s.join("vtls/nodes/10.0.0.12/openbao.hcl"));
    let listener = ip.block("listener", "tcp");
    assert_eq!(listener.attr("address"), "[::]:8200");
    assert_eq!(listener.attr("cluster_address"), "[::]:8201");
}

#[test]
fn a_single_server_gets_a_complete_configuration_too() {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal"]);
    ok(&vault_tls(
        &s,
        &["--host", "vault.internal", "--operator", "ops.internal"],
    ));
    let conf = parse(&s.join("vtls/openbao.hcl"));
    let vtls = s.path().canonicalize().unwrap().join("vtls");
    let raft = conf.block("storage", "raft");
    assert_eq!(raft.attr("node_id"), "vault.internal");
    assert_eq!(
        raft.attr("path"),
        vtls.join("raft/vault.internal").display().to_string()
    );
    assert_eq!(raft.blocks("retry_join").count(), 0);
    let listener = conf.block("listener", "tcp");
    assert_eq!(listener.attr("address"), "0.0.0.0:8200");
    assert_eq!(
        existing_absolute(listener.attr("tls_cert_file")),
        vtls.join("listener/cert.pem").display().to_string()
    );
    assert_eq!(conf.attr("api_addr"), "https://vault.internal:8200");
    assert_eq!(conf.attr("cluster_addr"), "https://vault.internal:8201");
}

#[test]
fn nodes_sharing_postgresql_storage_take_turns_being_active() {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal"]);
    ok(&vault_tls(
        &s,
        &[
            "--host",
            "vault.internal",
            "--node",
            "vault1.internal",
            "--node",
            "vault2.internal",
            "--storage",
            "postgresql://openbao.db.internal@db.internal/openbao",
        ],
    ));
    let vtls = s.path().canonicalize().unwrap().join("vtls");
    for n in ["vault1.internal", "vault2.internal"] {
        let conf = parse(&s.join(&format!("vtls/nodes/{n}/openbao.hcl")));
        assert_eq!(conf.blocks("storage").count(), 1);
        let pg = conf.block("storage", "postgresql");
        assert_eq!(pg.attr("ha_enabled"), "true");
        let url = pg.attr("connection_url");
        let client = vtls.join("storage/client").display().to_string();
        assert!(
            url.starts_with(
                "postgres://openbao.db.internal@db.internal:5432/openbao?sslmode=verify-full"
            ) && url.contains(&format!("sslcert={client}/cert.pem")),
            "{url}"
        );
        assert_eq!(conf.attr("api_addr"), format!("https://{n}:8200"));
    }
}

#[test]
fn bad_ports_addresses_and_raft_directories_are_refused_before_anything_is_written() {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal"]);
    let node = ["--host", "vault.internal", "--node", "vault1.internal"];
    for (extra, needle) in [
        (
            vec!["--port", "8200", "--cluster-port", "8200"],
            "invalid --cluster-port '8200'",
        ),
        (vec!["--cluster-port", "0"], "invalid --cluster-port '0'"),
        (
            vec!["--port", "65535"],
            "invalid --port '65535': expected 1 to 65534 (the cluster port is PORT+1), or give --cluster-port",
        ),
        (vec!["--address", "vault.internal"], "invalid --address"),
        (
            vec![
                "--raft-dir",
                "data",
                "--storage",
                "postgresql://openbao@db.internal/openbao",
            ],
            "invalid --raft-dir 'data'",
        ),
    ] {
        let mut args = node.to_vec();
        args.extend(extra);
        fails_with(&vault_tls(&s, &args), needle);
        assert!(!s.join("vtls").exists(), "{args:?} wrote output");
    }
    let mut args = node.to_vec();
    args.extend(["--port", "65535", "--cluster-port", "8201"]);
    ok(&vault_tls(&s, &args));
    let conf = parse(&s.join("vtls/nodes/vault1.internal/openbao.hcl"));
    assert_eq!(conf.attr("cluster_addr"), "https://vault1.internal:8201");
    // Nothing is replaced without --force, the configurations included.
    fails_with(&vault_tls(&s, &args), "already exists; pass --force");
    // A single server's configuration sits beside the certificates.
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal"]);
    std::fs::create_dir(s.join("vtls")).unwrap();
    std::fs::write(s.join("vtls/openbao.hcl"), "mine").unwrap();
    fails_with(
        &vault_tls(&s, &["--host", "vault.internal"]),
        "vtls/openbao.hcl already exists; pass --force",
    );
    assert_eq!(
        std::fs::read_to_string(s.join("vtls/openbao.hcl")).unwrap(),
        "mine"
    );
    assert!(!s.join("vtls/listener").exists());
}

#[test]
fn bootstrap_refuses_a_cluster_address_that_is_not_one_before_contacting_vault() {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal"]);
    std::fs::write(s.join("token.txt"), "t\n").unwrap();
    // Nothing listens at the node's address: the check comes first.
    let port = free_port().to_string();
    let addr = format!("http://127.0.0.1:{port}");
    for bad in [
        "vault.internal:8200",
        "ftp://vault.internal",
        "https://vault.internal:8200/v1/pki",
        "https://vault.internal:0",
        "https://user@vault.internal",
        "https://bad_name.internal",
    ] {
        let o = s.uca(&[
            "vault",
            "bootstrap",
            "--dir",
            "ca",
            "--addr",
            &addr,
            "--token-file",
            "token.txt",
            "--allowed-domain",
            "svc.internal",
            "--passphrase-file",
            "pass.txt",
            "--cluster-addr",
            bad,
        ]);
        fails_with(&o, &format!("invalid --cluster-addr '{bad}'"));
    }
}

/// `uca vault commands` takes --cluster-addr as bootstrap does: the printed
/// URL step names it; without it, a comment says the URLs name one node.
#[test]
fn vault_commands_write_the_cluster_address_into_the_urls() {
    let s = Scratch::new();
    let commands = |extra: &[&str]| {
        let mut args = vec![
            "vault",
            "commands",
            "--dir",
            "/srv/ca",
            "--allowed-domain",
            "svc.internal",
        ];
        args.extend_from_slice(extra);
        s.uca(&args)
    };
    let text = stdout(&ok(&commands(&[
        "--cluster-addr",
        "https://vault.internal:8200/",
    ])));
    assert!(
        text.contains(
            "bao write pki_int/config/urls issuing_certificates=https://vault.internal:8200/v1/pki_int/ca crl_distribution_points=https://vault.internal:8200/v1/pki_int/crl\n"
        ) && !text.contains("name the node these commands run against"),
        "{text}"
    );
    let text = stdout(&ok(&commands(&[])));
    assert!(
        text.contains("# The AIA/CRL URLs name the node these commands run against; in a cluster, pass --cluster-addr"),
        "{text}"
    );
    let o = commands(&["--cluster-addr", "https://vault.internal:8200/v1"]);
    fails_with(
        &o,
        "invalid --cluster-addr 'https://vault.internal:8200/v1'",
    );
    assert!(stdout(&o).is_empty());
}

/// Paths go into HCL strings and comments: one with a control character
/// (a newline would end the line and turn the rest into configuration) is
/// refused before anything is written.
#[test]
fn paths_that_would_break_out_of_the_configuration_are_refused() {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal"]);
    let o = s.uca(&[
        "vault",
        "tls",
        "--dir",
        "ca",
        "--out",
        "v\nui = true\n#",
        "--host",
        "vault.internal",
        "--passphrase-file",
        "pass.txt",
    ]);
    fails_with(&o, "invalid --out '");
    let o = vault_tls(
        &s,
        &[
            "--host",
            "vault.internal",
            "--raft-dir",
            "r\"\n}\nui = true",
        ],
    );
    fails_with(&o, "invalid --raft-dir '");
    let made: Vec<String> = s
        .files()
        .into_iter()
        .filter(|f| f != "ca" && !f.starts_with("ca/"))
        .collect();
    assert_eq!(made, vec!["pass.txt".to_string()], "{made:?}");
}
