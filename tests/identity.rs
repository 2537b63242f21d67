//! Certificates as identities: subject templates (`--subject`, a plan
//! group's `subject`), extra extended key usages (`--eku`, `eku`) and exact
//! lifetimes (`--valid-for`, `--not-after`, `valid_for`, `not_after`),
//! read back with OpenSSL as the services that map certificates to users
//! read them. The refusals are in fixtures/bad/identity.toml.

mod common;

use common::*;

fn openssl_out(s: &Scratch, args: &[&str]) -> String {
    let (good, out) = run("openssl", args, s.path());
    assert!(good, "openssl {args:?}: {out}");
    out
}

fn subject(s: &Scratch, cert: &str, nameopt: &str) -> String {
    openssl_out(
        s,
        &[
            "x509", "-in", cert, "-noout", "-subject", "-nameopt", nameopt,
        ],
    )
    .trim()
    .to_string()
}

#[test]
fn a_subject_template_is_written_in_order_with_escapes_and_placeholders() {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal"]);
    s.issue(&[
        "--profile",
        "client",
        "--subject",
        r"C=DE,O=Acme\, Inc.,OU={hostbase},CN={name}",
        "pg12.internal",
    ]);
    let cert = "certs/pg12.internal/cert.pem";
    // DER order is the order written; RFC 2253 (PostgreSQL's clientname=DN,
    // RabbitMQ) prints it reversed, with the comma escaped.
    assert_eq!(
        subject(&s, cert, "oneline"),
        r#"subject=C = DE, O = "Acme, Inc.", OU = pg, CN = pg12.internal"#
    );
    assert_eq!(
        subject(&s, cert, "RFC2253"),
        r"subject=CN=pg12.internal,OU=pg,O=Acme\, Inc.,C=DE"
    );
    // The chain still verifies: the subject changes nothing else.
    openssl_out(
        &s,
        &[
            "verify",
            "-CAfile",
            "ca/ca.pem",
            "-purpose",
            "sslclient",
            cert,
        ],
    );
}

