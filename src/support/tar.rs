//! A POSIX tar (pax) stream writer, just what `--archive` needs: regular
//! files and directories with their modes, written in order to any `Write`;
//! and a reader of the same, for `uca verify --manifest` to check members.
//! A path that does not fit the ustar name fields gets a pax `path` record
//! (POSIX.1-2001), which GNU tar, bsdtar and Python's tarfile all read.
//! Owner and group are 0 with no names: whoever extracts owns the files.

use std::io::{self, Read, Write};

const BLOCK: usize = 512;

/// Writes tar members to `W`; [`finish`](Self::finish) writes the end marker.
pub struct TarWriter<W: Write> {
    out: W,
    /// Modification time of every member (seconds since the epoch).
    mtime: u64,
}

/// An octal field of `width` bytes: digits, then NUL.
fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    debug_assert!(
        value >> (3 * digits) == 0,
        "{value} does not fit {digits} octal digits"
    );
    let mut v = value;
    for d in field[..digits].iter_mut().rev() {
        *d = b'0' + (v & 7) as u8;
        v >>= 3;
    }
    field[digits] = 0;
}

/// Splits `path` into ustar's prefix (155 bytes) and name (100 bytes), at
/// a '/', if it fits.
fn ustar_split(path: &str) -> Option<(&str, &str)> {
    if path.len() <= 100 {
        return Some(("", path));
    }
    // The name part may end in '/' (a directory): search before it.
    let search = &path[..path.len() - 1];
    search
        .char_indices()
        .filter(|&(i, c)| c == '/' && i <= 155 && path.len() - i - 1 <= 100)
        .map(|(i, _)| (&path[..i], &path[i + 1..]))
        .next()
}

/// One pax record: "LEN key=value\n", LEN counting the whole record.
fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    while len.to_string().len() + body.len() != len {
        len = len.to_string().len() + body.len();
    }
    format!("{len}{body}").into_bytes()
}

impl<W: Write> TarWriter<W> {
    pub fn new(out: W, mtime: u64) -> TarWriter<W> {
        TarWriter { out, mtime }
    }

    /// A regular file.
    pub fn file(&mut self, path: &str, mode: u32, contents: &[u8]) -> io::Result<()> {
        self.member(path, b'0', mode, contents)
    }

    /// A directory (its path is written with a trailing '/').
    pub fn dir(&mut self, path: &str, mode: u32) -> io::Result<()> {
        let path = format!("{}/", path.trim_end_matches('/'));
        self.member(&path, b'5', mode, &[])
    }

    /// The underlying writer, e.g. to flush or sync it between members.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    pub fn get_ref(&self) -> &W {
        &self.out
    }

    /// The underlying writer, without the end marker (an archive given up).
    pub fn into_inner(self) -> W {
        self.out
    }

    /// Writes the end-of-archive marker (two zero blocks) and returns the
    /// writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[0; 2 * BLOCK])?;
        Ok(self.out)
    }

    fn member(&mut self, path: &str, kind: u8, mode: u32, contents: &[u8]) -> io::Result<()> {
        let (prefix, name) = match ustar_split(path) {
            Some(split) => split,
            None => {
                let record = pax_record("path", path);
                self.header("././@PaxHeader", "", b'x', 0o644, record.len() as u64)?;
                self.data(&record)?;
                // Readers that know pax use the record; others see a
                // truncated name rather than a wrong one.
                let cut = path.char_indices().take_while(|&(i, _)| i < 100).last();
                let end = cut.map_or(0, |(i, c)| i + c.len_utf8()).min(100);
                ("", &path[..end])
            }
        };
        self.header(name, prefix, kind, mode, contents.len() as u64)?;
        self.data(contents)
    }

    fn header(
        &mut self,
        name: &str,
        prefix: &str,
        kind: u8,
        mode: u32,
        size: u64,
    ) -> io::Result<()> {
        let mut h = [0u8; BLOCK];
        h[..name.len()].copy_from_slice(name.as_bytes());
        octal(&mut h[100..108], u64::from(mode & 0o7777));
        octal(&mut h[108..116], 0);
        octal(&mut h[116..124], 0);
        octal(&mut h[124..136], size);
        octal(&mut h[136..148], self.mtime);
        h[156] = kind;
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[345..345 + prefix.len()].copy_from_slice(prefix.as_bytes());
        // The checksum is computed with its own field as spaces.
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        octal(&mut h[148..155], u64::from(sum));
        h[155] = b' ';
        self.out.write_all(&h)
    }

    fn data(&mut self, contents: &[u8]) -> io::Result<()> {
        self.out.write_all(contents)?;
        let pad = (BLOCK - contents.len() % BLOCK) % BLOCK;
        self.out.write_all(&[0; BLOCK][..pad])
    }
}

/// Reads the regular files of a tar stream in order (directories and other
/// kinds are passed over; a pax `path` record names the member after it).
/// A member larger than `max` is passed over too, its contents unread.
pub struct TarReader<R: Read> {
    input: R,
    max: u64,
}

/// One regular file of an archive.
pub struct Member {
    pub path: String,
    pub contents: Vec<u8>,
}

fn field_text(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..end]
}

fn parse_octal(field: &[u8]) -> io::Result<u64> {
    let text = field_text(field);
    let digits = std::str::from_utf8(text).unwrap_or("").trim();
    u64::from_str_radix(digits, 8).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "a tar header has a malformed number",
        )
    })
}

