//! One error type for the whole tool. Every message is a single line written
//! for an operator: it names the bad value and says what was expected.

use std::path::{Path, PathBuf};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A value given by the user (flag, name, SAN, file content) is wrong.
    #[error("invalid {what} '{value}': {expected}")]
    Invalid {
        what: &'static str,
        value: String,
        expected: String,
    },

    /// A file system operation failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// An output would replace an existing file.
    #[error("{} already exists; pass --force to replace it", .0.display())]
    Exists(PathBuf),

    /// The CA was sealed: it will never sign again.
    #[error("the CA in {} was sealed at {when}; it can no longer issue or sign (inspect, verify and check still work)", dir.display())]
    Sealed { dir: PathBuf, when: String },

    /// Anything about obtaining or using the passphrase.
    #[error("{0}")]
    Passphrase(String),

    /// A verification that was asked for did not pass.
    #[error("{0}")]
    Verification(String),

    /// Standard output could not be written; the message says whether the
    /// work was done.
    #[error("{0}")]
    Stdout(String),

    /// Any other failure, already phrased for the user.
    #[error("{0}")]
    Message(String),
}

impl Error {
    pub fn invalid(
        what: &'static str,
        value: impl Into<String>,
        expected: impl Into<String>,
    ) -> Self {
        Error::Invalid {
            what,
            value: value.into(),
            expected: expected.into(),
        }
    }

    pub fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    pub fn msg(message: impl Into<String>) -> Self {
        Error::Message(message.into())
    }
}

/// Where the user wrote a setting, so that an error names it as written:
/// `--subject` on the command line, `subject` in a plan file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spelling {
    Flag,
    PlanKey,
}

impl Spelling {
    /// `flag` or `key`, whichever the user wrote.
    pub fn of(self, flag: &'static str, key: &'static str) -> &'static str {
        match self {
            Spelling::Flag => flag,
            Spelling::PlanKey => key,
        }
    }
}

/// Shorthand to attach a path and an action to an `io::Result`.
pub trait IoContext<T> {
    fn ctx(self, action: &'static str, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, action: &'static str, path: &Path) -> Result<T> {
        self.map_err(|e| Error::io(action, path, e))
    }
}
