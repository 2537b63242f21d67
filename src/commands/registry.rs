//! `uca registry --dir DIR --out OUT HOST[:PORT]...`: everything a private
//! container registry (the distribution registry, Debian's `docker-registry`)
//! and its Docker and Podman hosts need for TLS, and with `--client-auth` for
//! mutual TLS. Every certificate comes from the one issuing pipeline, so it
//! is in the ledger (and in the manifest once the CA is sealed). `uca
//! ceremony` writes the same layout under OUT/registry for a plan's
//! `[registry]` section.
//!
//! ```text
//! OUT/
//!   server/                    the registry's certificate (profile server, signed by the root)
//!     cert.pem                 SANs: every HOST and IP given, plus --san extras
//!     key.pem                  0600
//!     chain.pem                cert.pem + ca.pem
//!     ca.pem                   the root
//!   client-ca.pem              with --client-auth: the registry's client CA, an
//!                              intermediate of the root (pathlen 0, constrained
//!                              to the --client names) and its only clientcas;
//!                              its key is never written
//!   config.yml                 fragment for the registry's config.yml: http.addr
//!                              and http.tls (certificate, key, clientcas only
//!                              with --client-auth, minimumtls tls1.2), absolute paths
//!   registry.env               the same as REGISTRY_HTTP_ADDR and
//!                              REGISTRY_HTTP_TLS_* variables (docker run
//!                              --env-file, systemd EnvironmentFile); the CA
//!                              list is REGISTRY_HTTP_TLS_CLIENTCAS=[path],
//!                              as distribution 2.8 ignores ..._CLIENTCAS_0
//!   trust-only/certs.d/HOSTDIR/ca.crt        without --client-auth: the root
//!                              alone, for hosts that only pull (copy to
//!                              /etc/docker/certs.d/ or /etc/containers/certs.d/)
//!   trust-only/containerd/certs.d/HOSTDIR/{hosts.toml,ca.crt}  the same for
//!                              containerd (copy to /etc/containerd/certs.d/)
//!   clients/NAME/              one per --client NAME (profile client; signed
//!                              by the client CA under --client-auth)
//!     cert.pem key.pem chain.pem ca.pem       chain.pem: cert, client CA, root
//!     docker/certs.d/HOSTDIR/                 copy to /etc/docker/certs.d/
//!       ca.crt client.cert client.key         (client.key 0600; client.cert
//!                                             holds the client CA after the cert)
//!     podman/containers/certs.d/HOSTDIR/      copy to /etc/containers/certs.d/
//!       ca.crt client.cert client.key
//!     containerd/certs.d/HOSTDIR/             copy to containerd's config_path
//!       hosts.toml ca.crt client.cert client.key    (/etc/containerd/certs.d/)
//! ```
//!
//! HOSTDIR is `host:port` for every HOST given, or just `host` for port 443
//! or no port (an image reference without a port), as Docker looks it up; an
//! IPv6 host is written `[addr]`. The names are exact because Docker and
//! Podman read every `*.crt` as a CA and `<name>.cert` + `<name>.key` as a
//! client pair, and silently ignore a CA saved as `.pem`.
//!
//! Under `--client-auth` the registry trusts only the client CA, not the
//! root: a certificate the root issued for anything else (a `uca issue`
//! leaf, profile both) is refused at the handshake. The client CA's key
//! lives only while `uca registry` runs, so no registry client can be
//! issued later; adding one means running `uca registry` again (`--force`).
//!
//! The registry listens on `--listen` (IP:PORT or :PORT), by default on the
//! port of the first HOST (443 if it has none) on every interface: `:PORT`.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use clap::Args;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::ca::bulk::{Existing, IssuedCert};
use crate::ca::issuance::{Issuance, Key};
use crate::ca::ledger::LedgerLock;
use crate::ca::plan::{NamePattern, PemGroups, Plan};
pub use crate::ca::sections::RegistrySpec;
use crate::ca::signing::{self, SignOptions};
use crate::ca::store::{CaStore, Signer};
use crate::commands::args::{LeafArgs, PassphraseArgs};
use crate::pki::constraints::NameConstraints;
use crate::pki::host::{containerd_hosts_toml, CONTAINERD_HOSTS_FILE};
use crate::pki::keys::KeyType;
use crate::pki::names::{self, San};
use crate::pki::profile::{Lifetime, Profile};
use crate::support::error::{Error, Result};
use crate::support::fsutil::{self, Mode};
use crate::support::output;
use crate::support::output::RenderedFile;
use crate::support::stdout::{self, Stdout};