/// The `path` of a pax extended header's records, if it has one.
fn pax_path(records: &[u8]) -> Option<String> {
    let mut rest = records;
    let mut path = None;
    while !rest.is_empty() {
        let space = rest.iter().position(|&b| b == b' ')?;
        let len: usize = std::str::from_utf8(&rest[..space]).ok()?.parse().ok()?;
        if len <= space || len > rest.len() {
            return None;
        }
        let record = &rest[space + 1..len];
        if let Some(value) = record.strip_prefix(b"path=") {
            let value = value.strip_suffix(b"\n").unwrap_or(value);
            path = Some(String::from_utf8_lossy(value).into_owned());
        }
        rest = &rest[len..];
    }
    path
}

impl<R: Read> TarReader<R> {
    pub fn new(input: R, max: u64) -> TarReader<R> {
        TarReader { input, max }
    }

    /// The contents of a member of `size` bytes and its padding; `None` if
    /// over the limit (then skipped).
    fn body(&mut self, size: u64) -> io::Result<Option<Vec<u8>>> {
        let padded = size.div_ceil(BLOCK as u64) * BLOCK as u64;
        if size > self.max {
            io::copy(&mut (&mut self.input).take(padded), &mut io::sink())?;
            return Ok(None);
        }
        let mut data = vec![0; padded as usize];
        self.input.read_exact(&mut data)?;
        data.truncate(size as usize);
        Ok(Some(data))
    }

    /// The next regular file, or `None` at the end of the archive (the
    /// zero block, or the end of a stream cut short between members).
    pub fn next_file(&mut self) -> io::Result<Option<Member>> {
        let mut long_path = None;
        loop {
            let mut h = [0u8; BLOCK];
            match self.input.read_exact(&mut h) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
                Err(e) => return Err(e),
            }
            if h.iter().all(|&b| b == 0) {
                return Ok(None);
            }
            let size = parse_octal(&h[124..136])?;
            let kind = h[156];
            let body = match self.body(size) {
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
                other => other?,
            };
            match kind {
                b'x' => long_path = body.as_deref().and_then(pax_path),
                b'0' | 0 => {
                    let path = long_path.take().unwrap_or_else(|| {
                        let name = String::from_utf8_lossy(field_text(&h[..100]));
                        let prefix = String::from_utf8_lossy(field_text(&h[345..500]));
                        if prefix.is_empty() {
                            name.into_owned()
                        } else {
                            format!("{prefix}/{name}")
                        }
                    });
                    if let Some(contents) = body {
                        return Ok(Some(Member { path, contents }));
                    }
                }
                _ => long_path = None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        let r = pax_record("path", "a");
        assert_eq!(r, b"9 path=a\n");
        // Across the lengths where the count gains a digit (9/10, 99/100...).
        for n in 0..1100 {
            let r = String::from_utf8(pax_record("path", &"x".repeat(n))).unwrap();
            let (len, _) = r.split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), r.len(), "value of {n} bytes");
        }
    }

    #[test]
    fn long_paths_split_or_use_pax() {
        assert_eq!(ustar_split("a/b"), Some(("", "a/b")));
        let p = format!("{}/{}", "d".repeat(120), "f".repeat(90));
        assert_eq!(ustar_split(&p), Some((&p[..120], &p[121..])));
        assert_eq!(ustar_split(&"f".repeat(101)), None);
        let mut out = Vec::new();
        let mut t = TarWriter::new(&mut out, 0);
        t.file(&"f".repeat(300), 0o600, b"hi").unwrap();
        t.finish().unwrap();
        // pax header + its record + the file header + its data + the end.
        assert_eq!(out.len(), 4 * BLOCK + 2 * BLOCK);
        assert_eq!(out[156], b'x');
    }

    #[test]
    fn the_reader_reads_back_what_the_writer_wrote() {
        let mut out = Vec::new();
        let mut t = TarWriter::new(&mut out, 0);
        let long = format!("{}/{}/cert.pem", "d".repeat(150), "n".repeat(120));
        t.dir("certs", 0o755).unwrap();
        t.file("certs/a/cert.pem", 0o644, b"one").unwrap();
        t.file(&long, 0o644, b"two").unwrap();
        t.file("big", 0o644, &[7; 2000]).unwrap();
        t.file("last", 0o600, b"").unwrap();
        t.finish().unwrap();
        let mut r = TarReader::new(out.as_slice(), 1000);
        let mut read = Vec::new();
        while let Some(m) = r.next_file().unwrap() {
            read.push((m.path, m.contents));
        }
        assert_eq!(
            read,
            [
                ("certs/a/cert.pem".to_string(), b"one".to_vec()),
                (long, b"two".to_vec()),
                ("last".to_string(), Vec::new()),
            ]
        );
        // Cut short between members: what came before is read.
        let mut r = TarReader::new(&out[..3 * BLOCK], 1000);
        assert_eq!(r.next_file().unwrap().unwrap().path, "certs/a/cert.pem");
        assert!(r.next_file().unwrap().is_none());
        // Cut inside a member: that member is not returned.
        let mut r = TarReader::new(&out[..2 * BLOCK + 100], 1000);
        assert!(r.next_file().unwrap().is_none());
    }

    #[test]
    fn header_checksum_and_fields() {
        let mut out = Vec::new();
        let mut t = TarWriter::new(&mut out, 1_700_000_000);
        t.file("d/key.pem", 0o600, b"secret").unwrap();
        let h = &out[..BLOCK];
        assert_eq!(&h[..9], b"d/key.pem");
        assert_eq!(&h[100..108], b"0000600\0");
        assert_eq!(&h[124..136], b"00000000006\0");
        let stored = u32::from_str_radix(std::str::from_utf8(&h[148..154]).unwrap(), 8).unwrap();
        let mut copy = h.to_vec();
        copy[148..156].copy_from_slice(b"        ");
        assert_eq!(stored, copy.iter().map(|&b| u32::from(b)).sum::<u32>());
        assert_eq!(&out[BLOCK..BLOCK + 6], b"secret");
    }
}
