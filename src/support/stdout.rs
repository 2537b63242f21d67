//! Standard output, written so that a failure to write it (a full disk,
//! `> /dev/full`, a reader that went away) ends uca with one error line that
//! says whether the work was done, instead of a panic or a silent loss.
//!
//! Every line uca prints on standard output goes through [`Stdout`], and
//! every line on standard error through [`to_stderr`]; the crate denies
//! `println!`, `print!`, `eprintln!` and `eprint!` (which panic when the
//! write fails) so none can bypass them.

use std::io::{self, Write};

use crate::support::error::{Error, Result};

pub struct Stdout {
    inner: Box<dyn Write>,
    /// The first write error; nothing more is written after it.
    failed: Option<io::Error>,
    /// What the command did, once it did it, for the error message.
    done: Option<String>,
}

impl Default for Stdout {
    // The one place standard output is opened (see clippy.toml).
    #[allow(clippy::disallowed_methods)]
    fn default() -> Self {
        Stdout {
            inner: Box::new(io::stdout()),
            failed: None,
            done: None,
        }
    }
}

/// Standard output as a byte stream for data a command writes there itself
/// (`--archive -`): its report then goes to standard error
/// ([`Stdout::report_on_stderr`]) so the two never mix.
#[allow(clippy::disallowed_methods)]
pub fn data_stream() -> io::Stdout {
    io::stdout()
}

impl Stdout {
    /// From now on the report goes to standard error: standard output
    /// carries the command's data (`--archive -`).
    pub fn report_on_stderr(&mut self) {
        self.inner = Box::new(io::stderr());
    }

    /// Records that the work is done: from now on a failure to write says so.
    pub fn work_done(&mut self, what: impl Into<String>) {
        self.done = Some(what.into());
    }

    /// What `writeln!(out, ...)` calls: it returns uca's error, which says
    /// whether the work was done, so `writeln!(out, ...)?` is all a command
    /// needs. (An inherent method is chosen before `Write::write_fmt`.)
    pub fn write_fmt(&mut self, args: std::fmt::Arguments<'_>) -> Result<()> {
        io::Write::write_fmt(self, args).map_err(|_| self.error())
    }

    /// Writes `text` as it is.
    pub fn print(&mut self, text: &str) -> Result<()> {
        io::Write::write_all(self, text.as_bytes()).map_err(|_| self.error())
    }

    /// Flushes; any failure so far becomes the error.
    pub fn finish(&mut self) -> Result<()> {
        match io::Write::flush(self) {
            Ok(()) if self.failed.is_none() => Ok(()),
            _ => Err(self.error()),
        }
    }

    /// The error for the first failure (or for `cause` if none was recorded).
    pub fn error(&self) -> Error {
        let cause = self
            .failed
            .as_ref()
            .map_or_else(|| "unknown error".to_string(), io::Error::to_string);
        let message = match &self.done {
            Some(what) => format!(
                "the work was done ({what}), but standard output could not be written: {cause}"
            ),
            None => format!("cannot write to standard output: {cause}"),
        };
        Error::Stdout(message)
    }

    fn record<T>(&mut self, result: io::Result<T>) -> io::Result<T> {
        if let Err(e) = &result {
            if self.failed.is_none() {
                self.failed = Some(io::Error::new(e.kind(), e.to_string()));
            }
        }
        result
    }

    fn refuse_after_failure(&self) -> io::Result<()> {
        match &self.failed {
            Some(e) => Err(io::Error::new(e.kind(), e.to_string())),
            None => Ok(()),
        }
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.refuse_after_failure()?;
        let result = self.inner.write(buf);
        self.record(result)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.refuse_after_failure()?;
        let result = self.inner.flush();
        self.record(result)
    }
}

/// Writes one line to standard error. If even that fails there is no one
/// left to tell, and the exit status still says what happened.
pub fn to_stderr(line: &str) {
    let _ = writeln!(io::stderr(), "{line}");
}

/// "1 certificate", "2 certificates": the count every report prints.
pub fn certificates(n: u64) -> String {
    format!("{n} certificate{}", if n == 1 { "" } else { "s" })
}