pub use crate::pki::host::{Host, DEFAULT_PORT};
pub const SERVER_DIR: &str = "server";
pub const CLIENTS_DIR: &str = "clients";
pub const CONFIG_FILE: &str = "config.yml";
pub const ENV_FILE: &str = "registry.env";
/// With --client-auth: the intermediate that issues the registry's client
/// certificates, and the registry's only `clientcas`.
pub const CLIENT_CA_FILE: &str = "client-ca.pem";
/// Without --client-auth: the CA alone, for hosts that only pull.
pub const TRUST_ONLY_DIR: &str = "trust-only";
/// Where Docker's daemon looks for per-registry trust.
pub const DOCKER_CERTS_D: &str = "/etc/docker/certs.d";
/// Where Podman, Buildah and Skopeo look for it.
pub const PODMAN_CERTS_D: &str = "/etc/containers/certs.d";
/// containerd's usual `config_path` for registry hosts.
pub const CONTAINERD_CERTS_D: &str = "/etc/containerd/certs.d";

// `uca registry`'s arguments (clap), declared with the command they belong to.
#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// CA directory
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Output directory: OUT/server, OUT/config.yml, OUT/registry.env, OUT/clients/NAME, and OUT/client-ca.pem (--client-auth) or OUT/trust-only
    #[arg(long, value_name = "OUT")]
    pub out: PathBuf,
    /// Names clients use for the registry: host name or IP address, optional port (e.g. registry.internal:5000, [fd00::5]:5000); it listens on the first one's port (443 if none)
    #[arg(value_name = "HOST[:PORT]", required = true)]
    pub hosts: Vec<String>,
    /// Require client certificates, and accept only those issued here for --client (by OUT/client-ca.pem, the registry's clientcas)
    #[arg(long)]
    pub client_auth: bool,
    /// Address the registry listens on (http.addr): IP:PORT, [IPv6]:PORT, or :PORT for every interface (default: :PORT of the first HOST)
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Issue a client identity NAME with ready Docker and Podman certs.d folders (repeatable: one per Docker host or CI runner)
    #[arg(long = "client", value_name = "NAME")]
    pub clients: Vec<String>,
    /// Extra SAN for the registry's certificate (repeatable): DNS:x, IP:x, EMAIL:x or URI:x
    #[arg(long, value_name = "KIND:VALUE")]
    pub san: Vec<String>,
    #[command(flatten)]
    pub leaf: LeafArgs,
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
}

/// `uca registry`: issues, says what was written where, and warns on
/// standard error when the result cannot be used as it stands.
pub fn run(args: RegistryArgs, out: &mut Stdout) -> Result<u8> {
    let report = execute(&RegistryRequest {
        dir: args.dir,
        out: args.out,
        spec: RegistrySpec {
            hosts: args.hosts,
            client_auth: args.client_auth,
            clients: args.clients,
            sans: args.san,
            listen: args.listen,
            key: args.leaf.key,
            days: args.leaf.days,
        },
        force: args.leaf.force,
        passphrase_file: args.passphrase.passphrase_file,
    })?;
    out.work_done(format!(
        "the registry's certificates and configuration were written to {}",
        report.out.display()
    ));
    report.print(out).map_err(|_| out.error())?;
    if let Some(note) = report.warning() {
        stdout::to_stderr(&note);
    }
    Ok(0)
}

pub struct RegistryRequest {
    pub dir: PathBuf,
    pub out: PathBuf,
    pub spec: RegistrySpec,
    pub force: bool,
    pub passphrase_file: Option<PathBuf>,
}

