//! Plan files: TOML in, a validated plan (or one clear error) out, for a
//! ceremony (no CA yet) and for `issue --plan` under an existing CA. The
//! first certificates of an accepted plan are expanded and validated too.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use uca::pki::constraints::{NameConstraints, Permit};
use uca::ca::plan::{NamePattern, Plan};

fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("uca-fuzz-plan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // A pkcs12_password_file = "p12.txt" in a plan finds this one.
        std::fs::write(dir.join("p12.txt"), "bundle password 123\n").unwrap();
        dir
    })
}

fn one_line(e: &uca::Error) {
    let s = e.to_string();
    assert!(!s.contains(['\n', '\r']), "multi-line error: {s:?}");
}

fn exercise(plan: &Plan) {
    assert!(plan.total <= uca::ca::plan::MAX_CERTIFICATES);
    for item in plan.items(Path::new("out")).take(64) {
        match item {
            Ok(item) => {
                assert!(!item.sans.is_empty());
                assert!(item.target.starts_with("out"));
                for san in &item.sans {
                    san.to_rcgen().expect("a validated SAN must encode");
                }
            }
            Err(e) => one_line(&e),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // Each line alone as a NAME pattern (ranges such as web{1..50}).
    if let Ok(text) = std::str::from_utf8(data) {
        for line in text.lines().take(16) {
            if let Ok(p) = NamePattern::parse(line) {
                let n = p.count();
                assert!(n >= 1);
                let got = p.iter().take(3).count() as u64;
                assert_eq!(got, n.min(3));
            }
        }
    }
    let path = scratch().join("plan.toml");
    std::fs::write(&path, data).unwrap();
    // As a ceremony plan: its own [ca] section.
    match Plan::load(&path, None) {
        Ok(plan) => exercise(&plan),
        Err(e) => one_line(&e),
    }
    // Under an existing CA constrained to `internal` and 10.0.0.0/8 that
    // expires in ten years.
    let constraints = NameConstraints(vec![
        Permit::parse("internal").unwrap(),
        Permit::parse("10.0.0.0/8").unwrap(),
    ]);
    let not_after = time::OffsetDateTime::now_utc() + time::Duration::days(3650);
    match Plan::load(&path, Some((&constraints, not_after))) {
        Ok(plan) => exercise(&plan),
        Err(e) => one_line(&e),
    }
});
