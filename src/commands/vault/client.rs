//! A small Vault/OpenBao HTTP API client: ureq on rustls with the ring
//! provider, trusting only the CA the operator names, with an optional
//! client certificate for mTLS listeners. Every failure is turned into a
//! sentence that says which side refused what.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use zeroize::Zeroizing;

use crate::ca::sections::VaultConnection;
use crate::support::error::{Error, Result};

pub const TOKEN_VARS: [&str; 2] = ["VAULT_TOKEN", "BAO_TOKEN"];

/// The header value for `--namespace`: path segments of letters, digits,
/// '-' and '_', joined by '/'.
pub fn check_namespace(ns: &str) -> Result<String> {
    let ok = !ns.is_empty()
        && ns.split('/').all(|seg| {
            !seg.is_empty()
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if !ok {
        return Err(Error::invalid(
            "--namespace",
            crate::pki::names::printable(ns),
            "expected a namespace path such as team-a or team-a/dev (letters, digits, '-', '_', joined by '/')",
        ));
    }
    Ok(ns.to_string())
}

pub struct VaultClient {
    agent: ureq::Agent,
    addr: String,
    token: Zeroizing<String>,
    cacert: Option<PathBuf>,
    has_client_cert: bool,
    namespace: Option<String>,
    /// Read-after-write consistency through a standby: the `X-Vault-Index`
    /// of our last write, sent back with every later request so that a
    /// node that has not applied it yet says so instead of answering from
    /// stale state. None: not asked for.
    write_index: Option<RefCell<Option<String>>>,
}

/// How long a request waits in all for a lagging standby to catch up
/// with our writes.
const CATCH_UP: Duration = Duration::from_secs(30);

/// Reads the token: `--token-file`, then VAULT_TOKEN, then BAO_TOKEN; never
/// argv. The variables are removed from the environment once read.
fn read_token(file: Option<&Path>) -> Result<Zeroizing<String>> {
    let mut from_env = None;
    for var in TOKEN_VARS {
        if let Some(v) = crate::support::sys::take_env(var) {
            if from_env.is_none() {
                from_env = Some((var, v));
            }
        }
    }
    let token = match (file, from_env) {
        (Some(f), _) => {
            let bytes = Zeroizing::new(crate::support::fsutil::read_capped(
                f,
                crate::support::fsutil::limits::SECRET,
                "read the token file",
                "token file",
            )?);
            let text = std::str::from_utf8(&bytes).map_err(|_| {
                Error::invalid(
                    "token file",
                    f.display().to_string(),
                    "it is not valid UTF-8 text",
                )
            })?;
            Zeroizing::new(text.trim().to_string())
        }
        (None, Some((var, v))) => Zeroizing::new(
            v.into_string()
                .map_err(|_| Error::msg(format!("{var} is not UTF-8 text")))?
                .trim()
                .to_string(),
        ),
        (None, None) => {
            return Err(Error::msg(
                "no Vault token: pass --token-file FILE or set VAULT_TOKEN (or BAO_TOKEN)",
            ))
        }
    };
    if token.is_empty() || token.chars().any(|c| c.is_control() || c == ' ') {
        return Err(Error::msg(
            "the Vault token is empty or has spaces or control characters",
        ));
    }
    Ok(token)
}

fn read_pem_certs(path: &Path) -> Result<Vec<ureq::tls::Certificate<'static>>> {
    let ders = crate::pki::x509::read_certificates(path)?;
    Ok(ders
        .iter()
        .map(|d| ureq::tls::Certificate::from_der(d).to_owned())
        .collect())
}

impl VaultClient {
    pub fn connect(conn: &VaultConnection) -> Result<VaultClient> {
        let addr = conn.addr.trim_end_matches('/').to_string();
        let https = addr.starts_with("https://");
        if !https && !addr.starts_with("http://") {
            return Err(Error::invalid(
                "--addr",
                addr,
                "expected http://HOST:PORT or https://HOST:PORT",
            ));
        }
        if !https && (conn.cacert.is_some() || conn.client_cert.is_some()) {
            return Err(Error::invalid(
                "--addr",
                addr,
                "TLS options were given but the address is http://; use https://",
            ));
        }
        let namespace = conn.namespace.as_deref().map(check_namespace).transpose()?;
        let token = read_token(conn.token_file.as_deref())?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::Rustls)
            .unversioned_rustls_crypto_provider(provider);
        if let Some(ca) = &conn.cacert {
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&read_pem_certs(ca)?));
        } else if https {
            return Err(Error::msg("an https:// address needs --cacert FILE (the CA that issued Vault's listener certificate)"));
        }
        let has_client_cert = match (&conn.client_cert, &conn.client_key) {
            (Some(c), Some(k)) => {
                let chain = read_pem_certs(c)?;
                let key_pem = Zeroizing::new(crate::support::fsutil::read_capped(
                    k,
                    crate::support::fsutil::limits::SECRET,
                    "read the client key",
                    "client key",
                )?);
                let key = ureq::tls::PrivateKey::from_pem(&key_pem).map_err(|e| {
                    Error::invalid(
                        "--client-key",
                        k.display().to_string(),
                        format!("not a PEM private key: {e}"),
                    )
                })?;
                tls = tls.client_cert(Some(ureq::tls::ClientCert::new_with_certs(&chain, key)));
                true
            }
            (None, None) => false,
            _ => return Err(Error::msg("--client-cert and --client-key go together")),
        };
        let config = ureq::Agent::config_builder()
            .tls_config(tls.build())
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build();
        Ok(VaultClient {
            agent: ureq::Agent::new_with_config(config),
            addr,
            token,
            cacert: conn.cacert.clone(),
            has_client_cert,
            namespace,
            write_index: None,
        })
    }

    /// The same credentials and TLS settings (CA, client certificate,
    /// token, namespace) for another node of the cluster, e.g. the active
    /// node a standby names. Its certificate is checked against `addr`.
    pub fn for_node(&self, addr: &str) -> VaultClient {
        VaultClient {
            agent: self.agent.clone(),
            addr: addr.trim_end_matches('/').to_string(),
            token: self.token.clone(),
            cacert: self.cacert.clone(),
            has_client_cert: self.has_client_cert,
            namespace: self.namespace.clone(),
            write_index: None,
        }
    }

    /// This client, waiting for its own writes: every request after a
    /// write carries the write's `X-Vault-Index`, and a node that has not
    /// applied it yet (HTTP 412, or OpenBao's 429 with Retry-After) is
    /// asked again until it has, for at most 30 s.
    pub fn reading_own_writes(mut self) -> VaultClient {
        self.write_index = Some(RefCell::new(None));
        self
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// The namespace header for `path`, if any: sys/health and sys/leader
    /// belong to the root namespace, and Vault refuses them inside one.
    fn namespace_for(&self, path: &str) -> Option<&str> {
        self.namespace
            .as_deref()
            .filter(|_| !is_cluster_status(path))
    }

    fn explain(&self, method: &str, path: &str, e: ureq::Error) -> Error {
        let at = format!("{method} {}/v1/{path}", self.addr);
        // rustls errors can arrive directly or wrapped in an io::Error.
        let tls: Option<&rustls::Error> = match &e {
            ureq::Error::Rustls(r) => Some(r),
            ureq::Error::Io(io) => io
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>()),
            _ => None,
        };
        let ca_name = || {
            self.cacert
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "the given CA".into())
        };
        let why = match (tls, &e) {
            (Some(rustls::Error::InvalidCertificate(c)), _) => format!(
                "TLS to {} failed: Vault's certificate is not trusted by {} ({c:?}); is that the CA that issued Vault's listener certificate?",
                self.addr,
                ca_name()
            ),
            (Some(rustls::Error::AlertReceived(alert)), _) => {
                let hint = if self.has_client_cert {
                    "Vault refused our client certificate: is it issued by the CA in the listener's tls_client_ca_file?"
                } else {
                    "Vault requires a client certificate: pass --client-cert and --client-key"
                };
                format!("TLS to {} failed: Vault sent alert {alert:?}. {hint}", self.addr)
            }
            (Some(r), _) => format!("TLS to {} failed: {r}", self.addr),
            (None, ureq::Error::Io(io)) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
                format!("cannot reach Vault at {}: connection refused (is it running, and is the address right?)", self.addr)
            }
            (None, ureq::Error::ConnectionFailed | ureq::Error::HostNotFound) => {
                format!("cannot reach Vault at {}: {e}", self.addr)
            }
            (None, ureq::Error::Timeout(_)) => format!("Vault at {} did not answer in time ({at})", self.addr),
            (None, ureq::Error::Io(io)) if !self.has_client_cert && self.addr.starts_with("https://") => format!(
                "TLS to {} failed after the handshake ({io}): Vault probably requires a client certificate; pass --client-cert and --client-key",
                self.addr
            ),
            _ => format!("{at} failed: {e}"),
        };
        Error::msg(why)
    }

    fn finish(
        &self,
        method: &str,
        path: &str,
        resp: std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Answer> {
        let mut resp = resp.map_err(|e| self.explain(method, path, e))?;
        let status = resp.status().as_u16();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let index = header("x-vault-index");
        let retry_after = header("retry-after");
        let text = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| self.explain(method, path, e))?;
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if status == 403 {
            return Err(Error::msg(format!(
                "Vault refused the token (403 permission denied) for {method} /v1/{path}: check --token-file, VAULT_TOKEN or BAO_TOKEN and the token's policy"
            )));
        }
        Ok(Answer {
            status,
            body,
            index,
            retry_after,
        })
    }

    /// Every request carries the token and, outside sys/health and
    /// sys/leader, the namespace and (when reading our own writes) the
    /// index of our last write.
    fn authorised<B>(&self, rb: ureq::RequestBuilder<B>, path: &str) -> ureq::RequestBuilder<B> {
        let mut rb = rb.header("X-Vault-Token", self.token.as_str());
        if let Some(ns) = self.namespace_for(path) {
            rb = rb.header("X-Vault-Namespace", ns);
        }
        match self.sent_index(path) {
            Some(index) => rb
                .header("X-Vault-Index", index)
                .header("X-Vault-Inconsistent", "fail"),
            None => rb,
        }
    }

    fn sent_index(&self, path: &str) -> Option<String> {
        let cell = self.write_index.as_ref()?;
        let index = cell.borrow().clone();
        index.filter(|_| !is_cluster_status(path))
    }

    /// Sends one request; a node that has not caught up with our last
    /// write is asked again, within [`CATCH_UP`].
    fn send(
        &self,
        method: &str,
        path: &str,
        once: &dyn Fn() -> std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<(u16, Value)> {
        let deadline = Instant::now() + CATCH_UP;
        loop {
            let waited_for = self.sent_index(path);
            let answer = self.finish(method, path, once())?;
            let lagging = waited_for.is_some()
                && (answer.status == 412 || (answer.status == 429 && answer.retry_after.is_some()));
            if !lagging {
                if let (Some(cell), Some(index), true) =
                    (&self.write_index, answer.index, method == "POST")
                {
                    *cell.borrow_mut() = Some(index);
                }
                return Ok((answer.status, answer.body));
            }
            if Instant::now() >= deadline {
                return Err(Error::msg(format!(
                    "Vault at {} did not catch up with our last write within {} s ({method} /v1/{path} answered HTTP {}): the standby lags the active node; bootstrap through the active node",
                    self.addr,
                    CATCH_UP.as_secs(),
                    answer.status
                )));
            }
            let pause = answer
                .retry_after
                .and_then(|s| s.trim().parse::<u64>().ok())
                .map_or(Duration::from_millis(250), |secs| {
                    Duration::from_secs(secs).min(Duration::from_secs(1))
                });
            std::thread::sleep(pause.max(Duration::from_millis(100)));
        }
    }

    pub fn get(&self, path: &str) -> Result<(u16, Value)> {
        let url = format!("{}/v1/{path}", self.addr);
        self.send("GET", path, &|| {
            self.authorised(self.agent.get(&url), path).call()
        })
    }

    pub fn post(&self, path: &str, body: &Value) -> Result<(u16, Value)> {
        let url = format!("{}/v1/{path}", self.addr);
        self.send("POST", path, &|| {
            self.authorised(self.agent.post(&url), path).send_json(body)
        })
    }

    /// POST that must succeed (2xx); anything else is an error quoting
    /// Vault's own error list.
    pub fn write(&self, path: &str, body: &Value, doing: &str) -> Result<Value> {
        match self.post(path, body)? {
            (200..=299, v) => Ok(v),
            (status, v) => Err(refused(doing, status, path, &v)),
        }
    }

    /// GET that must succeed; a 404 is None (absent), anything else an error.
    pub fn read(&self, path: &str, doing: &str) -> Result<Option<Value>> {
        match self.get(path)? {
            (200..=299, v) => Ok(Some(v)),
            (404, _) => Ok(None),
            (status, v) => Err(refused(doing, status, path, &v)),
        }
    }
}

/// What one request got back.
struct Answer {
    status: u16,
    body: Value,
    index: Option<String>,
    retry_after: Option<String>,
}

/// Paths about the cluster itself, answered by every node for the root
/// namespace: never sent a namespace or a write index.
fn is_cluster_status(path: &str) -> bool {
    path.starts_with("sys/health")
        || path.starts_with("sys/leader")
        || path.starts_with("sys/ha-status")
}

/// Vault's `{"errors": [...]}` as one line.
fn refused(doing: &str, status: u16, path: &str, body: &Value) -> Error {
    Error::msg(format!(
        "Vault refused to {doing} (HTTP {status} on /v1/{path}): {}",
        vault_errors(body)
    ))
}

pub fn vault_errors(v: &Value) -> String {
    match v.get("errors").and_then(Value::as_array) {
        Some(list) if !list.is_empty() => list
            .iter()
            .map(|e| {
                e.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| e.to_string())
            })
            .collect::<Vec<_>>()
            .join("; ")
            .replace('\n', " "),
        _ => v.to_string().chars().take(300).collect(),
    }
}