/// A registry request validated completely: nothing is signed or written yet.
pub struct Prepared {
    out: PathBuf,
    out_abs: PathBuf,
    hosts: Vec<Host>,
    clients: Vec<String>,
    client_auth: bool,
    /// http.addr, validated.
    addr: String,
    /// Key type and days of the certificates, and so of the client CA.
    key: KeyType,
    days: u32,
    /// The server certificate, validated; the root signs it.
    server: Issuance,
    /// The client certificates, validated: signed by the client CA under
    /// --client-auth, else by the root.
    clients_issuance: Option<Issuance>,
}

/// What was written for one client identity.
pub struct ClientReport {
    pub name: String,
    pub cert: IssuedCert,
    pub dir: PathBuf,
    /// OUT/clients/NAME/docker/certs.d
    pub docker: PathBuf,
    /// OUT/clients/NAME/podman/containers/certs.d
    pub podman: PathBuf,
    /// OUT/clients/NAME/containerd/certs.d
    pub containerd: PathBuf,
}

/// What was written, for the user.
pub struct RegistryReport {
    pub out: PathBuf,
    pub hosts: Vec<Host>,
    pub server: IssuedCert,
    pub server_dir: PathBuf,
    pub config: PathBuf,
    pub env: PathBuf,
    pub addr: String,
    pub client_auth: bool,
    /// With --client-auth: OUT/client-ca.pem and its serial.
    pub client_ca: Option<(PathBuf, String)>,
    /// Without --client-auth: OUT/trust-only/certs.d.
    pub trust_only: Option<PathBuf>,
    pub clients: Vec<ClientReport>,
}

/// Rewrites an error about `value` as one about a registry host or client.
fn as_invalid(what: &'static str, value: &str, e: Error) -> Error {
    match e {
        Error::Invalid { expected, .. } => Error::invalid(what, names::printable(value), expected),
        other => other,
    }
}

/// The registry's hosts, each within the CA's constraints and given once,
/// and the SANs its certificate carries besides the first host's.
fn parse_hosts(
    constraints: &NameConstraints,
    spec: &RegistrySpec,
) -> Result<(Vec<Host>, Vec<San>)> {
    if spec.hosts.is_empty() {
        return Err(Error::msg(
            "no registry HOST given; usage: uca registry --dir DIR --out OUT HOST[:PORT]...",
        ));
    }
    let mut hosts: Vec<Host> = Vec::with_capacity(spec.hosts.len());
    for text in &spec.hosts {
        let host = Host::parse(text)?;
        if hosts.iter().any(|h| h.certs_d_dir() == host.certs_d_dir()) {
            return Err(Error::invalid(
                "registry host",
                names::printable(text),
                "it is given twice",
            ));
        }
        constraints
            .check(&host.san)
            .map_err(|e| as_invalid("registry host", text, e))?;
        hosts.push(host);
    }
    let mut extra: Vec<San> = Vec::new();
    for h in &hosts[1..] {
        if h.san != hosts[0].san && !extra.contains(&h.san) {
            extra.push(h.san.clone());
        }
    }
    for text in &spec.sans {
        let san = San::parse(text)?;
        constraints.check(&san)?;
        if san != hosts[0].san && !extra.contains(&san) {
            extra.push(san);
        }
    }
    Ok((hosts, extra))
}

/// The `--client` names, each within the CA's constraints and given once.
fn parse_clients(constraints: &NameConstraints, spec: &RegistrySpec) -> Result<Vec<String>> {
    let mut clients: Vec<String> = Vec::with_capacity(spec.clients.len());
    for text in &spec.clients {
        let san = San::for_name(text).map_err(|e| as_invalid("registry client", text, e))?;
        constraints
            .check(&san)
            .map_err(|e| as_invalid("registry client", text, e))?;
        let name = Host { san, port: None }.name();
        if clients.contains(&name) {
            return Err(Error::invalid(
                "registry client",
                names::printable(text),
                "it is given twice",
            ));
        }
        clients.push(name);
    }
    Ok(clients)
}

