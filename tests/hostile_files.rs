//! Hostile file handling: concurrent `init` on one directory, the modes of
//! the directory `init` claims, output paths checked before any key is made,
//! passphrase files read exactly as OpenSSL reads them, and standard output
//! that cannot be written.

mod common;

use common::*;

/// The passphrase files whose reading must agree with `openssl -passin file:`.
const PASSPHRASE_FILES: &[(&str, &str)] = &[
    ("lf.txt", "correct horse battery staple\n"),
    ("no-newline.txt", "correct horse battery staple"),
    ("crlf.txt", "correct horse battery staple\r\n"),
    ("trailing-spaces.txt", "correct horse battery staple  \n"),
];

fn openssl_unlocks(s: &Scratch, key: &str, pass_file: &str) -> bool {
    let (ok, _) = run(
        "openssl",
        &[
            "pkey",
            "-in",
            key,
            "-passin",
            &format!("file:{pass_file}"),
            "-noout",
        ],
        s.path(),
    );
    ok
}

fn uca_unlocks(s: &Scratch, ca: &str, pass_file: &str, out: &str) -> bool {
    s.uca(&[
        "issue",
        "--dir",
        ca,
        "--out",
        out,
        "--passphrase-file",
        pass_file,
        "web.internal",
    ])
    .status
    .success()
}

#[test]
fn passphrase_files_unlock_in_uca_iff_they_unlock_in_openssl() {
    let s = Scratch::new();
    s.init_ca(&[]);
    for (i, (name, text)) in PASSPHRASE_FILES.iter().enumerate() {
        std::fs::write(s.join(name), text).unwrap();
        // A key made with the bytes of pass.txt: both tools must agree.
        let by_uca = uca_unlocks(&s, "ca", name, &format!("out-{i}"));
        let by_openssl = openssl_unlocks(&s, "ca/private/ca-key.pem", name);
        assert_eq!(
            by_uca, by_openssl,
            "{name:?}: uca {by_uca}, OpenSSL {by_openssl}"
        );
        // A key made from this very file, when uca accepts it for init.
        let ca = format!("ca-{i}");
        let init = s.uca(&[
            "init",
            "--dir",
            &ca,
            "--name",
            "Root",
            "--passphrase-file",
            name,
        ]);
        if init.status.success() {
            let key = format!("{ca}/private/ca-key.pem");
            assert!(
                openssl_unlocks(&s, &key, name),
                "{name:?}: OpenSSL cannot open the key uca made with it"
            );
            assert!(
                uca_unlocks(&s, &ca, name, &format!("out-own-{i}")),
                "{name:?}"
            );
        } else {
            assert!(!s.join(&ca).exists(), "{name:?}: a refused init left {ca}");
        }
    }
}

#[test]
fn crlf_passphrase_file_is_refused_with_one_line_for_init_and_unlock() {
    let s = Scratch::new();
    s.init_ca(&[]);
    std::fs::write(s.join("crlf.txt"), "correct horse battery staple\r\n").unwrap();
    let before = s.files();
    let unlock = s.uca(&[
        "issue",
        "--dir",
        "ca",
        "--out",
        "out",
        "--passphrase-file",
        "crlf.txt",
        "web.internal",
    ]);
    fails_with(&unlock, "crlf.txt ends in CR LF (a Windows line ending)");
    let init = s.uca(&[
        "init",
        "--dir",
        "new",
        "--name",
        "Root",
        "--passphrase-file",
        "crlf.txt",
    ]);
    fails_with(&init, "save it with LF line endings");
    assert_eq!(s.files(), before);
}
