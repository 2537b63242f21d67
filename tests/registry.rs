//! `uca registry` against a real registry: Debian's `docker-registry`
//! (distribution 2.8) is started on loopback from uca's own config.yml
//! fragment (or its registry.env), and curl and skopeo use the generated
//! Docker and Podman certs.d folders exactly as those tools would. Nothing is
//! skipped for a missing program: ./test.sh installs docker-registry, curl
//! and skopeo, and a test fails naming whatever is missing.

mod common;

use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const REGISTRY_BIN: &str = "docker-registry";
const MANIFEST_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The names in a directory, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn sorted(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// Runs `uca registry --dir ca --out OUT ARGS... --passphrase-file pass.txt`.
fn uca_registry(s: &Scratch, out: &str, args: &[&str]) -> std::process::Output {
    let pass = s.pass_file();
    let mut all = vec![
        "registry",
        "--dir",
        "ca",
        "--out",
        out,
        "--passphrase-file",
        pass.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    s.uca(&all)
}

/// A running `docker-registry serve CONFIG` on 127.0.0.1, killed (and
/// reaped) when dropped, whatever the test's outcome.
struct Registry {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Registry {
    fn start(config: &Path, env: &[(String, String)], port: u16, log: &Path) -> Registry {
        let log_file = std::fs::File::create(log).unwrap();
        let mut cmd = Command::new(REGISTRY_BIN);
        cmd.arg("serve")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file);
        for (k, _) in std::env::vars() {
            if k.starts_with("REGISTRY_") {
                cmd.env_remove(k);
            }
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot run {REGISTRY_BIN}: {e}; it is Debian's docker-registry package (distribution 2.8), which ./test.sh installs (apt-get install docker-registry)"
            )
        });
        let mut reg = Registry {
            child,
            port,
            log: log.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = reg.child.try_wait().unwrap() {
                panic!(
                    "{REGISTRY_BIN} exited ({status}) before listening:\n{}",
                    reg.log_text()
                );
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return reg;
            }
            assert!(
                Instant::now() < deadline,
                "{REGISTRY_BIN} did not listen on 127.0.0.1:{port} within 30 s:\n{}",
                reg.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// uca's config.yml fragment (a top-level `http:`) merged into a minimal
/// full configuration: storage in the scratch directory, listening on
/// 127.0.0.1 instead of every interface.
fn full_config(s: &Scratch, fragment: &Path, port: u16, name: &str) -> PathBuf {
    let text = read(fragment);
    let addr = format!("  addr: \":{port}\"\n");
    assert!(
        text.contains(&addr),
        "the fragment should listen on the first host's port: {text}"
    );
    let storage = s.join(&format!("{name}-storage"));
    std::fs::create_dir_all(&storage).unwrap();
    let full = format!(
        "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: \"{}\"\n{}",
        storage.display(),
        text.replace(&addr, &format!("  addr: \"127.0.0.1:{port}\"\n"))
    );
    let path = s.join(&format!("{name}.yml"));
    std::fs::write(&path, full).unwrap();
    path
}

fn start_from_config(s: &Scratch, out: &str, port: u16, name: &str) -> Registry {
    let config = full_config(s, &s.join(&format!("{out}/config.yml")), port, name);
    Registry::start(&config, &[], port, &s.join(&format!("{name}.log")))
}

/// What curl presents: a CA file and optionally a client certificate + key.
struct Tls {
    cacert: PathBuf,
    client: Option<(PathBuf, PathBuf)>,
}

impl Tls {
    /// The files of a generated certs.d/<host> folder, as Docker uses them.
    fn certs_d(dir: &Path) -> Tls {
        Tls {
            cacert: dir.join("ca.crt"),
            client: Some((dir.join("client.cert"), dir.join("client.key"))),
        }
    }
}

struct Reply {
    /// curl exited 0 (an HTTP exchange took place).
    ok: bool,
    /// 0 when no HTTP response arrived.
    code: u16,
    headers: String,
    body: Vec<u8>,
    stderr: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .lines()
            .filter_map(|l| l.split_once(':'))
            .filter(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
            .next_back()
    }

    fn describe(&self) -> String {
        format!(
            "curl ok={} code={} stderr={}\nheaders:\n{}\nbody: {}",
            self.ok,
            self.code,
            self.stderr,
            self.headers,
            String::from_utf8_lossy(&self.body)
        )
    }
}

fn curl(tls: &Tls, method: &str, url: &str, headers: &[&str], body: Option<&[u8]>) -> Reply {
    let tmp = tempfile::tempdir().unwrap();
    let (hdr, out) = (tmp.path().join("headers"), tmp.path().join("body"));
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "20", "-X", method])
        .arg("-D")
        .arg(&hdr)
        .arg("-o")
        .arg(&out)
        .args(["-w", "%{http_code}"])
        .arg("--cacert")
        .arg(&tls.cacert)
        .stdin(Stdio::null());
    if let Some((cert, key)) = &tls.client {
        // curl reads --cert as FILE[:PASSWORD]: the colon of a
        // certs.d/<host>:<port> folder must be escaped.
        let cert = cert.to_str().unwrap().replace(':', "\\:");
        cmd.arg("--cert").arg(cert).arg("--key").arg(key);
    }
    for h in headers {
        cmd.arg("-H").arg(h);
    }
    if let Some(b) = body {
        let f = tmp.path().join("upload");
        std::fs::write(&f, b).unwrap();
        cmd.arg("--data-binary").arg(format!("@{}", f.display()));
    }
    cmd.arg(url);
    let o = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run curl: {e} (./test.sh installs it)"));
    Reply {
        ok: o.status.success(),
        code: String::from_utf8_lossy(&o.stdout)
            .trim()
            .parse()
            .unwrap_or(0),
        headers: std::fs::read_to_string(&hdr).unwrap_or_default(),
        body: std::fs::read(&out).unwrap_or_default(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn digest_of(data: &[u8]) -> String {
    format!("sha256:{}", uca::pki::x509::sha256_hex(data))
}

/// Uploads one blob (POST an upload session, PUT its content with the
/// digest) and returns the digest.
fn push_blob(reg: &Registry, tls: &Tls, repo: &str, data: &[u8]) -> String {
    let digest = digest_of(data);
    let r = curl(
        tls,
        "POST",
        &reg.url(&format!("/v2/{repo}/blobs/uploads/")),
        &[],
        Some(b""),
    );
    assert_eq!(r.code, 202, "start upload: {}", r.describe());
    let location = r.header("location").expect("upload Location header");
    let url = if location.starts_with("https://") {
        location
    } else {
        reg.url(&location)
    };
    let sep = if url.contains('?') { '&' } else { '?' };
    let r = curl(
        tls,
        "PUT",
        &format!("{url}{sep}digest={digest}"),
        &["Content-Type: application/octet-stream"],
        Some(data),
    );
    assert_eq!(r.code, 201, "finish upload: {}", r.describe());
    assert_eq!(
        r.header("docker-content-digest").as_deref(),
        Some(digest.as_str())
    );
    digest
}

/// Pushes a minimal schema 2 image (a config blob and one layer) as
/// REPO:TAG and returns the manifest's digest.
fn push_image(reg: &Registry, tls: &Tls, repo: &str, tag: &str) -> String {
    let layer = b"uca registry test layer: any bytes will do for the registry\n".to_vec();
    let layer_digest = push_blob(reg, tls, repo, &layer);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":["{layer_digest}"]}}}}"#
    );
    let config_digest = push_blob(reg, tls, repo, config.as_bytes());
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{MANIFEST_V2}","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":{},"digest":"{config_digest}"}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":{},"digest":"{layer_digest}"}}]}}"#,
        config.len(),
        layer.len()
    );
    let r = curl(
        tls,
        "PUT",
        &reg.url(&format!("/v2/{repo}/manifests/{tag}")),
        &[&format!("Content-Type: {MANIFEST_V2}")],
        Some(manifest.as_bytes()),
    );
    assert_eq!(r.code, 201, "push manifest: {}", r.describe());
    let digest = digest_of(manifest.as_bytes());
    assert_eq!(
        r.header("docker-content-digest").as_deref(),
        Some(digest.as_str())
    );
    digest
}