/// Validates hosts, ports, SANs, clients, name constraints and output paths,
/// and builds the plan. `ca_not_after` bounds the validity.
pub fn prepare(
    constraints: &NameConstraints,
    ca_not_after: OffsetDateTime,
    ca_pathlen: Option<u8>,
    spec: &RegistrySpec,
    out: &Path,
    force: bool,
) -> Result<Prepared> {
    let (hosts, extra) = parse_hosts(constraints, spec)?;
    let clients = parse_clients(constraints, spec)?;
    let addr = match &spec.listen {
        Some(text) => parse_listen(text)?,
        None => format!(":{}", hosts[0].port()),
    };
    if spec.client_auth && ca_pathlen == Some(0) {
        return Err(Error::msg(
            "--client-auth needs a root that may sign an intermediate (the registry's client CA), but this root has path length 0; create the root with --pathlen 1 or more",
        ));
    }
    let validity = Lifetime::days(spec.days)?.within(ca_not_after)?;

    // Output paths: the config names them absolutely, one per line.
    let out_abs = fsutil::resolve(out)?;
    let printable_out = out_abs
        .to_str()
        .filter(|s| !s.chars().any(|c| c.is_control()))
        .is_some();
    if !printable_out {
        return Err(Error::invalid(
            "--out",
            out.display().to_string(),
            "the registry configuration names it, so its absolute path must be UTF-8 without control characters",
        ));
    }
    refuse_long_client_paths(&out_abs, &hosts, &clients)?;
    if out.exists() && !out.is_dir() {
        return Err(Error::invalid(
            "--out",
            out.display().to_string(),
            "it exists and is not a directory",
        ));
    }

    let groups = PemGroups {
        key: spec.key,
        days: spec.days,
        validity,
    };
    let server = vec![NamePattern::literal_in(&hosts[0].name(), SERVER_DIR)];
    let server = groups
        .group("HOST", Profile::Server, "", server)
        .with_extra(extra);
    let server = Plan::single_group(constraints.clone(), server);
    let side_files = [
        out.join(CONFIG_FILE),
        out.join(ENV_FILE),
        out.join(if spec.client_auth {
            CLIENT_CA_FILE
        } else {
            TRUST_ONLY_DIR
        }),
    ];
    let side_files: Vec<&Path> = side_files.iter().map(PathBuf::as_path).collect();
    // The CA's own paths are refused by the caller: a ceremony prepares
    // this before its root exists.
    let server =
        Issuance::validate(server, out, Existing::Refuse, force)?.with_side_files(&side_files)?;
    let clients_issuance = if clients.is_empty() {
        None
    } else {
        let names = clients.iter().map(|c| NamePattern::literal(c)).collect();
        let group = groups.group("--client", Profile::Client, CLIENTS_DIR, names);
        let plan = Plan::single_group(constraints.clone(), group);
        Some(Issuance::validate(plan, out, Existing::Refuse, force)?.with_side_files(&[])?)
    };
    Ok(Prepared {
        out: out.to_path_buf(),
        out_abs,
        hosts,
        clients,
        client_auth: spec.client_auth,
        addr,
        key: spec.key,
        days: spec.days,
        server,
        clients_issuance,
    })
}

/// `--listen`: an IP address and port, or `:PORT` for every interface, as
/// the registry's http.addr takes it. A host name is refused: which
/// address it binds would depend on the resolver at start-up.
fn parse_listen(text: &str) -> Result<String> {
    let bad = || {
        Error::invalid(
            "--listen",
            names::printable(text),
            "an address to listen on: IP:PORT, [IPv6]:PORT, or :PORT for every interface, with a port from 1 to 65535",
        )
    };
    if let Some(port) = text.strip_prefix(':') {
        return crate::pki::host::parse_port(port)
            .map(|p| format!(":{p}"))
            .ok_or_else(bad);
    }
    let addr: std::net::SocketAddr = text.parse().map_err(|_| bad())?;
    let port_text = text.rsplit(':').next().unwrap_or("");
    if crate::pki::host::parse_port(port_text).is_none() {
        return Err(bad());
    }
    Ok(addr.to_string())
}

