//! The services' own identity checks on uca's client certificates, issued
//! with a subject template: each service below maps a client certificate's
//! subject to one of its users, accepts the client it was configured for
//! and refuses other clients of the same root, among them one with the
//! same CN under another OU. The real servers from Debian run on
//! 127.0.0.1 (free ports, scratch data directories), once per key type
//! (P-256, RSA-2048):
//!
//! * PostgreSQL: `cert` authentication with `clientcert=verify-full`,
//!   `clientname=DN` and a `pg_ident.conf` regex on the subject;
//! * mosquitto: `use_subject_as_username` and an ACL on that user name;
//! * RabbitMQ: the EXTERNAL mechanism (`rabbitmq_auth_mechanism_ssl`) with
//!   `ssl_cert_login_from = distinguished_name`, spoken by a minimal AMQP
//!   0-9-1 client (tests/identity/amqp_external.py).
//!
//! The tests fail, never skip, when a server is missing (./test.sh installs
//! them). Every wait is bounded; every server runs in its own process group,
//! stopped with everything it forked when the test ends, passed or failed.
//! PostgreSQL refuses to run as root, so under root the servers run as
//! `nobody` from a directory that user owns.

mod common;

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

// --- The clients and their subjects: the one place the tests depend on it --

/// The subject template the clients are issued with (`uca issue
/// --subject`).
const SUBJECT_TEMPLATE: &str = "O=Acme,OU=dba,CN={name}";

/// The impostor's subject template: alice's CN under another OU.
const IMPOSTOR_TEMPLATE: &str = "O=Acme,OU=ops,CN={name}";

/// The clients of the same root that every service must refuse where it
/// lets alice in: bob, and the impostor, whom only the subject beyond the
/// CN tells from alice (a service that read the CN alone would let it in).
const REFUSED_CLIENTS: [&str; 2] = ["bob", "impostor"];

/// A client's subject as all three services spell it: RFC 4514 (PostgreSQL's
/// `clientname=DN`, mosquitto's `use_subject_as_username`, RabbitMQ's
/// `distinguished_name`), as OpenSSL prints it with `-nameopt RFC2253`.
/// RFC 4514 starts from the last RDN, and uca writes a template's RDNs in
/// the order given, so the services read `O=Acme,OU=dba,CN=alice` as
/// `CN=alice,OU=dba,O=Acme`. (The templates here have no escaped commas.)
fn subject_of(client: &str) -> String {
    let (template, name) = match client {
        "impostor" => (IMPOSTOR_TEMPLATE, "alice"),
        name => (SUBJECT_TEMPLATE, name),
    };
    let written = template.replace("{name}", name);
    let mut rdns: Vec<&str> = written.split(',').collect();
    rdns.reverse();
    rdns.join(",")
}

/// The directory of a client's cert.pem and key.pem in the scratch
/// directory.
fn client_dir(client: &str) -> String {
    match client {
        "impostor" => "impostor/alice".into(),
        name => format!("certs/{name}"),
    }
}

// --- Certificates ---------------------------------------------------------

/// The key types the identity checks run with.
const P256: &str = "ec-p256";
const RSA2048: &str = "rsa-2048";

/// A root of key type `key`, the server certificate `certs/127.0.0.1` and
/// the clients' certificates, all of that key type; asserts each client's
/// subject is the one the services will read.
fn pki(key: &str) -> Scratch {
    let s = Scratch::new();
    s.init_ca(&["--key", key]);
    s.issue(&["--profile", "server", "--key", key, "127.0.0.1"]);
    let client = ["--profile", "client", "--key", key];
    let subject = ["--subject", SUBJECT_TEMPLATE];
    s.issue(&[&client[..], &subject, &["alice", "bob"]].concat());
    // The impostor: alice's name again, in another output directory.
    let pass_file = s.pass_file();
    let out = ["issue", "--dir", "ca", "--out", "impostor"];
    let pass = ["--passphrase-file", pass_file.to_str().unwrap()];
    let subject = ["--subject", IMPOSTOR_TEMPLATE, "alice"];
    ok(&s.uca(&[&out[..], &pass, &client, &subject].concat()));
    for client in std::iter::once("alice").chain(REFUSED_CLIENTS) {
        let cert = format!("{}/cert.pem", client_dir(client));
        let (okx, out) = run(
            "openssl",
            &[
                "x509", "-in", &cert, "-noout", "-subject", "-nameopt", "RFC2253",
            ],
            s.path(),
        );
        assert!(okx, "{out}");
        assert_eq!(out.trim(), format!("subject={}", subject_of(client)));
    }
    s
}