fn catalog(reg: &Registry, tls: &Tls) -> Vec<String> {
    let r = curl(tls, "GET", &reg.url("/v2/_catalog"), &[], None);
    assert_eq!(r.code, 200, "catalog: {}", r.describe());
    let doc: serde_json::Value = serde_json::from_slice(&r.body).expect("catalog is JSON");
    doc["repositories"]
        .as_array()
        .expect("repositories")
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// The TLS handshake (or, with TLS 1.3, the first read after it) is
/// refused: no HTTP response at all, not an HTTP error.
fn assert_refused(r: &Reply, what: &str) {
    assert!(
        !r.ok && r.code == 0,
        "{what}: the registry should refuse the TLS connection: {}",
        r.describe()
    );
}

fn openssl(args: &[&str], cwd: &Path) -> String {
    let (ok, out) = run("openssl", args, cwd);
    assert!(ok, "openssl {args:?}: {out}");
    out
}

/// One generated certs.d/<host> folder, file by file: exactly ca.crt,
/// client.cert and client.key (Docker reads every *.crt as a CA and
/// NAME.cert + NAME.key as a pair, and ignores a CA saved as .pem), modes,
/// ca.crt is the CA, client.cert a client certificate chaining to it whose
/// key is client.key.
fn check_host_folder(dir: &Path, ca_pem: &str, client: &str) {
    assert_eq!(
        names_in(dir),
        ["ca.crt", "client.cert", "client.key"],
        "{}",
        dir.display()
    );
    assert_eq!(mode(&dir.join("ca.crt")), 0o644);
    assert_eq!(mode(&dir.join("client.cert")), 0o644);
    assert_eq!(mode(&dir.join("client.key")), 0o600, "{}", dir.display());
    assert_eq!(read(&dir.join("ca.crt")), ca_pem, "ca.crt must be the CA");
    // client.cert is the certificate and, after it, the registry's client
    // CA: the chain to the root ca.crt.
    let verified = openssl(
        &[
            "verify",
            "-CAfile",
            "ca.crt",
            "-untrusted",
            "client.cert",
            "-purpose",
            "sslclient",
            "client.cert",
        ],
        dir,
    );
    assert!(verified.contains("client.cert: OK"), "{verified}");
    let text = openssl(
        &[
            "x509",
            "-in",
            "client.cert",
            "-noout",
            "-subject",
            "-ext",
            "extendedKeyUsage,subjectAltName",
        ],
        dir,
    );
    assert!(text.contains(&format!("CN = {client}")), "{text}");
    assert!(text.contains("TLS Web Client Authentication"), "{text}");
    assert!(
        !text.contains("TLS Web Server Authentication"),
        "a client identity must not be a server certificate: {text}"
    );
    assert!(text.contains(&format!("DNS:{client}")), "{text}");
    let cert_key = openssl(&["x509", "-in", "client.cert", "-noout", "-pubkey"], dir);
    let key = openssl(&["pkey", "-in", "client.key", "-pubout"], dir);
    assert_eq!(cert_key, key, "client.key does not belong to client.cert");
}

/// A containerd tree, `containerd/certs.d/HOSTDIR/` per host: hosts.toml
/// parses as TOML with containerd's keys (server, host."https://HOSTDIR"
/// with pull and resolve, ca and, for a client, client), every file it
/// names is in the folder, and the files are those of the Docker folder
/// beside it (`docker`), or, for a trust-only tree, the CA alone.
fn check_containerd_tree(tree: &Path, host_dirs: &[&str], docker: Option<&Path>) {
    assert_eq!(names_in(tree), ["certs.d"], "{}", tree.display());
    let certs_d = tree.join("certs.d");
    assert_eq!(
        names_in(&certs_d),
        sorted(host_dirs),
        "{}",
        certs_d.display()
    );
    for h in host_dirs {
        let dir = certs_d.join(h);
        let mut expected = vec!["ca.crt", "hosts.toml"];
        if docker.is_some() {
            expected.extend(["client.cert", "client.key"]);
        }
        assert_eq!(names_in(&dir), sorted(&expected), "{}", dir.display());
        let doc: toml::Table = read(&dir.join("hosts.toml")).parse().unwrap();
        let url = format!("https://{h}");
        assert_eq!(doc["server"].as_str(), Some(url.as_str()), "{doc}");
        let host = doc["host"][&url].as_table().unwrap();
        let caps: Vec<&str> = host["capabilities"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c.as_str())
            .collect();
        assert_eq!(caps, ["pull", "resolve"], "{doc}");
        assert_eq!(host["ca"].as_str(), Some("ca.crt"));
        match docker {
            Some(docker) => {
                let pair = host["client"][0].as_array().unwrap();
                assert_eq!(pair[0].as_str(), Some("client.cert"));
                assert_eq!(pair[1].as_str(), Some("client.key"));
                assert_eq!(mode(&dir.join("client.key")), 0o600);
                for f in ["ca.crt", "client.cert", "client.key"] {
                    assert_eq!(read(&dir.join(f)), read(&docker.join(h).join(f)), "{f}");
                }
            }
            None => assert!(host.get("client").is_none(), "{doc}"),
        }
    }
}

/// Both trees of one client: one folder per host, nothing else.
fn check_client(out: &Path, client: &str, host_dirs: &[&str], ca_pem: &str) {
    let base = out.join("clients").join(client);
    assert_eq!(
        names_in(&base),
        [
            "ca.pem",
            "cert.pem",
            "chain.pem",
            "containerd",
            "docker",
            "key.pem",
            "podman"
        ]
    );
    assert_eq!(mode(&base.join("key.pem")), 0o600);
    check_containerd_tree(
        &base.join("containerd"),
        host_dirs,
        Some(&base.join("docker/certs.d")),
    );
    assert_eq!(names_in(&base.join("docker")), ["certs.d"]);
    assert_eq!(names_in(&base.join("podman")), ["containers"]);
    assert_eq!(names_in(&base.join("podman/containers")), ["certs.d"]);
    for tree in ["docker/certs.d", "podman/containers/certs.d"] {
        let certs_d = base.join(tree);
        assert_eq!(
            names_in(&certs_d),
            sorted(host_dirs),
            "{}",
            certs_d.display()
        );
        for h in host_dirs {
            check_host_folder(&certs_d.join(h), ca_pem, client);
        }
    }
}

#[test]
fn a_real_registry_serves_the_generated_clients_and_refuses_every_other() {
    let s = Scratch::new();
    s.init_ca(&[
        "--permit",
        "internal",
        "--permit",
        "127.0.0.0/8",
        "--permit",
        "::1/128",
    ]);
    let port = free_port();
    let first = format!("127.0.0.1:{port}");
    let v6 = format!("[::1]:{port}");
    let o = ok(&uca_registry(
        &s,
        "out",
        &[
            &first,
            "registry.internal",
            "mirror.internal:443",
            &v6,
            "--client-auth",
            "--client",
            "ci1.internal",
            "--client",
            "build2.internal",
            "--san",
            "DNS:registry.svc.internal",
        ],
    ));
    let text = stdout(&o);

    // Exactly what was written where, and one copy hint per client.
    for needle in [
        "out/server/{cert,key,chain,ca}.pem",
        "out/config.yml",
        "out/registry.env",
        "out/clients/ci1.internal/{cert,key,chain,ca}.pem",
        "out/clients/ci1.internal/docker/certs.d/",
        "out/clients/build2.internal/podman/containers/certs.d/",
        "sudo cp -r out/clients/ci1.internal/docker/certs.d/* /etc/docker/certs.d/",
        "sudo cp -r out/clients/ci1.internal/podman/containers/certs.d/* /etc/containers/certs.d/",
        "sudo cp -r out/clients/build2.internal/docker/certs.d/* /etc/docker/certs.d/",
        "sudo cp -r out/clients/build2.internal/podman/containers/certs.d/* /etc/containers/certs.d/",
    ] {
        assert!(text.contains(needle), "stdout should mention {needle}:\n{text}");
    }
    assert_eq!(
        text.lines().filter(|l| l.contains("sudo cp -r")).count(),
        2,
        "{text}"
    );

    // The layout, file by file.
    let out = s.join("out");
    assert_eq!(
        names_in(&out),
        [
            "client-ca.pem",
            "clients",
            "config.yml",
            "registry.env",
            "server"
        ]
    );
    assert_eq!(
        names_in(&out.join("server")),
        ["ca.pem", "cert.pem", "chain.pem", "key.pem"]
    );
    assert_eq!(mode(&out.join("server/key.pem")), 0o600);
    let ca_pem = read(&s.join("ca/ca.pem"));
    assert_eq!(read(&out.join("server/ca.pem")), ca_pem);
    let server = openssl(
        &[
            "x509",
            "-in",
            "out/server/cert.pem",
            "-noout",
            "-subject",
            "-ext",
            "subjectAltName,extendedKeyUsage",
        ],
        s.path(),
    );
    for needle in [
        // Named by an IP address: no CN (OpenSSL would check it against DNS
        // constraints), so the SAN is critical.
        "X509v3 Subject Alternative Name: critical",
        "IP Address:127.0.0.1",
        "DNS:registry.internal",
        "DNS:mirror.internal",
        "IP Address:0:0:0:0:0:0:0:1",
        "DNS:registry.svc.internal",
        "TLS Web Server Authentication",
    ] {
        assert!(
            server.contains(needle),
            "server certificate lacks {needle}: {server}"
        );
    }
    assert!(!server.contains("Client Authentication"), "{server}");
    let verified = openssl(
        &[
            "verify",
            "-CAfile",
            "ca/ca.pem",
            "-purpose",
            "sslserver",
            "out/server/cert.pem",
        ],
        s.path(),
    );
    assert!(verified.contains("OK"), "{verified}");
    let host_dirs = [
        first.as_str(),
        "registry.internal",
        "mirror.internal",
        v6.as_str(),
    ];
    check_client(&out, "ci1.internal", &host_dirs, &ca_pem);
    check_client(&out, "build2.internal", &host_dirs, &ca_pem);
    assert!(
        s.files()
            .iter()
            .all(|f| !(f.contains("certs.d") && f.ends_with(".pem"))),
        "a certs.d folder holds a .pem file, which Docker ignores"
    );

    // The config fragment names the files absolutely.
    let abs = std::fs::canonicalize(s.path()).unwrap().join("out/server");
    let config = read(&out.join("config.yml"));
    for line in [
        format!("    certificate: \"{}\"", abs.join("cert.pem").display()),
        format!("    key: \"{}\"", abs.join("key.pem").display()),
        "    clientcas:".to_string(),
        format!(
            "      - \"{}\"",
            abs.parent().unwrap().join("client-ca.pem").display()
        ),
        "    minimumtls: tls1.2".to_string(),
    ] {
        assert!(
            config.lines().any(|l| l == line),
            "config.yml lacks {line:?}:\n{config}"
        );
    }

    // The real registry, configured from that fragment.
    let reg = start_from_config(&s, "out", port, "registry");
    let ci1 = Tls::certs_d(&out.join(format!("clients/ci1.internal/docker/certs.d/{first}")));
    let r = curl(&ci1, "GET", &reg.url("/v2/"), &[], None);
    assert_eq!(
        r.code,
        200,
        "GET /v2/ with the generated client certificate: {}\n{}",
        r.describe(),
        reg.log_text()
    );
    let manifest_digest = push_image(&reg, &ci1, "uca/test", "v1");
    assert!(catalog(&reg, &ci1).contains(&"uca/test".to_string()));
    let r = curl(
        &ci1,
        "GET",
        &reg.url("/v2/uca/test/manifests/v1"),
        &[&format!("Accept: {MANIFEST_V2}")],
        None,
    );
    assert_eq!(r.code, 200, "{}", r.describe());
    assert_eq!(digest_of(&r.body), manifest_digest);

    // The other client, through its Podman folder.
    let build2 = Tls::certs_d(&out.join(format!(
        "clients/build2.internal/podman/containers/certs.d/{first}"
    )));
    let r = curl(&build2, "GET", &reg.url("/v2/_catalog"), &[], None);
    assert_eq!(r.code, 200, "{}", r.describe());

    // No client certificate: refused.
    let anonymous = Tls {
        cacert: ci1.cacert.clone(),
        client: None,
    };
    assert_refused(
        &curl(&anonymous, "GET", &reg.url("/v2/"), &[], None),
        "no client certificate",
    );

    // A client certificate (same name, right profile) from another CA: refused.
    let other = Scratch::new();
    other.init_ca(&["--permit", "internal"]);
    other.issue(&["--profile", "client", "ci1.internal"]);
    let stranger = Tls {
        cacert: ci1.cacert.clone(),
        client: Some((
            other.join("certs/ci1.internal/cert.pem"),
            other.join("certs/ci1.internal/key.pem"),
        )),
    };
    assert_refused(
        &curl(&stranger, "GET", &reg.url("/v2/"), &[], None),
        "a client certificate from another CA",
    );

    // minimumtls tls1.2: TLS 1.1 is refused even with a good certificate.
    let tls11 = Command::new("curl")
        .args(["-sS", "--max-time", "20", "--tlsv1.1", "--tls-max", "1.1"])
        .arg("--cacert")
        .arg(&ci1.cacert)
        .arg(reg.url("/v2/"))
        .output()
        .expect("run curl");
    assert!(!tls11.status.success(), "TLS 1.1 was accepted");

    // skopeo with the generated Docker folder as --cert-dir.
    let cert_dir = out.join(format!("clients/ci1.internal/docker/certs.d/{first}"));
    let image = format!("docker://{first}/uca/test:v1");
    let (inspected, listing) = run(
        "skopeo",
        &["inspect", "--cert-dir", cert_dir.to_str().unwrap(), &image],
        s.path(),
    );
    assert!(
        inspected,
        "skopeo inspect with the generated certs.d folder: {listing}"
    );
    let doc: serde_json::Value = serde_json::from_str(&listing).expect("skopeo prints JSON");
    assert_eq!(doc["Digest"], manifest_digest.as_str(), "{listing}");
    assert_eq!(doc["Os"], "linux", "{listing}");

    // The same folder with the CA saved as .pem is not trusted: the names matter.
    let renamed = s.join("renamed");
    std::fs::create_dir(&renamed).unwrap();
    std::fs::copy(cert_dir.join("ca.crt"), renamed.join("ca.pem")).unwrap();
    std::fs::copy(cert_dir.join("client.cert"), renamed.join("client.cert")).unwrap();
    std::fs::copy(cert_dir.join("client.key"), renamed.join("client.key")).unwrap();
    let (inspected, listing) = run(
        "skopeo",
        &["inspect", "--cert-dir", renamed.to_str().unwrap(), &image],
        s.path(),
    );
    assert!(!inspected, "skopeo trusted a CA saved as ca.pem: {listing}");
    assert!(listing.contains("certificate"), "{listing}");
    drop(reg);
}

/// Reads KEY=VALUE lines, skipping comments.
fn env_file(path: &Path) -> Vec<(String, String)> {
    read(path)
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (k, v) = l.split_once('=').expect("KEY=VALUE");
            (k.to_string(), v.to_string())
        })
        .collect()
}