/// Validates everything, then unlocks the CA, takes its lock and issues.
pub fn execute(req: &RegistryRequest) -> Result<RegistryReport> {
    let store = CaStore::open(&req.dir)?;
    store.ensure_unsealed()?;
    store.refuse_private_output(&req.out)?;
    let prepared = prepare(
        &store.constraints,
        store.not_after,
        store.pathlen,
        &req.spec,
        &req.out,
        req.force,
    )?;
    prepared.server.refuse_ca_targets(&store)?;
    if let Some(clients) = &prepared.clients_issuance {
        clients.refuse_ca_targets(&store)?;
    }
    for side in [CONFIG_FILE, ENV_FILE, CLIENT_CA_FILE, TRUST_ONLY_DIR] {
        store.refuse_ca_path(&req.out.join(side))?;
    }
    issue(&store, Key::Unlock(req.passphrase_file.as_ref()), &prepared)
}

fn read_text(path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    fsutil::read_capped(path, fsutil::limits::PEM, "read", "PEM file").map(Zeroizing::new)
}

/// The certs.d files of one client for every host, under `prefix`.
/// Every client's certs.d folders, down to the deepest file
/// OUT/clients/NAME/podman/containers/certs.d/HOSTDIR/client.cert, must fit
/// the file system's limits: checked before the first key.
fn refuse_long_client_paths(out_abs: &Path, hosts: &[Host], clients: &[String]) -> Result<()> {
    if clients.is_empty() {
        return Ok(());
    }
    for host in hosts {
        let dir = host.certs_d_dir();
        if dir.len() > fsutil::NAME_MAX {
            return Err(Error::invalid(
                "registry host",
                names::printable(&host.to_string()),
                format!(
                    "a client's certs.d folder for it, {dir}, would be {} bytes long, over the {} a file name may have; use a shorter name",
                    dir.len(),
                    fsutil::NAME_MAX
                ),
            ));
        }
    }
    let longest_host = hosts
        .iter()
        .map(|h| h.certs_d_dir().len())
        .max()
        .unwrap_or(0);
    for name in clients {
        let deepest = out_abs.as_os_str().len()
            + format!("/{CLIENTS_DIR}/{name}/podman/containers/certs.d//client.cert").len()
            + longest_host;
        if deepest > fsutil::PATH_MAX {
            return Err(Error::invalid(
                "registry client",
                name.as_str(),
                format!(
                    "its podman certs.d files would have paths of {deepest} bytes (with OUT made absolute), over the {} a path may have; use a shorter OUT, name or host",
                    fsutil::PATH_MAX
                ),
            ));
        }
    }
    Ok(())
}

/// The certs.d folder of every host under `prefix`: the CA, the client
/// pair if any, and for containerd its hosts.toml.
fn certs_d_files(
    prefix: &str,
    hosts: &[Host],
    ca: &[u8],
    client: Option<(&[u8], &[u8])>,
    containerd: bool,
) -> Vec<RenderedFile> {
    let mut files = Vec::with_capacity(4 * hosts.len());
    for h in hosts {
        let dir = format!("{prefix}/{}", h.certs_d_dir());
        let hosts_toml = containerd
            .then(|| containerd_hosts_toml(h, client.is_some(), "uca registry").into_bytes());
        let mut entries = vec![("ca.crt", ca, Mode::Public)];
        if let Some(toml) = &hosts_toml {
            entries.push((CONTAINERD_HOSTS_FILE, toml.as_slice(), Mode::Public));
        }
        if let Some((cert, key)) = client {
            entries.push(("client.cert", cert, Mode::Public));
            entries.push(("client.key", key, Mode::Secret));
        }
        for (name, contents, mode) in entries {
            files.push(RenderedFile {
                path: format!("{dir}/{name}"),
                contents: Zeroizing::new(contents.to_vec()),
                mode,
            });
        }
    }
    files
}

fn yaml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The `http` section for the registry's config.yml.
fn config_yml(p: &Prepared) -> String {
    let server = p.out_abs.join(SERVER_DIR);
    let path = |f: &str| yaml_string(&server.join(f).display().to_string());
    let addr = p.addr.as_str();
    let hosts: Vec<String> = p.hosts.iter().map(Host::to_string).collect();
    let mut y = format!(
        "# Written by uca registry for {}.\n\
         # Merge into the distribution registry's config.yml.\n\
         http:\n  addr: {}\n  tls:\n    certificate: {}\n    key: {}\n",
        hosts.join(", "),
        yaml_string(addr),
        path("cert.pem"),
        path("key.pem"),
    );
    if p.client_auth {
        y.push_str(&format!(
            "    # Only the clients issued by uca registry's client CA may connect.\n    clientcas:\n      - {}\n",
            yaml_string(&p.out_abs.join(CLIENT_CA_FILE).display().to_string())
        ));
    }
    y.push_str("    minimumtls: tls1.2\n");
    y
}