/// An attribute type given twice (`OU=db,OU=ops`) is kept, in the order
/// written, as OpenSSL reads it and the ledger records it, and the
/// certificate (signed again by uca with the subject it wrote) verifies,
/// under a P-256 and an RSA root, from the command line and a plan group.
#[test]
fn repeated_attributes_are_kept_in_the_order_written() {
    for key in ["ec-p256", "rsa-2048"] {
        let s = Scratch::new();
        s.init_ca(&["--permit", "internal", "--key", key]);
        s.issue(&[
            "--profile",
            "client",
            "--subject",
            "O=Acme,OU=db,OU=ops,CN={name}",
            "pg1.internal",
        ]);
        let cert = "certs/pg1.internal/cert.pem";
        assert_eq!(
            subject(&s, cert, "oneline"),
            "subject=O = Acme, OU = db, OU = ops, CN = pg1.internal",
            "{key}"
        );
        assert_eq!(
            subject(&s, cert, "RFC2253"),
            "subject=CN=pg1.internal,OU=ops,OU=db,O=Acme",
            "{key}"
        );
        openssl_out(
            &s,
            &[
                "verify",
                "-CAfile",
                "ca/ca.pem",
                "-purpose",
                "sslclient",
                cert,
            ],
        );
        ok(&s.uca(&["verify", cert, "--ca", "ca/ca.pem", "--client"]));
        let ledger = std::fs::read_to_string(s.join("ca/ledger.jsonl")).unwrap();
        assert!(
            ledger.contains(r#""subject":"O=Acme, OU=db, OU=ops, CN=pg1.internal""#),
            "{ledger}"
        );
        std::fs::write(
            s.join("plan.toml"),
            "[[group]]\nname = \"db\"\nprofile = \"client\"\nnames = [\"db{1..2}.internal\"]\nsubject = \"OU={group},OU=ops,CN={name}\"\n",
        )
        .unwrap();
        let pass = s.pass_file().display().to_string();
        ok(&s.uca(&[
            "issue",
            "--dir",
            "ca",
            "--out",
            "plan",
            "--plan",
            "plan.toml",
            "--passphrase-file",
            &pass,
        ]));
        for n in ["db1.internal", "db2.internal"] {
            let cert = format!("plan/{n}/cert.pem");
            assert_eq!(
                subject(&s, &cert, "oneline"),
                format!("subject=OU = db, OU = ops, CN = {n}")
            );
            openssl_out(&s, &["verify", "-CAfile", "ca/ca.pem", &cert]);
        }
    }
}

#[test]
fn a_plan_group_subject_names_its_group_and_keeps_other_groups_default() {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal"]);
    std::fs::write(
        s.join("plan.toml"),
        r#"
[defaults]
profile = "client"

[[group]]
name = "dba"
names = ["pg{1..2}.internal"]
subject = "O=Acme,OU={group},CN={name}"
eku = ["emailProtection"]
valid_for = "12h"

[[group]]
name = "web"
names = ["web1.internal"]
profile = "both"
"#,
    )
    .unwrap();
    s.issue(&["--plan", "plan.toml"]);
    for n in ["pg1.internal", "pg2.internal"] {
        let cert = format!("certs/{n}/cert.pem");
        assert_eq!(
            subject(&s, &cert, "RFC2253"),
            format!("subject=CN={n},OU=dba,O=Acme")
        );
        let eku = openssl_out(
            &s,
            &["x509", "-in", &cert, "-noout", "-ext", "extendedKeyUsage"],
        );
        assert!(
            eku.contains("TLS Web Client Authentication, E-mail Protection"),
            "{eku}"
        );
        let der = pem::parse(std::fs::read(s.join(&cert)).unwrap()).unwrap();
        let (_, c) = x509_parser::parse_x509_certificate(der.contents()).unwrap();
        let span = c.validity().not_after.timestamp() - c.validity().not_before.timestamp();
        assert_eq!(span, 12 * 3600 - 1, "12h, both ends included");
    }
    assert_eq!(
        subject(&s, "certs/web1.internal/cert.pem", "RFC2253"),
        "subject=CN=web1.internal"
    );
}

#[test]
fn a_certificate_named_by_an_ip_address_gets_the_cn_its_template_gives() {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal", "--permit", "10.0.0.0/8"]);
    // Without a template such a certificate has an empty subject (OpenSSL
    // would check an IP CN against the DNS constraints); with one, the CN
    // is a host name that is also a SAN.
    s.issue(&["--profile", "client", "10.0.0.7"]);
    assert_eq!(
        subject(&s, "certs/10.0.0.7/cert.pem", "RFC2253"),
        "subject="
    );
    let out = s.uca(&[
        "issue",
        "--dir",
        "ca",
        "--out",
        "named",
        "--passphrase-file",
        s.pass_file().to_str().unwrap(),
        "--profile",
        "client",
        "--subject",
        "O=Acme,CN=pg-client.internal",
        "--san",
        "DNS:pg-client.internal",
        "10.0.0.7",
    ]);
    ok(&out);
    assert_eq!(
        subject(&s, "named/10.0.0.7/cert.pem", "RFC2253"),
        "subject=CN=pg-client.internal,O=Acme"
    );
    openssl_out(
        &s,
        &[
            "verify",
            "-CAfile",
            "ca/ca.pem",
            "-purpose",
            "sslclient",
            "named/10.0.0.7/cert.pem",
        ],
    );
}

#[test]
fn extra_usages_are_added_by_name_and_by_oid() {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal"]);
    s.issue(&[
        "--eku",
        "codeSigning",
        "--eku",
        "1.3.6.1.5.5.7.3.17",
        "--eku",
        "serverAuth",
        "svc.internal",
    ]);
    let eku = openssl_out(
        &s,
        &[
            "x509",
            "-in",
            "certs/svc.internal/cert.pem",
            "-noout",
            "-ext",
            "extendedKeyUsage",
        ],
    );
    // serverAuth is already the profile's: listed once.
    assert!(
        eku.contains(
            "TLS Web Server Authentication, TLS Web Client Authentication, Code Signing, ipsec Internet Key Exchange"
        ),
        "{eku}"
    );
}

#[test]
fn not_after_is_the_instant_given() {
    let s = Scratch::new();
    s.init_ca(&["--permit", "internal"]);
    let when = time::OffsetDateTime::now_utc() + time::Duration::days(45);
    let when = when.replace_nanosecond(0).unwrap();
    let text = when
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    s.issue(&["--not-after", &text, "until.internal"]);
    let end = openssl_out(
        &s,
        &[
            "x509",
            "-in",
            "certs/until.internal/cert.pem",
            "-noout",
            "-enddate",
            "-dateopt",
            "iso_8601",
        ],
    );
    let expected = when
        .format(time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second]Z"
        ))
        .unwrap();
    assert_eq!(end.trim(), format!("notAfter={expected}"));
}
