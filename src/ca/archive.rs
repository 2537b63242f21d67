//! `--archive FILE|-`: a plan's whole output layout as one tar stream
//! instead of directories. The members are exactly the files the directory
//! layout would hold (the same rendered bytes, keys mode 0600), named as they
//! would be under OUT, so `tar -xf FILE -C OUT` gives that layout.
//!
//! The archive is written in plan order, batch by batch; a batch is flushed
//! (and for a file, synced) before the ledger records it, so the ledger never
//! names a member a crash could take away: a killed run leaves a truncated
//! archive whose recorded members are all whole.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::support::error::{Error, IoContext, Result};
use crate::support::fsutil;
use crate::support::output::RenderedFile;
use crate::support::tar::TarWriter;

/// Where a stream output (`--archive`, `--k8s-manifest`) goes: a file, or
/// standard output (`-`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamTarget {
    File(PathBuf),
    Stdout,
}

impl StreamTarget {
    /// `-` is standard output; anything else a file.
    pub fn from_arg(arg: &Path) -> StreamTarget {
        if arg == Path::new("-") {
            StreamTarget::Stdout
        } else {
            StreamTarget::File(arg.to_path_buf())
        }
    }

    /// What the ledger records: the absolute path, or `-`.
    pub fn recorded_name(&self) -> Result<String> {
        match self {
            StreamTarget::Stdout => Ok("-".into()),
            StreamTarget::File(p) => Ok(fsutil::resolve(p)?.display().to_string()),
        }
    }

    /// For messages: the path as given, or "standard output".
    pub fn shown(&self) -> String {
        match self {
            StreamTarget::Stdout => "standard output".into(),
            StreamTarget::File(p) => p.display().to_string(),
        }
    }

    /// Checked before any key is made: a file must be new (or `--force`)
    /// and creatable, never inside `private` (the CA's private folder);
    /// standard output must not be a terminal.
    pub fn check(&self, flag: &'static str, force: bool, private: Option<&Path>) -> Result<()> {
        match self {
            StreamTarget::Stdout => {
                if crate::support::stdout::data_stream().is_terminal() {
                    return Err(Error::invalid(
                        flag,
                        "-",
                        "standard output is a terminal; redirect it to a file or a pipe, or give --archive FILE",
                    ));
                }
                Ok(())
            }
            StreamTarget::File(path) => {
                if let Some(private) = private {
                    if fsutil::resolve(path)?.starts_with(fsutil::resolve(private)?) {
                        return Err(Error::invalid(
                            flag,
                            path.display().to_string(),
                            format!(
                                "it is inside the CA's private folder {}; choose another file",
                                private.display()
                            ),
                        ));
                    }
                }
                match std::fs::symlink_metadata(path) {
                    Ok(m) if m.is_dir() => Err(Error::invalid(
                        flag,
                        path.display().to_string(),
                        "it is a directory; give a file name",
                    )),
                    Ok(_) if !force => Err(Error::Exists(path.clone())),
                    Ok(_) => Ok(()),
                    Err(_) => fsutil::check_file_creatable(flag, path),
                }
            }
        }
    }
}

/// A stream output opened for one run: written in order, flushed (and for
/// a file, synced) before the ledger records what it holds.
pub struct Stream {
    out: BufWriter<Box<dyn Write + Send + Sync>>,
    /// The file, to sync (none for standard output).
    file: Option<File>,
    target: StreamTarget,
    /// Whether the new file's directory entry has been synced.
    dir_synced: bool,
}

impl Stream {
    /// Opens `target` under the CA's lock. An existing file is replaced
    /// only with `force`, and never when `recorded` (the ledger names
    /// certificates inside it). The file is made 0600: keys go in it.
    pub fn open(target: &StreamTarget, force: bool, recorded: bool) -> Result<Stream> {
        let (out, file): (Box<dyn Write + Send + Sync>, Option<File>) = match target {
            StreamTarget::Stdout => (Box::new(crate::support::stdout::data_stream()), None),
            StreamTarget::File(path) => {
                if std::fs::symlink_metadata(path).is_ok() {
                    if !force {
                        return Err(Error::Exists(path.clone()));
                    }
                    if recorded {
                        return Err(Error::msg(format!(
                            "{} holds certificates the ledger records; uca never removes them, even with --force: choose another file",
                            path.display()
                        )));
                    }
                    std::fs::remove_file(path).ctx("replace", path)?;
                }
                let f = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .ctx("create", path)?;
                let sync = f.try_clone().ctx("open", path)?;
                (Box::new(f), Some(sync))
            }
        };
        Ok(Stream {
            out: BufWriter::with_capacity(1 << 18, out),
            file,
            target: target.clone(),
            dir_synced: false,
        })
    }