/// The same settings as environment variables.
fn registry_env(p: &Prepared) -> String {
    let server = p.out_abs.join(SERVER_DIR);
    let path = |f: &str| server.join(f).display().to_string();
    let addr = p.addr.as_str();
    let mut e = format!(
        "# Written by uca registry: the registry's TLS settings as environment\n\
         # variables (docker run --env-file, systemd EnvironmentFile).\n\
         REGISTRY_HTTP_ADDR={addr}\n\
         REGISTRY_HTTP_TLS_CERTIFICATE={}\n\
         REGISTRY_HTTP_TLS_KEY={}\n",
        path("cert.pem"),
        path("key.pem"),
    );
    if p.client_auth {
        // A YAML list in one variable: distribution 2.8 silently ignores
        // indexed names such as REGISTRY_HTTP_TLS_CLIENTCAS_0, which would
        // leave the registry open to every client.
        let ca = p.out_abs.join(CLIENT_CA_FILE).display().to_string();
        let plain = ca
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+~@%=".contains(c));
        let item = if plain { ca } else { yaml_string(&ca) };
        e.push_str(&format!("REGISTRY_HTTP_TLS_CLIENTCAS=[{item}]\n"));
    }
    e.push_str("REGISTRY_HTTP_TLS_MINIMUMTLS=tls1.2\n");
    e
}

/// Issues the server certificate (the root signs it); under --client-auth
/// makes the registry's client CA and issues the client certificates with
/// it, else with the root; then, still holding the CA's lock, writes the
/// certs.d folders, config.yml and registry.env. Every certificate goes
/// through the one issuing pipeline and into the ledger.
pub fn issue(store: &CaStore, key: Key<'_>, p: &Prepared) -> Result<RegistryReport> {
    let key = key.take(store)?;
    let (root, lock) = key.parts();
    let mut issued = p.server.run_then(store, Key::Held(root, lock), Ok)?;
    let client_ca = if p.client_auth {
        Some(make_client_ca(store, root, lock, p)?)
    } else {
        None
    };
    if let Some(clients) = &p.clients_issuance {
        let signer = client_ca.as_ref().map_or(root, |(signer, _)| signer);
        issued.extend(clients.run_then(store, Key::Held(signer, lock), Ok)?);
    }
    let client_ca = client_ca.map(|(signer, serial)| (signer.cert_der.clone(), serial));
    write_files(p, &issued, client_ca.as_ref())
}

/// The registry's client CA: an intermediate of the root, path length 0,
/// name-constrained to the --client names, signed and recorded in the
/// ledger like `uca sign --intermediate` (OUT/client-ca.pem). Its key
/// exists only in memory: it issues this run's client certificates and is
/// wiped when this returns' signer is dropped, so nobody can issue another
/// registry client later; a new client means running `uca registry` again.
fn make_client_ca(
    store: &CaStore,
    root: &Signer,
    lock: &LedgerLock,
    p: &Prepared,
) -> Result<(Signer, String)> {
    let (key, pair) = p.key.generate_with_pair()?;
    let spki = rcgen::PublicKeyData::subject_public_key_info(&pair);
    let cn = format!(
        "uca registry clients {}",
        &crate::pki::x509::sha256_hex(&spki)[..12]
    );
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = crate::pki::profile::subject_cn(&cn);
    let csr = params
        .serialize_request(&pair)
        .map_err(|e| Error::msg(format!("cannot make the client CA's request: {e}")))?;
    let csr = signing::parse_csr(csr.der())
        .map_err(|why| Error::msg(format!("the client CA's request is unusable: {why}")))?;
    let permits = p.clients.iter().map(|c| client_permit(c)).collect();
    let opts = SignOptions {
        profile: Profile::Client,
        intermediate: true,
        pathlen: 0,
        permits,
        sans: Vec::new(),
        days: Some(p.days),
        ends_with_issuer: false,
        // The CA's own CRL URL, as for every intermediate it signs.
        crl_url: None,
    };
    let prepared = signing::prepare(store, &csr, "the registry's client CA", &opts)?;
    let file = p.out.join(CLIENT_CA_FILE);
    let recorded = p.out_abs.join(CLIENT_CA_FILE).display().to_string();
    let force = p.server.force();
    let (der, serial) =
        signing::sign_prepared(store, root, lock, prepared, Some(recorded), |der| {
            let pem = crate::pki::x509::pem_certificate(der);
            fsutil::write_atomic(&file, pem.as_bytes(), Mode::Public, force, true)
        })?;
    Ok((root.subordinate(der, key)?, serial))
}