#[test]
fn registry_env_configures_the_same_tls_and_client_auth_is_what_refuses() {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal", "--permit", "127.0.0.0/8"]);
    let port = free_port();
    let host = format!("127.0.0.1:{port}");
    ok(&uca_registry(
        &s,
        "mtls",
        // A DNS name too: OpenSSL (curl) checks an IP-only certificate's
        // CN against the CA's DNS constraints.
        &[
            &host,
            "registry.internal",
            "--client-auth",
            "--client",
            "ci1.internal",
        ],
    ));
    let abs = std::fs::canonicalize(s.path()).unwrap().join("mtls/server");
    let mut env = env_file(&s.join("mtls/registry.env"));
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(
        get("REGISTRY_HTTP_ADDR").as_deref(),
        Some(format!(":{port}").as_str())
    );
    assert_eq!(
        get("REGISTRY_HTTP_TLS_CERTIFICATE"),
        Some(abs.join("cert.pem").display().to_string())
    );
    assert_eq!(
        get("REGISTRY_HTTP_TLS_KEY"),
        Some(abs.join("key.pem").display().to_string())
    );
    assert_eq!(
        get("REGISTRY_HTTP_TLS_CLIENTCAS"),
        Some(format!(
            "[{}]",
            abs.parent().unwrap().join("client-ca.pem").display()
        ))
    );
    assert_eq!(
        get("REGISTRY_HTTP_TLS_MINIMUMTLS").as_deref(),
        Some("tls1.2")
    );

    // A configuration without any TLS: the environment alone supplies it.
    let storage = s.join("env-storage");
    std::fs::create_dir(&storage).unwrap();
    let bare = s.join("bare.yml");
    std::fs::write(
        &bare,
        format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: \"{}\"\nhttp:\n  addr: 127.0.0.1:1\n",
            storage.display()
        ),
    )
    .unwrap();
    for (k, v) in env.iter_mut() {
        if k == "REGISTRY_HTTP_ADDR" {
            *v = format!("127.0.0.1:{port}");
        }
    }
    let reg = Registry::start(&bare, &env, port, &s.join("env.log"));
    let ci1 = Tls::certs_d(&s.join(&format!("mtls/clients/ci1.internal/docker/certs.d/{host}")));
    let r = curl(&ci1, "GET", &reg.url("/v2/"), &[], None);
    assert_eq!(r.code, 200, "{}\n{}", r.describe(), reg.log_text());
    let anonymous = Tls {
        cacert: ci1.cacert.clone(),
        client: None,
    };
    assert_refused(
        &curl(&anonymous, "GET", &reg.url("/v2/"), &[], None),
        "no client certificate, registry configured from registry.env",
    );
    drop(reg);

    // Without --client-auth there is no clientcas, and a client needs only the CA.
    let port = free_port();
    let host = format!("registry.internal:{port}");
    ok(&uca_registry(&s, "open", &[&host, "127.0.0.1"]));
    assert!(!read(&s.join("open/config.yml")).contains("clientcas"));
    assert!(!read(&s.join("open/registry.env")).contains("CLIENTCAS"));
    assert!(!s.join("open/clients").exists());
    let reg = start_from_config(&s, "open", port, "open");
    let anonymous = Tls {
        cacert: s.join("open/server/ca.pem"),
        client: None,
    };
    let r = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "20",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .arg("--cacert")
        .arg(&anonymous.cacert)
        .args(["--resolve", &format!("registry.internal:{port}:127.0.0.1")])
        .arg(format!("https://registry.internal:{port}/v2/"))
        .output()
        .expect("run curl");
    assert_eq!(
        String::from_utf8_lossy(&r.stdout),
        "200",
        "{}\n{}",
        String::from_utf8_lossy(&r.stderr),
        reg.log_text()
    );
    drop(reg);
}

