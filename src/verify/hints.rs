//! verify's words for what fixes a [`Diagnosis`]: the typed remedy the registry client found,
//! said with verify's own flags (`--mirror`, `--timeout`, `--ca-cert`, …).

use crate::registry::{Diagnosis, Remedy};

/// The hint for `d`, naming verify's flags.
pub fn hint(d: &Diagnosis) -> Option<String> {
    let host = &d.host;
    Some(match d.remedy.as_ref()? {
        Remedy::UseScheme { https: true } => format!("use --mirror https://{host}"),
        Remedy::UseScheme { https: false } => format!(
            "use --mirror http://{host} (and arm it as an insecure/plain-HTTP mirror)"
        ),
        Remedy::StartOrFixPort => "start the mirror or fix the port in --mirror".into(),
        Remedy::FixHostName => "fix the name in --mirror or this runner's DNS".into(),
        Remedy::TrustCa => {
            "pass the mirror's CA certificate with --ca-cert PATH, or fix the mirror's certificate"
                .into()
        }
        Remedy::CheckReachable => "check that the mirror is up and reachable from this runner (firewall?), or raise --timeout".into(),
        Remedy::CheckSchemeOrLog => {
            "if the mirror speaks HTTPS, use https:// in --mirror; otherwise check the mirror's log"
                .into()
        }
        Remedy::GiveCredentials => format!(
            "pass --username and --password-stdin, or log in with `docker login {host}`"
        ),
        Remedy::GiveUserPassword => "pass --username and --password-stdin".into(),
        Remedy::CheckImage => {
            "check the image name and tag (--image), and that the mirror proxies the image's registry"
                .into()
        }
        Remedy::PickPlatform => "pass --platform".into(),
        Remedy::OtherImage => "use another --image".into(),
    })
}

/// The one sentence verify shows: the fact, the hint, and the proxy note.
pub fn message(d: &Diagnosis) -> String {
    match hint(d) {
        Some(h) => format!("{}: {h}{}", d.fact, d.proxy_note()),
        None => d.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{classify_chain, Kind};

    #[test]
    fn hints_name_verifys_flags() {
        let d = classify_chain(
            "tcp connect error: Connection refused (os error 111)",
            false,
            true,
            "http://127.0.0.1:1/v2/",
        );
        assert_eq!(
            message(&d),
            "connection to 127.0.0.1:1 refused: nothing listens there: start the mirror or fix the port in --mirror"
        );
        let d = Diagnosis::new(Kind::NotFound, "x has no linux/s390x image")
            .with_remedy(Remedy::PickPlatform);
        assert_eq!(message(&d), "x has no linux/s390x image: pass --platform");
        let plain = Diagnosis::new(Kind::ServerError, "m answered 502");
        assert_eq!(message(&plain), "m answered 502");
    }
}