/// The name constraint that admits exactly one client: its DNS name (and
/// names below it) or its address.
fn client_permit(name: &str) -> String {
    match name.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => format!("{v4}/32"),
        Ok(IpAddr::V6(v6)) => format!("{v6}/128"),
        Err(_) => name.to_string(),
    }
}

/// The certs.d folders, config.yml and registry.env beside the issued
/// certificates.
fn write_files(
    p: &Prepared,
    issued: &[IssuedCert],
    client_ca: Option<&(Vec<u8>, String)>,
) -> Result<RegistryReport> {
    let find = |dir: &Path| {
        issued
            .iter()
            .find(|c| c.target == dir)
            .cloned()
            .ok_or_else(|| Error::msg(format!("{} was not issued", dir.display())))
    };
    let force = p.server.force();
    let server_dir = p.out.join(SERVER_DIR);
    let server = find(&server_dir)?;
    let client_ca_pem = client_ca.map_or(String::new(), |(der, _)| {
        crate::pki::x509::pem_certificate(der)
    });
    let mut clients = Vec::with_capacity(p.clients.len());
    for name in &p.clients {
        let dir = p.out.join(CLIENTS_DIR).join(name);
        let cert = find(&dir)?;
        let ca = read_text(&dir.join("ca.pem"))?;
        // The client sends its certificate with the client CA above it.
        let mut chain = read_text(&dir.join("cert.pem"))?;
        chain.extend_from_slice(client_ca_pem.as_bytes());
        let key = read_text(&dir.join("key.pem"))?;
        let docker = dir.join("docker");
        let podman = dir.join("podman");
        let containerd = dir.join("containerd");
        let pair = Some((chain.as_slice(), key.as_slice()));
        for (target, prefix, with_toml) in [
            (&docker, "certs.d", false),
            (&podman, "containers/certs.d", false),
            (&containerd, "certs.d", true),
        ] {
            let files = certs_d_files(prefix, &p.hosts, &ca, pair, with_toml);
            output::publish_dir(target, &files, false, true)?;
        }
        clients.push(ClientReport {
            name: name.clone(),
            cert,
            docker: docker.join("certs.d"),
            podman: podman.join("containers/certs.d"),
            containerd: containerd.join("certs.d"),
            dir,
        });
    }
    let trust_only = if p.client_auth {
        None
    } else {
        let dir = p.out.join(TRUST_ONLY_DIR);
        let ca = read_text(&server_dir.join("ca.pem"))?;
        let mut files = certs_d_files("certs.d", &p.hosts, &ca, None, false);
        files.extend(certs_d_files(
            "containerd/certs.d",
            &p.hosts,
            &ca,
            None,
            true,
        ));
        output::publish_dir(&dir, &files, force, true)?;
        Some(dir.join("certs.d"))
    };
    let config = p.out.join(CONFIG_FILE);
    let env = p.out.join(ENV_FILE);
    fsutil::write_atomic(&config, config_yml(p).as_bytes(), Mode::Public, force, true)?;
    fsutil::write_atomic(&env, registry_env(p).as_bytes(), Mode::Public, force, true)?;
    Ok(RegistryReport {
        out: p.out.clone(),
        hosts: p.hosts.clone(),
        server,
        server_dir,
        config,
        env,
        addr: p.addr.clone(),
        client_auth: p.client_auth,
        client_ca: client_ca.map(|(_, serial)| (p.out.join(CLIENT_CA_FILE), serial.clone())),
        trust_only,
        clients,
    })
}

