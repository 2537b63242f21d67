//! Man pages and shell completions, generated from the clap definition so
//! they can never drift from the real command line (a test compares the
//! committed pages under man/ with a fresh rendering).

use std::io::Write;

use crate::cli::{self, Shell};

pub fn completions(shell: Shell, out: &mut dyn Write) {
    use clap_complete::Shell as S;
    let shell = match shell {
        Shell::Bash => S::Bash,
        Shell::Zsh => S::Zsh,
        Shell::Fish => S::Fish,
        Shell::Elvish => S::Elvish,
        Shell::Powershell => S::PowerShell,
    };
    clap_complete::generate(shell, &mut cli::command(), "uca", out);
}

/// Every man page: `uca.1` and one `uca-SUBCOMMAND.1` per subcommand,
/// as (file name, contents).
pub fn man_pages() -> Vec<(String, Vec<u8>)> {
    let mut cmd = cli::command();
    cmd.build();
    let mut pages = Vec::new();
    let mut top = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut top).expect("rendering to memory cannot fail");
    top.extend_from_slice(EXTRA_SECTIONS.as_bytes());
    pages.push(("uca.1".to_string(), top));
    for sub in cmd.get_subcommands() {
        let name = format!("uca-{}", sub.get_name());
        let sub = sub.clone().name(name.clone()).version(env!("CARGO_PKG_VERSION"));
        let mut buf = Vec::new();
        clap_mangen::Man::new(sub).render(&mut buf).expect("rendering to memory cannot fail");
        pages.push((format!("{name}.1"), buf));
    }
    pages
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
\fIprivate/ca-key.pem\fR
the CA key, ENCRYPTED PRIVATE KEY (PKCS#8, PBES2 scrypt + AES-256-CBC), mode 0600
.TP
\fIprivate/passphrase\fR
only with \-\-generate\-passphrase; mode 0400; destroyed by \fBuca seal\fR
.TP
\fImanifest.json\fR, \fImanifest.sig\fR, \fIsealed.json\fR
written by \fBuca seal\fR
.SH ENVIRONMENT
.TP
\fBUCA_PASSPHRASE\fR
the CA passphrase; removed from the environment as soon as it is read
.SH EXIT STATUS
0 on success, 1 on any error (one line on standard error), 2 for a malformed
command line. \fBuca check\fR exits 0 (all OK), 1 (WARN), 2 (EXPIRED) or 3 (unreadable input).
"#;
