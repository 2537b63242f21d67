//! Names, SANs, SAN rules and `--permit` values: every parser a NAME, a
//! `--san`, a `--san-rule` or a plan's strings go through. Never panics, every
//! error is one line, and whatever is accepted can be encoded and round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use uca::pki::constraints::{NameConstraints, Permit};
use uca::pki::names::{self, San};
use uca::pki::san_rule::{self, SanRule};

fn one_line<T>(r: &uca::Result<T>) {
    if let Err(e) = r {
        let s = e.to_string();
        assert!(!s.contains(['\n', '\r']), "multi-line error: {s:?}");
    }
}

fn accepted(san: &San) {
    // A validated SAN can always be put into a certificate...
    san.to_rcgen().expect("a validated SAN must encode");
    // ...and reads back as itself.
    let shown = san.to_string();
    assert_eq!(
        San::parse(&shown).ok().as_ref(),
        Some(san),
        "{shown} does not round-trip"
    );
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Lines: RULE, NAME, SAN (a missing one repeats the first).
    let mut parts = text.splitn(3, '\n');
    let rule = parts.next().unwrap_or("");
    let name = parts.next().unwrap_or(rule);
    let extra = parts.next().unwrap_or(rule);

    for s in [rule, name, extra, text] {
        let r = San::parse(s);
        one_line(&r);
        if let Ok(san) = &r {
            accepted(san);
        }
        let r = San::for_name(s);
        one_line(&r);
        if let Ok(san) = &r {
            assert!(matches!(san, San::Dns(_) | San::Ip(_)));
            accepted(san);
        }
        for wildcard in [false, true] {
            let r = names::dns_name(s, wildcard);
            one_line(&r);
            if let Ok(d) = &r {
                assert!(d.is_ascii() && d.len() <= 253, "{d:?}");
                assert!(wildcard || !d.contains('*'), "{d:?}");
            }
        }
        one_line(&names::ip_address(s));
        one_line(&names::email(s));
        one_line(&names::uri(s));
        one_line(&names::check_typography("value", s));
        assert!(!names::printable(s).contains(['\n', '\r']));
        let _ = san_rule::base_name(s);
        let r = Permit::parse(s);
        one_line(&r);
        if let Ok(p) = &r {
            assert_eq!(Permit::parse(&p.to_string()).ok().as_ref(), Some(p));
            let nc = NameConstraints(vec![p.clone()]);
            let _ = nc.to_rcgen();
            if let Ok(san) = San::parse(extra) {
                one_line(&nc.check(&san));
            }
        }
    }

    let r = SanRule::parse(rule);
    one_line(&r);
    let rules = match r {
        Ok(r) => {
            assert_eq!(SanRule::parse(&r.to_string()).ok().as_ref(), Some(&r));
            vec![r]
        }
        Err(_) => vec![SanRule::Base],
    };
    let extras: Vec<San> = San::parse(extra).into_iter().collect();
    let r = san_rule::sans_for(name, &rules, &extras);
    one_line(&r);
    if let Ok(sans) = r {
        assert!(!sans.is_empty());
        for san in &sans {
            accepted(san);
        }
    }
});