    fn error(&self, e: std::io::Error) -> Error {
        match &self.target {
            StreamTarget::File(p) => Error::io("write", p, e),
            StreamTarget::Stdout => Error::msg(format!("cannot write to standard output: {e}")),
        }
    }

    /// Removes the file this run created and wrote nothing durable to (a
    /// run that stopped before its first batch); standard output stays.
    pub fn discard(self) {
        if let StreamTarget::File(p) = &self.target {
            let _ = std::fs::remove_file(p);
        }
    }

    /// Appends one YAML document (a multi-document stream: each begins
    /// with `---`).
    pub fn write_document(&mut self, yaml: &[u8]) -> Result<()> {
        self.out
            .write_all(b"---\n")
            .and_then(|()| self.out.write_all(yaml))
            .map_err(|e| self.error(e))
    }

    /// Makes what was written so far durable (a file, with its directory
    /// entry) or delivered (standard output).
    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(|e| self.error(e))?;
        if let Some(f) = &self.file {
            f.sync_data().map_err(|e| self.error(e))?;
        }
        if let (false, StreamTarget::File(p)) = (self.dir_synced, &self.target) {
            fsutil::sync_dir(fsutil::parent_of(p))?;
            self.dir_synced = true;
        }
        Ok(())
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.out.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// The open archive of one run.
pub struct ArchiveSink {
    tar: TarWriter<Stream>,
    recorded_name: String,
    /// Directories above the certificate directories already written (a
    /// few per group; the certificate directories themselves are not kept).
    dirs: HashSet<String>,
}

/// A path inside the archive: '/'-separated, relative.
fn member_name(path: &Path) -> String {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

impl ArchiveSink {
    /// Opens the archive under the CA's lock (see [`Stream::open`]);
    /// `recorded`: the archives the ledger names.
    pub fn open(
        target: &StreamTarget,
        force: bool,
        recorded: &HashSet<String>,
        mtime: u64,
    ) -> Result<ArchiveSink> {
        let recorded_name = target.recorded_name()?;
        let stream = Stream::open(target, force, recorded.contains(&recorded_name))?;
        Ok(ArchiveSink {
            tar: TarWriter::new(stream, mtime),
            recorded_name,
            dirs: HashSet::new(),
        })
    }

    pub fn recorded_name(&self) -> &str {
        &self.recorded_name
    }

    fn io(&mut self, e: std::io::Error) -> Error {
        self.tar.get_mut().error(e)
    }

    /// Writes one certificate directory `dir` (relative, as under OUT) and
    /// its files.
    pub fn write_dir(&mut self, dir: &Path, files: &[RenderedFile]) -> Result<()> {
        let dir_name = member_name(dir);
        let mut ancestors: Vec<String> = dir
            .ancestors()
            .skip(1)
            .filter(|a| !a.as_os_str().is_empty())
            .map(member_name)
            .collect();
        ancestors.reverse();
        for a in ancestors {
            if !self.dirs.contains(&a) {
                self.tar.dir(&a, 0o755).map_err(|e| self.io(e))?;
                self.dirs.insert(a);
            }
        }
        self.tar.dir(&dir_name, 0o755).map_err(|e| self.io(e))?;
        let mut subdirs: Vec<&str> = Vec::new();
        for f in files {
            if let Some((sub, _)) = f.path.rsplit_once('/') {
                if !subdirs.contains(&sub) {
                    self.tar
                        .dir(&format!("{dir_name}/{sub}"), 0o755)
                        .map_err(|e| self.io(e))?;
                    subdirs.push(sub);
                }
            }
            self.tar
                .file(
                    &format!("{dir_name}/{}", f.path),
                    f.mode.bits(),
                    &f.contents,
                )
                .map_err(|e| self.io(e))?;
        }
        Ok(())
    }

    /// The member name of `file` in certificate directory `dir`.
    pub fn member(dir: &Path, file: &str) -> String {
        format!("{}/{file}", member_name(dir))
    }

    /// Makes what was written so far durable or delivered: called before
    /// the ledger records it.
    pub fn flush(&mut self) -> Result<()> {
        self.tar.get_mut().flush()
    }

    /// Ends the archive, flushed and synced.
    pub fn finish(self) -> Result<()> {
        let target = self.tar_target();
        let mut stream = match self.tar.finish() {
            Ok(stream) => stream,
            Err(e) => return Err(Error::msg(format!("cannot end the archive {target}: {e}"))),
        };
        stream.flush()
    }

    /// The archive as messages name it.
    fn tar_target(&self) -> String {
        self.tar.get_ref().target.shown()
    }

    /// Removes the archive file this run just created (see
    /// [`Stream::discard`]).
    pub fn discard(self) {
        self.tar.into_inner().discard();
    }
}