fn client_files(s: &Scratch, client: &str) -> (String, String) {
    let dir = s.join(&client_dir(client));
    let file = |f: &str| dir.join(f).display().to_string();
    (file("cert.pem"), file("key.pem"))
}

fn root(s: &Scratch) -> String {
    s.join("ca/ca.pem").display().to_string()
}

// --- Servers and clients ----------------------------------------------------

/// The user the servers run as under root (nobody); PostgreSQL refuses
/// root and mosquitto would switch to a user of its own.
const SERVER_UID: u32 = 65534;

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// `program` as the servers' user: through setpriv (which execs, so the
/// process is the server itself) under root, directly otherwise.
fn as_server_user(program: impl Into<OsString>) -> Command {
    if running_as_root() {
        let mut cmd = Command::new("setpriv");
        let id = SERVER_UID.to_string();
        cmd.args([
            format!("--reuid={id}"),
            format!("--regid={id}"),
            "--clear-groups".into(),
            "--".into(),
        ])
        .arg(program.into());
        cmd
    } else {
        Command::new(program.into())
    }
}

/// A client program run to completion within `seconds` (coreutils
/// `timeout` ends it otherwise), with HOME in the scratch directory so no
/// personal configuration is read. Returns (success, stdout + stderr).
fn client(s: &Scratch, seconds: u64, program: &str, args: &[&str]) -> (bool, String) {
    let o = Command::new("timeout")
        .args(["-k", "5", &seconds.to_string(), program])
        .args(args)
        .env("HOME", s.path())
        .env("XDG_CONFIG_HOME", s.path())
        .current_dir(s.path())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert_ne!(
        o.status.code(),
        Some(124),
        "{program} {args:?} did not finish within {seconds} s"
    );
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

/// A directory `name` for a server, holding its certificate, key and the
/// root (cert.pem, key.pem, ca.pem); owned by the servers' user.
fn server_dir(s: &Scratch, name: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = s.join(name);
    std::fs::create_dir(&dir).unwrap();
    for f in ["cert.pem", "key.pem", "ca.pem"] {
        std::fs::copy(s.join(&format!("certs/127.0.0.1/{f}")), dir.join(f)).unwrap();
    }
    if running_as_root() {
        // The servers' user passes through the scratch directory (without
        // listing it) and owns its own directory.
        std::fs::set_permissions(s.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        for entry in std::iter::once(dir.clone())
            .chain(std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()))
        {
            std::os::unix::fs::chown(&entry, Some(SERVER_UID), Some(SERVER_UID)).unwrap();
        }
    }
    dir
}

/// A server the test started, leader of its own process group.
struct Service {
    name: &'static str,
    child: Child,
    log: PathBuf,
    /// The signal that asks it to stop cleanly; SIGKILL follows in 10 s.
    stop: i32,
}

impl Service {
    fn spawn(name: &'static str, mut cmd: Command, log: PathBuf, stop: i32) -> Service {
        let file = std::fs::File::create(&log).unwrap();
        let child = cmd
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e} (./test.sh installs it)"));
        Service {
            name,
            child,
            log,
            stop,
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits up to `seconds` for `ready`, failing with the server's log if
    /// the server exits first or the time runs out.
    fn wait_until(&mut self, seconds: u64, what: &str, mut ready: impl FnMut(&Self) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        loop {
            if ready(self) {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("{} exited with {status}:\n{}", self.name, self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "{} not {what} within {seconds} s:\n{}",
                self.name,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn wait_for_port(&mut self, port: u16, seconds: u64) {
        self.wait_until(seconds, &format!("listening on 127.0.0.1:{port}"), |_| {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        // The whole group: the server and every process it forked.
        let group = -(self.child.id() as i32);
        // SAFETY: kill has no memory-safety preconditions; the group is the
        // one this test created for its own server.
        unsafe { libc::kill(group, self.stop) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        // SAFETY: as above.
        unsafe { libc::kill(group, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

// --- PostgreSQL -------------------------------------------------------------

/// Debian's PostgreSQL server programs (initdb, postgres, psql), in
/// /usr/lib/postgresql/VERSION/bin, outside PATH.
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

/// `text` with every regular-expression metacharacter escaped.
fn regex_literal(text: &str) -> String {
    text.chars().fold(String::new(), |mut out, c| {
        if ".^$*+?()[]{}|\\".contains(c) {
            out.push('\\');
        }
        out.push(c);
        out
    })
}

/// The client authentication the test configures: over TCP only TLS, a
/// client certificate that chains to the root and names the server
/// (verify-full), and the certificate's subject (DN) mapped through
/// pg_ident.conf to the role it may log in as: the CN of a subject of the
/// clients' form.
fn postgres_auth() -> (String, String) {
    let hba = "local all postgres trust\n\
               hostssl all all 127.0.0.1/32 cert clientcert=verify-full clientname=DN map=uca\n";
    let pattern = regex_literal(&subject_of("\u{0}")).replace('\u{0}', "([a-z]+)");
    (hba.to_string(), format!("uca \"/^{pattern}$\" \\1\n"))
}

struct Postgres {
    server: Service,
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
}

fn start_postgres(s: &Scratch) -> Postgres {
    let bin = postgres_bindir();
    let dir = server_dir(s, "pg");
    let data = dir.join("data");
    let o = Command::new("timeout")
        .args(["-k", "5", "120"])
        .args(as_server_user_argv(bin.join("initdb")))
        .args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            "-D",
        ])
        .arg(&data)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "initdb: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let (hba, ident) = postgres_auth();
    std::fs::write(data.join("pg_hba.conf"), hba).unwrap();
    std::fs::write(data.join("pg_ident.conf"), ident).unwrap();
    let port = free_port();
    let file = |f: &str| dir.join(f).display().to_string();
    let mut cmd = as_server_user(bin.join("postgres"));
    cmd.arg("-D").arg(&data);
    for setting in [
        format!("port={port}"),
        "listen_addresses=127.0.0.1".into(),
        format!("unix_socket_directories={}", dir.display()),
        "ssl=on".into(),
        format!("ssl_cert_file={}", file("cert.pem")),
        format!("ssl_key_file={}", file("key.pem")),
        format!("ssl_ca_file={}", file("ca.pem")),
        "fsync=off".into(),
    ] {
        cmd.args(["-c", &setting]);
    }
    // SIGINT is PostgreSQL's fast shutdown.
    let mut server = Service::spawn("postgres", cmd, s.join("postgres.log"), libc::SIGINT);
    let isready = bin.join("pg_isready");
    let socket_dir = dir.display().to_string();
    server.wait_until(60, "accepting connections", |_| {
        Command::new(&isready)
            .args(["-q", "-h", &socket_dir, "-p", &port.to_string()])
            .args(["-U", "postgres", "-t", "2"])
            .stdin(Stdio::null())
            .status()
            .is_ok_and(|st| st.success())
    });
    Postgres {
        server,
        bin,
        dir,
        port,
    }
}

/// The argv that runs `program` as the servers' user (see [`as_server_user`]).
fn as_server_user_argv(program: PathBuf) -> Vec<OsString> {
    let cmd = as_server_user(program);
    std::iter::once(cmd.get_program().to_owned())
        .chain(cmd.get_args().map(|a| a.to_owned()))
        .collect()
}

impl Postgres {
    fn psql(&self, s: &Scratch, args: &[&str]) -> (bool, String) {
        let psql = self.bin.join("psql").display().to_string();
        let mut all = vec!["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1"];
        all.extend_from_slice(args);
        client(s, 30, &psql, &all)
    }

    /// Runs SQL as the superuser over the Unix socket.
    fn superuser(&self, s: &Scratch, statement: &str) {
        let dir = self.dir.display().to_string();
        let port = self.port.to_string();
        let (oks, out) = self.psql(
            s,
            &[
                "-h", &dir, "-p", &port, "-U", "postgres", "-d", "postgres", "-c", statement,
            ],
        );
        assert!(oks, "{statement}: {out}");
    }

    /// Logs in as `role` over TCP with TLS verify-full and the client
    /// certificate of `name`; returns (accepted, current_user or the error).
    fn login(&self, s: &Scratch, name: &str, role: &str) -> (bool, String) {
        let (cert, key) = client_files(s, name);
        let conninfo = format!(
            "host=127.0.0.1 port={} user={role} dbname=postgres connect_timeout=10 \
             sslmode=verify-full sslrootcert={} sslcert={cert} sslkey={key}",
            self.port,
            root(s)
        );
        let (okl, out) = self.psql(s, &["-c", "SELECT current_user", &conninfo]);
        (okl, out.trim().to_string())
    }
}

fn postgresql_maps_the_subject_to_a_role(key: &str) {
    let s = pki(key);
    let started = Instant::now();
    let pg = start_postgres(&s);
    pg.superuser(&s, "CREATE ROLE alice LOGIN; CREATE ROLE bob LOGIN");
    let ready = started.elapsed();

    // Each client logs in as the role its subject maps to.
    for name in ["alice", "bob"] {
        let (okl, out) = pg.login(&s, name, name);
        assert!(okl && out == name, "{name}'s certificate as {name}: {out}");
    }
    // Other clients of the same root are refused as alice, and PostgreSQL
    // says which subject it read.
    for other in REFUSED_CLIENTS {
        let (okl, out) = pg.login(&s, other, "alice");
        assert!(
            !okl && out.contains("certificate authentication failed for user \"alice\""),
            "{other}'s certificate as alice: {out}"
        );
        let log = pg.server.log_text();
        let read_as = format!(
            "no match in usermap \"uca\" for user \"alice\" authenticated as \"{}\"",
            subject_of(other)
        );
        assert!(log.contains(&read_as), "expected {read_as:?} in:\n{log}");
    }
    eprintln!(
        "postgresql {key}: ready in {ready:?}, checks done in {:?}",
        started.elapsed()
    );
}

#[test]
fn postgresql_maps_the_subject_to_a_role_p256() {
    postgresql_maps_the_subject_to_a_role(P256);
}

#[test]
fn postgresql_maps_the_subject_to_a_role_rsa2048() {
    postgresql_maps_the_subject_to_a_role(RSA2048);
}

// --- mosquitto ----------------------------------------------------------------

/// A TLS listener that requires a client certificate chaining to the root
/// and takes the certificate's subject as the user name; the ACL lets
/// alice's subject read and write alice's topics and nobody else anything.
fn mosquitto_config(dir: &Path, port: u16) -> (String, String) {
    let file = |f: &str| dir.join(f).display().to_string();
    let config = format!(
        "per_listener_settings false\n\
         allow_anonymous false\n\
         persistence false\n\
         log_dest stderr\n\
         log_type all\n\
         acl_file {acl}\n\
         listener {port} 127.0.0.1\n\
         cafile {ca}\n\
         certfile {cert}\n\
         keyfile {key}\n\
         require_certificate true\n\
         use_subject_as_username true\n",
        acl = file("acl"),
        ca = file("ca.pem"),
        cert = file("cert.pem"),
        key = file("key.pem"),
    );
    let acl = format!(
        "user {}\ntopic readwrite acme/alice/#\n",
        subject_of("alice")
    );
    (config, acl)
}

/// mosquitto_pub/mosquitto_sub arguments for `name`'s certificate over
/// MQTT v5 (whose PUBACK carries "not authorized", which 3.1.1 cannot say).
fn mqtt_args(s: &Scratch, port: u16, name: &str) -> Vec<String> {
    let (cert, key) = client_files(s, name);
    [
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-V",
        "mqttv5",
        "--cafile",
        &root(s),
        "--cert",
        &cert,
        "--key",
        &key,
        "-q",
        "1",
        "-t",
        "acme/alice/inbox",
    ]
    .map(String::from)
    .to_vec()
}

fn mqtt(s: &Scratch, program: &str, base: &[String], extra: &[&str]) -> (bool, String) {
    let mut args: Vec<&str> = base.iter().map(String::as_str).collect();
    args.extend_from_slice(extra);
    client(s, 30, program, &args)
}

fn mosquitto_authorizes_by_subject(key: &str) {
    let s = pki(key);
    let started = Instant::now();
    let dir = server_dir(&s, "mosquitto");
    let port = free_port();
    let (config, acl) = mosquitto_config(&dir, port);
    std::fs::write(dir.join("mosquitto.conf"), config).unwrap();
    std::fs::write(dir.join("acl"), acl).unwrap();
    let mut cmd = as_server_user("mosquitto");
    cmd.arg("-c").arg(dir.join("mosquitto.conf"));
    let mut server = Service::spawn("mosquitto", cmd, s.join("mosquitto.log"), libc::SIGTERM);
    server.wait_for_port(port, 30);
    let ready = started.elapsed();

    let alice = mqtt_args(&s, port, "alice");
    // Retained messages: what a subscriber receives does not depend on when
    // it subscribed, so there is no race between publisher and subscriber.
    let (okp, out) = mqtt(&s, "mosquitto_pub", &alice, &["-r", "-m", "from alice"]);
    assert!(
        okp && !out.contains("Not authorized"),
        "alice publishes: {out}"
    );
    let (oks, out) = mqtt(&s, "mosquitto_sub", &alice, &["-C", "1", "-W", "10"]);
    assert!(oks && out.trim() == "from alice", "alice subscribes: {out}");

    // The others' certificates chain to the same root, so the listener
    // takes them, but the ACL gives their subjects nothing: their publish
    // is refused and the retained message is not delivered to them.
    for other in REFUSED_CLIENTS {
        let args = mqtt_args(&s, port, other);
        let (_, out) = mqtt(&s, "mosquitto_pub", &args, &["-r", "-m", other]);
        assert!(out.contains("Not authorized"), "{other} publishes: {out}");
        let (_, out) = mqtt(&s, "mosquitto_sub", &args, &["-C", "1", "-W", "2"]);
        assert!(
            out.contains("Timed out") && !out.contains("from alice"),
            "{other} read alice's topic: {out}"
        );
    }
    let (oks, out) = mqtt(&s, "mosquitto_sub", &alice, &["-C", "1", "-W", "10"]);
    assert!(
        oks && out.trim() == "from alice",
        "a refused publish landed: {out}"
    );

    // mosquitto names each client by its subject, as the ACL spells it.
    let log = server.log_text();
    for client in std::iter::once("alice").chain(REFUSED_CLIENTS) {
        let user = format!("u'{}')", subject_of(client));
        assert!(log.contains(&user), "expected {user:?} in:\n{log}");
    }
    assert!(log.contains("Denied PUBLISH"), "{log}");
    eprintln!(
        "mosquitto {key}: ready in {ready:?}, checks done in {:?}",
        started.elapsed()
    );
}

#[test]
fn mosquitto_authorizes_by_subject_p256() {
    mosquitto_authorizes_by_subject(P256);
}

#[test]
fn mosquitto_authorizes_by_subject_rsa2048() {
    mosquitto_authorizes_by_subject(RSA2048);
}

// --- RabbitMQ -------------------------------------------------------------------

/// Debian's RabbitMQ start script, called directly: /usr/sbin's wrapper
/// switches to the rabbitmq user and its system directories.
const RABBITMQ_SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";

/// Only a TLS listener, which requires a client certificate chaining to the
/// root; the only login mechanism is EXTERNAL, whose user name is the
/// certificate's subject. The definitions create alice's subject as a user
/// without a password, with every permission on "/", and nobody else.
fn rabbitmq_config(dir: &Path, port: u16) -> (String, String) {
    let file = |f: &str| dir.join(f).display().to_string();
    let config = format!(
        "listeners.tcp = none\n\
         listeners.ssl.default = 127.0.0.1:{port}\n\
         ssl_options.cacertfile = {ca}\n\
         ssl_options.certfile = {cert}\n\
         ssl_options.keyfile = {key}\n\
         ssl_options.verify = verify_peer\n\
         ssl_options.fail_if_no_peer_cert = true\n\
         auth_mechanisms.1 = EXTERNAL\n\
         ssl_cert_login_from = distinguished_name\n\
         load_definitions = {definitions}\n",
        ca = file("ca.pem"),
        cert = file("cert.pem"),
        key = file("key.pem"),
        definitions = file("definitions.json"),
    );
    let alice = subject_of("alice");
    let definitions = serde_json::json!({
        "users": [{
            "name": alice,
            "password_hash": "",
            "hashing_algorithm": "rabbit_password_hashing_sha256",
            "tags": [],
        }],
        "vhosts": [{"name": "/"}],
        "permissions": [{
            "user": alice, "vhost": "/",
            "configure": ".*", "write": ".*", "read": ".*",
        }],
    });
    (config, definitions.to_string())
}

/// A RabbitMQ node on loopback with its own epmd: ports AMQPS, epmd and
/// Erlang distribution from `base`, every file below `dir`.
fn start_rabbitmq(s: &Scratch, dir: &Path, base: u16) -> (Service, Service) {
    let (amqps, epmd_port, dist) = (base, base + 1, base + 2);
    let (config, definitions) = rabbitmq_config(dir, amqps);
    std::fs::write(dir.join("rabbitmq.conf"), config).unwrap();
    std::fs::write(dir.join("definitions.json"), definitions).unwrap();
    std::fs::write(
        dir.join("enabled_plugins"),
        "[rabbitmq_auth_mechanism_ssl].\n",
    )
    .unwrap();
    // epmd of its own on loopback, so that the node neither meets another
    // node's epmd nor leaves a daemon behind.
    let mut cmd = as_server_user("epmd");
    cmd.args(["-port", &epmd_port.to_string(), "-address", "127.0.0.1"]);
    let mut epmd = Service::spawn("epmd", cmd, s.join("epmd.log"), libc::SIGKILL);
    epmd.wait_for_port(epmd_port, 30);

    let path = |p: &str| dir.join(p).into_os_string();
    let mut cmd = as_server_user(RABBITMQ_SERVER);
    cmd.current_dir(dir)
        .env("HOME", dir) // the Erlang cookie
        .env("ERL_EPMD_PORT", epmd_port.to_string())
        .env("ERL_EPMD_ADDRESS", "127.0.0.1")
        .env("RABBITMQ_NODENAME", format!("uca{amqps}@localhost"))
        .env("RABBITMQ_DIST_PORT", dist.to_string())
        .env(
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
            "-kernel inet_dist_use_interface {127,0,0,1}",
        )
        .env("RABBITMQ_CONF_ENV_FILE", "/dev/null")
        .env("RABBITMQ_CONFIG_FILE", path("rabbitmq.conf"))
        .env("RABBITMQ_ADVANCED_CONFIG_FILE", path("advanced.config"))
        .env("RABBITMQ_ENABLED_PLUGINS_FILE", path("enabled_plugins"))
        .env("RABBITMQ_MNESIA_BASE", path("mnesia"))
        .env("RABBITMQ_LOG_BASE", path("log"))
        .env("RABBITMQ_LOGS", path("rabbit.log"))
        .env("RABBITMQ_PID_FILE", path("rabbit.pid"));
    // Killing the node loses nothing a test needs; its files are scratch.
    let mut node = Service::spawn(
        "rabbitmq-server",
        cmd,
        s.join("rabbitmq.out"),
        libc::SIGKILL,
    );
    let log = dir.join("rabbit.log");
    node.wait_until(90, "started", |_| {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("Server startup complete"))
    });
    (node, epmd)
}

fn amqp_external(s: &Scratch, port: u16, name: &str) -> (bool, String) {
    let script = s.join("amqp_external.py");
    std::fs::write(&script, include_str!("identity/amqp_external.py")).unwrap();
    let (cert, key) = client_files(s, name);
    client(
        s,
        30,
        "python3",
        &[
            script.to_str().unwrap(),
            "127.0.0.1",
            &port.to_string(),
            &root(s),
            &cert,
            &key,
        ],
    )
}

fn rabbitmq_logs_in_by_subject(key: &str) {
    let s = pki(key);
    let started = Instant::now();
    let dir = server_dir(&s, "rabbitmq");
    let port = free_ports(3);
    let (mut node, _epmd) = start_rabbitmq(&s, &dir, port);
    let ready = started.elapsed();

    let (oka, out) = amqp_external(&s, port, "alice");
    assert!(oka && out.contains("opened vhost /"), "alice: {out}");
    // The others' certificates pass TLS (same root), but their subjects are
    // no users.
    for other in REFUSED_CLIENTS {
        let (oko, out) = amqp_external(&s, port, other);
        assert!(
            !oko && out.contains("refused: 403 ACCESS_REFUSED"),
            "{other}: {out}"
        );
    }
    // The broker names each login by the subject it read; it logs
    // asynchronously, so each line gets a bounded wait.
    let log = dir.join("rabbit.log");
    let granted = format!(
        "user '{}' authenticated and granted access to vhost '/'",
        subject_of("alice")
    );
    let refused = REFUSED_CLIENTS.into_iter().map(|other| {
        format!(
            "EXTERNAL login refused: user '{}' - invalid credentials",
            subject_of(other)
        )
    });
    for line in std::iter::once(granted).chain(refused) {
        node.wait_until(10, &format!("logging {line:?}"), |_| {
            std::fs::read_to_string(&log).is_ok_and(|l| l.contains(&line))
        });
    }
    eprintln!(
        "rabbitmq {key}: ready in {ready:?}, checks done in {:?}",
        started.elapsed()
    );
    drop(node);
}

#[test]
fn rabbitmq_logs_in_by_subject_p256() {
    rabbitmq_logs_in_by_subject(P256);
}

#[test]
fn rabbitmq_logs_in_by_subject_rsa2048() {
    rabbitmq_logs_in_by_subject(RSA2048);
}
