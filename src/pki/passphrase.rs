//! Where the CA passphrase comes from. Never argv: a file, the
//! `UCA_PASSPHRASE` environment variable (removed from the environment as soon
//! as it is read, so no child process inherits it), the CA's stored passphrase
//! file while it is unsealed, a prompt, or freshly generated.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::support::error::{Error, Result};

pub const ENV_VAR: &str = "UCA_PASSPHRASE";
const MIN_LEN: usize = 12;
/// `openssl -passin file:` reads at most 1023 bytes of the line (its
/// buffer is 1024 with the NUL): a longer passphrase would unlock the key
/// in uca but not in OpenSSL.
const MAX_BYTES: usize = 1023;

/// A passphrase, wiped from memory when dropped.
pub struct Passphrase(Zeroizing<String>);

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase([secret elided])")
    }
}

impl Passphrase {
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// 256 random bits, base64url: 43 characters, no padding.
    pub fn generate() -> Passphrase {
        use base64::Engine;
        use rand_core::RngCore;
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand_core::OsRng.fill_bytes(bytes.as_mut());
        let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes.as_ref());
        Passphrase(Zeroizing::new(text))
    }

    /// The passphrase a random secret stands for: its base64url text, as
    /// [`generate`](Self::generate) makes it (escrow recombines the bytes).
    pub fn from_secret(secret: &[u8]) -> Passphrase {
        use base64::Engine;
        let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
        Passphrase(Zeroizing::new(text))
    }

    fn new(text: String, origin: &str) -> Result<Passphrase> {
        let text = Zeroizing::new(text);
        if text.is_empty() {
            return Err(Error::Passphrase(format!(
                "the passphrase from {origin} is empty"
            )));
        }
        if text.contains('\0') {
            return Err(Error::Passphrase(format!(
                "the passphrase from {origin} contains a NUL byte; OpenSSL would read only up to it, so uca refuses it"
            )));
        }
        if text.len() > MAX_BYTES {
            return Err(Error::Passphrase(format!(
                "the passphrase from {origin} is {} bytes long; OpenSSL reads at most {MAX_BYTES}, so uca refuses it",
                text.len()
            )));
        }
        if text.chars().any(|c| c == '\n' || c == '\r') {
            return Err(Error::Passphrase(format!(
                "the passphrase from {origin} spans several lines; OpenSSL would read only the first, so uca refuses it"
            )));
        }
        Ok(Passphrase(text))
    }

    /// Reads a passphrase file: UTF-8, one line; a single trailing LF is not
    /// part of the passphrase, as with `openssl -passin file:`. OpenSSL keeps
    /// a CR before that LF as part of the passphrase, so a file with a Windows
    /// line ending is refused: uca and OpenSSL must never read the same file
    /// as different passphrases.
    pub fn from_file(path: &Path) -> Result<Passphrase> {
        let bytes = Zeroizing::new(crate::support::fsutil::read_capped(
            path,
            crate::support::fsutil::limits::SECRET,
            "read the passphrase file",
            "passphrase file",
        )?);
        let text = std::str::from_utf8(&bytes).map_err(|_| {
            Error::Passphrase(format!(
                "the passphrase file {} is not UTF-8 text",
                path.display()
            ))
        })?;
        let origin = path.display().to_string();
        if let Some(line) = text.strip_suffix("\r\n") {
            // An empty file saved on Windows is reported as empty.
            Passphrase::new(line.to_string(), &origin)?;
            return Err(Error::Passphrase(format!(
                "the passphrase file {origin} ends in CR LF (a Windows line ending); OpenSSL would read the CR as part of the passphrase; save it with LF line endings"
            )));
        }
        let text = text.strip_suffix('\n').unwrap_or(text);
        Passphrase::new(text.to_string(), &origin)
    }

    /// Takes `UCA_PASSPHRASE` out of the environment.
    pub fn take_from_env() -> Result<Option<Passphrase>> {
        // Removed at once so no child process can inherit it.
        let Some(value) = crate::support::sys::take_env(ENV_VAR) else {
            return Ok(None);
        };
        let value = value
            .into_string()
            .map_err(|_| Error::Passphrase(format!("{ENV_VAR} is not UTF-8 text")))?;
        Passphrase::new(value, ENV_VAR).map(Some)
    }

    fn prompt(question: &str) -> Result<Passphrase> {
        let text = rpassword::prompt_password(question).map_err(|e| {
            Error::Passphrase(format!("cannot read the passphrase from the terminal: {e}"))
        })?;
        Passphrase::new(text, "the prompt")
    }

    fn check_strength(&self) -> Result<()> {
        let n = self.0.chars().count();
        if n < MIN_LEN {
            return Err(Error::Passphrase(format!(
                "the passphrase is {n} characters long; a CA passphrase needs at least {MIN_LEN} (or use --generate-passphrase)"
            )));
        }
        Ok(())
    }
}