impl RegistryReport {
    /// Tells the user exactly what was written where, and where each client's
    /// folders go.
    pub fn print(&self, w: &mut dyn Write) -> std::io::Result<()> {
        let hosts: Vec<String> = self.hosts.iter().map(Host::to_string).collect();
        let s = &self.server;
        writeln!(
            w,
            "issued registry certificate for {}: {}/{{cert,key,chain,ca}}.pem  serial {}  expires {}  SANs {}",
            hosts.join(", "),
            self.server_dir.display(),
            s.serial,
            s.not_after,
            s.sans.join(", ")
        )?;
        writeln!(
            w,
            "  config.yml    {} (http.addr {} and http.tls: merge into the registry's config.yml)",
            self.config.display(),
            self.addr
        )?;
        writeln!(
            w,
            "  registry.env  {} (the same as REGISTRY_HTTP_* environment variables)",
            self.env.display()
        )?;
        match &self.client_ca {
            Some((file, serial)) => writeln!(
                w,
                "  client certificates  required: only those issued here by the client CA {} (serial {serial}, clientcas; its key was not kept)",
                file.display()
            )?,
            None => writeln!(
                w,
                "  client certificates  not required (pass --client-auth to require them)"
            )?,
        }
        let dirs: Vec<String> = self.hosts.iter().map(Host::certs_d_dir).collect();
        let listing = if dirs.len() == 1 {
            dirs[0].clone()
        } else {
            format!("{{{}}}", dirs.join(","))
        };
        if let Some(trust) = &self.trust_only {
            writeln!(
                w,
                "trust only (hosts that only pull): {}/{listing}/ca.crt",
                trust.display()
            )?;
            writeln!(
                w,
                "  install: sudo mkdir -p {DOCKER_CERTS_D} && sudo cp -r {}/* {DOCKER_CERTS_D}/ (podman: sudo mkdir -p {PODMAN_CERTS_D} && sudo cp -r {}/* {PODMAN_CERTS_D}/)",
                trust.display(),
                trust.display()
            )?;
            let containerd = self.out.join(TRUST_ONLY_DIR).join("containerd/certs.d");
            writeln!(
                w,
                "  containerd  {}/{listing}/{{hosts.toml,ca.crt}}: sudo mkdir -p {CONTAINERD_CERTS_D} && sudo cp -r {}/* {CONTAINERD_CERTS_D}/ (containerd's config_path)",
                containerd.display(),
                containerd.display()
            )?;
        }
        for c in &self.clients {
            writeln!(
                w,
                "issued client {}: {}/{{cert,key,chain,ca}}.pem  serial {}  expires {}",
                c.name,
                c.dir.display(),
                c.cert.serial,
                c.cert.not_after
            )?;
            writeln!(
                w,
                "  docker  {}/{listing}/{{ca.crt,client.cert,client.key}}",
                c.docker.display()
            )?;
            writeln!(
                w,
                "  podman  {}/{listing}/{{ca.crt,client.cert,client.key}}",
                c.podman.display()
            )?;
            writeln!(
                w,
                "  containerd  {}/{listing}/{{hosts.toml,ca.crt,client.cert,client.key}}",
                c.containerd.display()
            )?;
            writeln!(
                w,
                "  install on {}: sudo mkdir -p {DOCKER_CERTS_D} && sudo cp -r {}/* {DOCKER_CERTS_D}/ (podman: sudo mkdir -p {PODMAN_CERTS_D} && sudo cp -r {}/* {PODMAN_CERTS_D}/; containerd: sudo mkdir -p {CONTAINERD_CERTS_D} && sudo cp -r {}/* {CONTAINERD_CERTS_D}/)",
                c.name,
                c.docker.display(),
                c.podman.display(),
                c.containerd.display()
            )?;
        }
        Ok(())
    }

    /// A note for stderr when the result cannot be used as it stands.
    pub fn warning(&self) -> Option<String> {
        (self.client_auth && self.clients.is_empty()).then(|| {
            "uca: note: --client-auth without --client: the registry will refuse every client; its client CA's key was not kept, so run uca registry again with --client NAME (and --force)".to_string()
        })
    }
}