#[test]
fn bad_hosts_ports_names_and_constraints_are_named_before_the_key_is_unlocked() {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal", "--permit", "127.0.0.0/8"]);
    let before = s.files();
    // No passphrase source at all: if the CA were unlocked first, the error
    // would be about the passphrase instead of the bad value.
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["registry.internal:99999"],
            &[
                "invalid registry host 'registry.internal:99999'",
                "1 to 65535",
            ],
        ),
        (
            &["127.0.0.1:0"],
            &["invalid registry host '127.0.0.1:0'", "1 to 65535"],
        ),
        (
            &["registry.internal:"],
            &["invalid registry host 'registry.internal:'"],
        ),
        (
            &["registry.internal:5x"],
            &["invalid registry host 'registry.internal:5x'"],
        ),
        (&["bad_host"], &["invalid registry host 'bad_host'", "'_'"]),
        (
            &["bad_host:5000"],
            &["invalid registry host 'bad_host:5000'"],
        ),
        (
            &["registry.example.com:5000"],
            &[
                "invalid registry host 'registry.example.com:5000'",
                "outside the CA's name constraints",
            ],
        ),
        (
            &["10.0.0.5:5000"],
            &[
                "invalid registry host '10.0.0.5:5000'",
                "outside the CA's name constraints",
            ],
        ),
        (
            &["registry.internal:5000", "Registry.internal:5000"],
            &[
                "invalid registry host 'Registry.internal:5000'",
                "given twice",
            ],
        ),
        (
            &["registry.internal", "--client", "ci.example.com"],
            &[
                "invalid registry client 'ci.example.com'",
                "outside the CA's name constraints",
            ],
        ),
        (
            &["registry.internal", "--client", "bad_client"],
            &["invalid registry client 'bad_client'"],
        ),
        (
            &[
                "registry.internal",
                "--client",
                "ci.internal",
                "--client",
                "CI.internal",
            ],
            &["invalid registry client 'CI.internal'", "given twice"],
        ),
        (
            &["registry.internal", "--san", "DNS:registry.example.com"],
            &[
                "invalid SAN 'DNS:registry.example.com'",
                "outside the CA's name constraints",
            ],
        ),
        (
            &["registry.internal", "--san", "registry"],
            &["invalid SAN 'registry'"],
        ),
        (
            &["registry.internal", "--days", "4000"],
            &["would outlive the CA"],
        ),
        (
            &["registry.internal", "--listen", "localhost:5000"],
            &["invalid --listen 'localhost:5000'", "IP:PORT"],
        ),
        (
            &["registry.internal", "--listen", "127.0.0.1"],
            &["invalid --listen '127.0.0.1'"],
        ),
        (
            &["registry.internal", "--listen", "127.0.0.1:0"],
            &["invalid --listen '127.0.0.1:0'", "1 to 65535"],
        ),
        (
            &["registry.internal", "--listen", ":99999"],
            &["invalid --listen ':99999'"],
        ),
        (
            &["registry.internal", "--listen", "::1:5000"],
            &["invalid --listen '::1:5000'", "[IPv6]:PORT"],
        ),
        (
            &["registry.internal", "--listen", "127.0.0.1:+50"],
            &["invalid --listen '127.0.0.1:+50'"],
        ),
    ];
    for (args, needles) in cases {
        let mut all = vec!["registry", "--dir", "ca", "--out", "out"];
        all.extend_from_slice(args);
        let err = fails_with(&s.uca(&all), needles[0]);
        for n in &needles[1..] {
            assert!(
                err.contains(n),
                "{args:?}: error should mention {n:?}: {err}"
            );
        }
        assert_eq!(s.files(), before, "{args:?} wrote something");
    }
    // A HOST is required (a usage error from the parser).
    let o = s.uca(&["registry", "--dir", "ca", "--out", "out"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(s.files(), before);
}

#[test]
fn existing_output_is_refused_without_force_and_replaced_with_it() {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal"]);
    let args = [
        "registry.internal:5000",
        "--client-auth",
        "--client",
        "ci1.internal",
    ];
    ok(&uca_registry(&s, "out", &args));
    let before = s.files();
    let cert = read(&s.join("out/server/cert.pem"));
    let config = read(&s.join("out/config.yml"));

    // Everything again, without --force (and without a passphrase: refused
    // before the key is unlocked).
    let mut all = vec!["registry", "--dir", "ca", "--out", "out"];
    all.extend_from_slice(&args);
    fails_with(&s.uca(&all), "out/server already exists; pass --force");
    // Only one client's folder exists.
    std::fs::create_dir_all(s.join("partial/clients/ci1.internal")).unwrap();
    let o = s.uca(&[
        "registry",
        "--dir",
        "ca",
        "--out",
        "partial",
        "registry.internal",
        "--client",
        "ci1.internal",
    ]);
    fails_with(
        &o,
        "partial/clients/ci1.internal already exists; pass --force",
    );
    // Only a config.yml of the operator's own.
    std::fs::create_dir(s.join("mine")).unwrap();
    std::fs::write(s.join("mine/config.yml"), "version: 0.1\n").unwrap();
    let o = s.uca(&[
        "registry",
        "--dir",
        "ca",
        "--out",
        "mine",
        "registry.internal",
    ]);
    fails_with(&o, "mine/config.yml already exists; pass --force");
    assert_eq!(read(&s.join("mine/config.yml")), "version: 0.1\n");
    // OUT is a file.
    std::fs::write(s.join("afile"), "x").unwrap();
    let o = s.uca(&[
        "registry",
        "--dir",
        "ca",
        "--out",
        "afile",
        "registry.internal",
    ]);
    fails_with(&o, "invalid --out 'afile'");
    let mut expected = before.clone();
    expected.extend(
        [
            "afile",
            "mine",
            "mine/config.yml",
            "partial",
            "partial/clients",
            "partial/clients/ci1.internal",
        ]
        .map(String::from),
    );
    expected.sort();
    assert_eq!(s.files(), expected);
    assert_eq!(read(&s.join("out/server/cert.pem")), cert);
    assert_eq!(read(&s.join("out/config.yml")), config);

    // --force replaces it all, with the same layout and new certificates.
    let mut forced = args.to_vec();
    forced.push("--force");
    ok(&uca_registry(&s, "out", &forced));
    assert_eq!(s.files(), expected);
    assert_ne!(read(&s.join("out/server/cert.pem")), cert);
    assert_eq!(read(&s.join("out/config.yml")), config);
    let ledger = read(&s.join("ca/ledger.jsonl"));
    // Each run: the server, the client CA and the client.
    assert_eq!(ledger.lines().count(), 6, "{ledger}");
    assert_eq!(
        ledger
            .lines()
            .filter(|l| l.contains("\"CN=registry.internal\""))
            .count(),
        2
    );
}

#[test]
fn a_ceremony_plan_with_a_registry_section_writes_the_same_and_seals() {
    let s = Scratch::new();
    let port = free_port();
    let plan = s.join("plan.toml");
    std::fs::write(
        &plan,
        format!(
            "[ca]\nname = \"Ceremony Root\"\npermit = [\"internal\", \"127.0.0.0/8\"]\n\n\
             [[group]]\nname = \"web\"\nnames = [\"web1.internal\"]\n\n\
             [registry]\nhosts = [\"127.0.0.1:{port}\", \"registry.internal\"]\nclient_auth = true\nclients = [\"ci1.internal\"]\nsans = [\"DNS:registry.svc.internal\"]\n"
        ),
    )
    .unwrap();
    let o = ok(&s.uca(&["ceremony", "plan.toml", "--out", "cer"]));
    let text = stdout(&o);
    // The headline counts what the manifest lists, registry included.
    assert!(
        text.starts_with(
            "ceremony complete: 4 certificates (1 from the plan's groups, 3 for its [registry]/[vault] sections) in "
        ),
        "{text}"
    );
    assert!(
        text.contains("cer/registry/server/{cert,key,chain,ca}.pem"),
        "{text}"
    );
    assert!(
        text.contains(
            "sudo cp -r cer/registry/clients/ci1.internal/docker/certs.d/* /etc/docker/certs.d/"
        ),
        "{text}"
    );
    let out = s.join("cer/registry");
    let ca_pem = read(&s.join("cer/ca/ca.pem"));
    let first = format!("127.0.0.1:{port}");
    check_client(
        &out,
        "ci1.internal",
        &[first.as_str(), "registry.internal"],
        &ca_pem,
    );
    let abs = std::fs::canonicalize(&out).unwrap();
    assert!(read(&out.join("config.yml"))
        .contains(&format!("\"{}\"", abs.join("client-ca.pem").display())));

    // Sealed, and the manifest covers the registry's certificates.
    let (verified, msg) = run(
        uca_bin().to_str().unwrap(),
        &["verify", "--manifest", "cer/ca/manifest.json"],
        s.path(),
    );
    assert!(verified && msg.contains("4 certificates"), "{msg}");

    let reg = start_from_config(&s, "cer/registry", port, "ceremony");
    let ci1 = Tls::certs_d(&out.join(format!("clients/ci1.internal/docker/certs.d/{first}")));
    let r = curl(&ci1, "GET", &reg.url("/v2/"), &[], None);
    assert_eq!(r.code, 200, "{}\n{}", r.describe(), reg.log_text());
    let anonymous = Tls {
        cacert: ci1.cacert.clone(),
        client: None,
    };
    assert_refused(
        &curl(&anonymous, "GET", &reg.url("/v2/"), &[], None),
        "no client certificate",
    );
    drop(reg);

    // A registry host outside the plan's permits: named, nothing written.
    let before = s.files();
    std::fs::write(
        &plan,
        "[ca]\nname = \"Ceremony Root\"\npermit = [\"internal\"]\n\n[registry]\nhosts = [\"registry.example.com:5000\"]\n",
    )
    .unwrap();
    fails_with(
        &s.uca(&["ceremony", "plan.toml", "--out", "cer2"]),
        "invalid registry host 'registry.example.com:5000'",
    );
    assert_eq!(s.files(), before);

    // With an existing CA, the section belongs to `uca registry`.
    s.init_ca(&["--permit", "internal"]);
    std::fs::write(&plan, "[registry]\nhosts = [\"registry.internal\"]\n").unwrap();
    let pass = s.pass_file();
    let o = s.uca(&[
        "issue",
        "--dir",
        "ca",
        "--out",
        "x",
        "--plan",
        "plan.toml",
        "--passphrase-file",
        pass.to_str().unwrap(),
    ]);
    fails_with(&o, "[registry] section is for uca ceremony");
}

#[test]
fn under_client_auth_only_the_registrys_own_clients_are_accepted() {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal", "--permit", "127.0.0.0/8"]);
    let port = free_port();
    let host = format!("127.0.0.1:{port}");
    ok(&uca_registry(
        &s,
        "out",
        &[
            &host,
            "registry.internal",
            "--client-auth",
            "--client",
            "ci1.internal",
        ],
    ));
    // A leaf of the same root that is not a registry client: the default
    // profile, both server and client authentication.
    s.issue(&["--profile", "both", "web.internal"]);
    let reg = start_from_config(&s, "out", port, "registry");
    let ci1 = Tls::certs_d(&s.join(&format!("out/clients/ci1.internal/docker/certs.d/{host}")));
    let r = curl(&ci1, "GET", &reg.url("/v2/"), &[], None);
    assert_eq!(r.code, 200, "{}\n{}", r.describe(), reg.log_text());
    let other_leaf = Tls {
        cacert: ci1.cacert.clone(),
        client: Some((
            s.join("certs/web.internal/cert.pem"),
            s.join("certs/web.internal/key.pem"),
        )),
    };
    assert_refused(
        &curl(&other_leaf, "GET", &reg.url("/v2/"), &[], None),
        "a both leaf of the same root that is not a registry client",
    );
    drop(reg);
}

/// uca's config.yml fragment as it is (its own http.addr) in a minimal full
/// configuration.
fn full_config_as_written(s: &Scratch, out: &str, name: &str) -> PathBuf {
    let storage = s.join(&format!("{name}-storage"));
    std::fs::create_dir_all(&storage).unwrap();
    let full = format!(
        "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: \"{}\"\n{}",
        storage.display(),
        read(&s.join(&format!("{out}/config.yml")))
    );
    let path = s.join(&format!("{name}.yml"));
    std::fs::write(&path, full).unwrap();
    path
}

#[test]
fn a_host_that_only_pulls_trusts_the_registry_through_the_trust_only_folder() {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal", "--permit", "127.0.0.0/8"]);
    let port = free_port();
    let host = format!("127.0.0.1:{port}");
    let listen = format!("127.0.0.1:{port}");
    let o = ok(&uca_registry(
        &s,
        "open",
        &[&host, "registry.internal", "--listen", &listen],
    ));
    let text = stdout(&o);
    assert!(
        text.contains("sudo cp -r open/trust-only/certs.d/* /etc/docker/certs.d/"),
        "{text}"
    );
    // containerd's folders beside them: hosts.toml and the CA, no client.
    assert_eq!(
        names_in(&s.join("open/trust-only")),
        ["certs.d", "containerd"]
    );
    check_containerd_tree(
        &s.join("open/trust-only/containerd"),
        &[host.as_str(), "registry.internal"],
        None,
    );
    for dir in [host.as_str(), "registry.internal"] {
        assert_eq!(
            read(&s.join(&format!("open/trust-only/containerd/certs.d/{dir}/ca.crt"))),
            read(&s.join("ca/ca.pem"))
        );
    }
    // Only the CA, one folder per host, named apart from the client folders.
    let trust = s.join("open/trust-only/certs.d");
    assert_eq!(
        names_in(&trust),
        sorted(&[host.as_str(), "registry.internal"])
    );
    let ca_pem = read(&s.join("ca/ca.pem"));
    for dir in [host.as_str(), "registry.internal"] {
        assert_eq!(names_in(&trust.join(dir)), ["ca.crt"]);
        assert_eq!(read(&trust.join(dir).join("ca.crt")), ca_pem);
        assert_eq!(mode(&trust.join(dir).join("ca.crt")), 0o644);
    }
    assert!(!s.join("open/client-ca.pem").exists());

    // --listen is the registry's address, in both forms of its settings.
    let config = read(&s.join("open/config.yml"));
    assert!(
        config.lines().any(|l| l == format!("  addr: \"{listen}\"")),
        "{config}"
    );
    let env = env_file(&s.join("open/registry.env"));
    assert!(env.contains(&("REGISTRY_HTTP_ADDR".into(), listen.clone())));

    // The real registry, started from the fragment as written.
    let config = full_config_as_written(&s, "open", "open");
    let reg = Registry::start(&config, &[], port, &s.join("open.log"));
    let anonymous = Tls {
        cacert: trust.join(&host).join("ca.crt"),
        client: None,
    };
    let digest = push_image(&reg, &anonymous, "uca/pull", "v1");
    let image = format!("docker://{host}/uca/pull:v1");
    let cert_dir = trust.join(&host);
    let (inspected, listing) = run(
        "skopeo",
        &["inspect", "--cert-dir", cert_dir.to_str().unwrap(), &image],
        s.path(),
    );
    assert!(
        inspected,
        "skopeo inspect through the trust-only folder: {listing}"
    );
    let doc: serde_json::Value = serde_json::from_str(&listing).expect("skopeo prints JSON");
    assert_eq!(doc["Digest"], digest.as_str(), "{listing}");
    let pulled = s.join("pulled");
    let (copied, log) = run(
        "skopeo",
        &[
            "copy",
            "--src-cert-dir",
            cert_dir.to_str().unwrap(),
            &image,
            &format!("dir:{}", pulled.display()),
        ],
        s.path(),
    );
    assert!(
        copied,
        "skopeo copy (a pull) through the trust-only folder: {log}"
    );
    assert!(pulled.join("manifest.json").is_file());
    // Without the folder the registry is not trusted: it is what makes the pull work.
    let empty = s.join("empty-certs");
    std::fs::create_dir(&empty).unwrap();
    let (inspected, listing) = run(
        "skopeo",
        &["inspect", "--cert-dir", empty.to_str().unwrap(), &image],
        s.path(),
    );
    assert!(
        !inspected,
        "skopeo trusted the registry without its CA: {listing}"
    );
    drop(reg);

    // Under --client-auth pulling needs a client identity: no trust-only folder.
    ok(&uca_registry(
        &s,
        "mtls",
        &[
            "registry.internal",
            "--client-auth",
            "--client",
            "ci1.internal",
        ],
    ));
    assert!(!s.join("mtls/trust-only").exists());
}

#[test]
fn the_client_ca_is_a_constrained_intermediate_whose_key_is_never_written() {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal", "--permit", "127.0.0.0/8"]);
    ok(&uca_registry(
        &s,
        "out",
        &[
            "registry.internal:5000",
            "--client-auth",
            "--client",
            "ci1.internal",
            "--client",
            "127.0.0.9",
        ],
    ));
    let text = openssl(
        &["x509", "-in", "out/client-ca.pem", "-noout", "-text"],
        s.path(),
    );
    for needle in [
        "CA:TRUE, pathlen:0",
        "Certificate Sign",
        "X509v3 Name Constraints: critical",
        "DNS:ci1.internal",
        "IP:127.0.0.9/255.255.255.255",
        "Issuer: CN = Test Root",
    ] {
        assert!(text.contains(needle), "client CA lacks {needle}: {text}");
    }
    assert!(!text.contains("DNS:internal\n"), "{text}");
    // Signed by the root, and the clients by it: chain.pem is leaf, client CA, root.
    let verified = openssl(
        &["verify", "-CAfile", "ca/ca.pem", "out/client-ca.pem"],
        s.path(),
    );
    assert!(verified.contains("OK"), "{verified}");
    let chain = read(&s.join("out/clients/ci1.internal/chain.pem"));
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 3, "{chain}");
    assert!(chain.ends_with(&read(&s.join("ca/ca.pem"))));
    assert!(chain.contains(read(&s.join("out/client-ca.pem")).trim()));
    assert_eq!(
        read(&s.join("out/clients/ci1.internal/ca.pem")),
        read(&s.join("ca/ca.pem"))
    );
    // Recorded in the ledger like any certificate the root signs.
    let ledger = read(&s.join("ca/ledger.jsonl"));
    assert!(
        ledger
            .lines()
            .any(|l| l.contains("\"profile\":\"intermediate\"") && l.contains("client-ca.pem")),
        "{ledger}"
    );
    // Its key is nowhere: the only keys written are the server's and the clients'.
    let keys: Vec<String> = s
        .files()
        .into_iter()
        .filter(|f| {
            f.starts_with("out/")
                && std::fs::read_to_string(s.join(f)).is_ok_and(|t| t.contains("PRIVATE KEY"))
        })
        .collect();
    assert_eq!(
        keys,
        sorted(&[
            "out/clients/127.0.0.9/containerd/certs.d/registry.internal:5000/client.key",
            "out/clients/ci1.internal/containerd/certs.d/registry.internal:5000/client.key",
            "out/clients/127.0.0.9/docker/certs.d/registry.internal:5000/client.key",
            "out/clients/127.0.0.9/key.pem",
            "out/clients/127.0.0.9/podman/containers/certs.d/registry.internal:5000/client.key",
            "out/clients/ci1.internal/docker/certs.d/registry.internal:5000/client.key",
            "out/clients/ci1.internal/key.pem",
            "out/clients/ci1.internal/podman/containers/certs.d/registry.internal:5000/client.key",
            "out/server/key.pem",
        ])
    );

    // A root that may not sign an intermediate cannot have a client CA:
    // refused before the key is unlocked, nothing written.
    let flat = Scratch::new();
    flat.init_ca(&["--permit", "internal", "--pathlen", "0"]);
    let before = flat.files();
    let o = flat.uca(&[
        "registry",
        "--dir",
        "ca",
        "--out",
        "out",
        "registry.internal",
        "--client-auth",
    ]);
    fails_with(&o, "path length 0");
    assert_eq!(flat.files(), before);
}

#[test]
fn a_ceremony_registry_section_takes_listen_and_refuses_a_bad_one() {
    let s = Scratch::new();
    let plan = s.join("plan.toml");
    let section = |listen: &str| {
        format!(
            "[ca]\nname = \"Ceremony Root\"\npermit = [\"internal\"]\n\n[registry]\nhosts = [\"registry.internal:5000\"]\nlisten = \"{listen}\"\n"
        )
    };
    std::fs::write(&plan, section("[::1]:5000")).unwrap();
    ok(&s.uca(&["ceremony", "plan.toml", "--out", "cer"]));
    let config = read(&s.join("cer/registry/config.yml"));
    assert!(
        config.lines().any(|l| l == "  addr: \"[::1]:5000\""),
        "{config}"
    );
    assert!(s
        .join("cer/registry/trust-only/certs.d/registry.internal:5000/ca.crt")
        .is_file());
    let before = s.files();
    std::fs::write(&plan, section("registry.internal:5000")).unwrap();
    fails_with(
        &s.uca(&["ceremony", "plan.toml", "--out", "cer2"]),
        "plan [registry]: invalid listen 'registry.internal:5000'",
    );
    assert_eq!(s.files(), before);
}
