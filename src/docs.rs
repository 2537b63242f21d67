//! Man pages, generated from the clap definition so they can never drift
//! from the real command line (a test compares the committed pages under
//! man/ with a fresh rendering). Completions are `commands::completions`'s.

use crate::cli;

/// Every man page: `uca.1`, one `uca-SUBCOMMAND.1` per subcommand and
/// `uca-SUBCOMMAND-SUBSUBCOMMAND.1` for nested ones (the names clap_mangen
/// refers to in SUBCOMMANDS sections), as (file name, contents).
pub fn man_pages() -> Vec<(String, Vec<u8>)> {
    let mut cmd = cli::command();
    cmd.build();
    let mut pages = Vec::new();
    // The text after --help becomes a NOTES section of our own: clap_mangen
    // would fill it as one paragraph under "EXTRA", mangling the examples.
    let notes = cmd
        .get_after_help()
        .map(|h| notes_section(&h.to_string()))
        .unwrap_or_default();
    let mut top = Vec::new();
    clap_mangen::Man::new(cmd.clone().after_help(None::<&str>))
        .render(&mut top)
        .expect("rendering to memory cannot fail");
    top.extend_from_slice(notes.as_bytes());
    top.extend_from_slice(EXTRA_SECTIONS.as_bytes());
    top.extend_from_slice(see_also(&subcommand_pages("uca", &cmd, None)).as_bytes());
    pages.push(("uca.1".to_string(), top));
    add_subcommand_pages("uca", &cmd, &mut pages);
    pages
}

/// Page names of `cmd`'s subcommands, e.g. `uca-init`, leaving out `except`.
fn subcommand_pages(page: &str, cmd: &clap::Command, except: Option<&str>) -> Vec<String> {
    cmd.get_subcommands()
        .filter(|s| Some(s.get_name()) != except)
        .map(|s| format!("{page}-{}", s.get_name()))
        .collect()
}

/// Renders a page for every subcommand of `cmd` (whose page is `page`),
/// recursively. Each page's SEE ALSO names its parent, its own subcommands'
/// pages and its siblings.
fn add_subcommand_pages(page: &str, cmd: &clap::Command, pages: &mut Vec<(String, Vec<u8>)>) {
    for sub in cmd.get_subcommands() {
        let name = format!("{page}-{}", sub.get_name());
        let sub_page = sub
            .clone()
            .name(name.clone())
            .version(env!("CARGO_PKG_VERSION"));
        let mut buf = Vec::new();
        clap_mangen::Man::new(sub_page)
            .render(&mut buf)
            .expect("rendering to memory cannot fail");
        let mut refs = vec![page.to_string()];
        refs.extend(subcommand_pages(&name, sub, None));
        refs.extend(subcommand_pages(page, cmd, Some(sub.get_name())));
        buf.extend_from_slice(see_also(&refs).as_bytes());
        pages.push((format!("{name}.1"), buf));
        add_subcommand_pages(&name, sub, pages);
    }
}

/// A SEE ALSO section naming the given pages (all in section 1).
fn see_also(pages: &[String]) -> String {
    let refs: Vec<String> = pages
        .iter()
        .map(|p| format!("\\fB{}\\fR(1)", roff_text(p)))
        .collect();
    format!(".SH \"SEE ALSO\"\n{}\n", refs.join(", "))
}

/// Escapes plain text for roff: backslashes, hyphens (so they stay ASCII
/// minus signs and can be searched for) and control characters at the
/// start of a line.
fn roff_text(line: &str) -> String {
    let escaped = line.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

/// Renders help text as roff: paragraphs separated by blank lines are
/// filled, lines indented by spaces (examples) are kept exactly as written.
fn notes_section(text: &str) -> String {
    let mut out = String::from(".SH NOTES\n");
    for paragraph in text.trim().split("\n\n") {
        out.push_str(".PP\n");
        let mut verbatim = false;
        for line in paragraph.lines() {
            let indented = line.starts_with(' ');
            if indented && !verbatim {
                out.push_str(".RS 4\n.nf\n");
                verbatim = true;
            } else if !indented && verbatim {
                out.push_str(".fi\n.RE\n");
                verbatim = false;
            }
            let line = if indented { line.trim_start() } else { line };
            out.push_str(&roff_text(line));
            out.push('\n');
        }
        if verbatim {
            out.push_str(".fi\n.RE\n");
        }
    }
    out
}

const EXTRA_SECTIONS: &str = r#".SH FILES
A CA directory created by \fBuca init\fR holds:
.TP
\fIca.pem\fR
the CA certificate; give it to every client
.TP
\fIca.toml\fR
settings: name, key type, path length, permitted names, default SAN rules
.TP
\fIledger.jsonl\fR
one JSON line per issued certificate (serial, subject, SANs, profile, validity, SHA-256, path)
.TP
\fIledger.lock\fR
lock file: only one uca process signs with the CA at a time
.TP
\fIprivate/ca-key.pem\fR
the CA key, ENCRYPTED PRIVATE KEY (PKCS#8, PBES2 scrypt + AES-256-CBC), mode 0600
.TP
\fIprivate/passphrase\fR
only with \-\-generate\-passphrase; mode 0400; destroyed by \fBuca seal\fR
.TP
\fImanifest.json\fR, \fImanifest.sha256\fR, \fImanifest.sig\fR, \fIsealed.json\fR
written by \fBuca seal\fR: \fImanifest.sig\fR signs \fImanifest.sha256\fR, the SHA\-256 of \fImanifest.json\fR
.PP
\fBuca issue \-\-out\fR \fIOUT\fR writes one directory per NAME:
.TP
\fIOUT/NAME/cert.pem\fR
the certificate
.TP
\fIOUT/NAME/key.pem\fR
its private key, unencrypted PKCS#8, mode 0600
.TP
\fIOUT/NAME/chain.pem\fR
the certificate followed by the CA certificate
.TP
\fIOUT/NAME/ca.pem\fR
the CA certificate, to trust peers
.SH ENVIRONMENT
.TP
\fBUCA_PASSPHRASE\fR
the CA passphrase; removed from the environment as soon as it is read
.SH EXIT STATUS
0 on success, 1 on any error (one line on standard error), 2 for a malformed
command line. \fBuca check\fR exits 0 (all OK), 1 (WARN), 2 (EXPIRED) or 3 (unreadable input).
"#;