/// Whether a person at a terminal can be asked (standard input is one, and
/// /dev/tty opens).
pub fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::fs::File::open("/dev/tty").is_ok()
}

const NO_SOURCE: &str = "no passphrase source: pass --passphrase-file FILE, set UCA_PASSPHRASE or run in a terminal to be prompted";

/// How `init` obtains the new CA's passphrase.
#[derive(Debug)]
pub enum NewPassphrase {
    /// Given by the operator (file, environment or prompt).
    Given(Passphrase),
    /// Generated; to be stored in the CA's private folder until sealing.
    Generated(Passphrase),
}

impl NewPassphrase {
    pub fn passphrase(&self) -> &Passphrase {
        match self {
            NewPassphrase::Given(p) | NewPassphrase::Generated(p) => p,
        }
    }

    /// Order: `--passphrase-file`, `UCA_PASSPHRASE`, `--generate-passphrase`,
    /// then a prompt asked twice. Two explicit sources at once are refused.
    pub fn obtain(file: Option<&PathBuf>, generate: bool) -> Result<NewPassphrase> {
        let from_env = Passphrase::take_from_env()?;
        let given = match (file, from_env, generate) {
            (Some(_), Some(_), _) => {
                return Err(Error::Passphrase(format!(
                    "both --passphrase-file and {ENV_VAR} are set; give exactly one passphrase source"
                )))
            }
            (Some(_), None, true) | (None, Some(_), true) => {
                return Err(Error::Passphrase(format!(
                    "--generate-passphrase conflicts with --passphrase-file/{ENV_VAR}; give exactly one passphrase source"
                )))
            }
            (Some(f), None, false) => Passphrase::from_file(f)?,
            (None, Some(p), false) => p,
            (None, None, true) => return Ok(NewPassphrase::Generated(Passphrase::generate())),
            (None, None, false) => {
                if !interactive() {
                    return Err(Error::Passphrase(format!(
                        "{NO_SOURCE}; or let uca make one with --generate-passphrase"
                    )));
                }
                let first = Passphrase::prompt("New CA passphrase: ")?;
                first.check_strength()?;
                let second = Passphrase::prompt("Repeat the passphrase: ")?;
                if first.as_bytes() != second.as_bytes() {
                    return Err(Error::Passphrase("the two passphrases differ; nothing was created".into()));
                }
                first
            }
        };
        given.check_strength()?;
        Ok(NewPassphrase::Given(given))
    }
}

/// Obtains the passphrase that unlocks an existing CA key. Order:
/// `--passphrase-file`, `UCA_PASSPHRASE`, the CA's stored passphrase file
/// (from `--generate-passphrase`, until sealed), then a prompt.
pub fn for_unlock(file: Option<&PathBuf>, stored: &Path) -> Result<Passphrase> {
    let from_env = Passphrase::take_from_env()?;
    match (file, from_env) {
        (Some(_), Some(_)) => Err(Error::Passphrase(format!(
            "both --passphrase-file and {ENV_VAR} are set; give exactly one passphrase source"
        ))),
        (Some(f), None) => Passphrase::from_file(f),
        (None, Some(p)) => Ok(p),
        (None, None) if stored.exists() => Passphrase::from_file(stored),
        (None, None) if interactive() => Passphrase::prompt("CA passphrase: "),
        (None, None) => Err(Error::Passphrase(NO_SOURCE.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_is_43_url_safe_chars() {
        let p = Passphrase::generate();
        assert_eq!(p.as_str().len(), 43);
        assert!(p
            .as_str()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_ne!(p.as_str(), Passphrase::generate().as_str());
    }
}
