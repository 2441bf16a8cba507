//! Host certificates: whether a certificate signed by an authority the known_hosts files
//! trust (`@cert-authority`) vouches for the host now. Checked as OpenSSH checks it: a
//! host (not user) certificate, inside its validity period, whose signature verifies
//! with the authority's key, naming the host among its principals (a certificate that
//! names none is valid for any host), and with no critical options (none is defined
//! for host certificates).

use russh::keys::PublicKey;
use russh::keys::ssh_key::certificate::CertType;
use russh::keys::ssh_key::{Certificate, HashAlg};

/// Why `cert` does not vouch for `host` (lowercased) at `now` (Unix seconds), if it does
/// not. `authority` is the key of the `@cert-authority` entry that signed it.
pub fn problem(cert: &Certificate, authority: &PublicKey, host: &str, now: u64) -> Option<String> {
    if cert.cert_type() != CertType::Host {
        return Some("it is a user certificate, not a host certificate".into());
    }
    if !(cert.valid_after() <= now && now < cert.valid_before()) {
        return Some(format!(
            "it is not valid now (valid from {} to {}, Unix time; now is {now})",
            cert.valid_after(),
            cert.valid_before()
        ));
    }
    let authority_fingerprint = authority.fingerprint(HashAlg::Sha256);
    if cert.validate_at(now, [&authority_fingerprint]).is_err() {
        return Some("its signature does not verify with the authority's key".into());
    }
    let principals = cert.valid_principals();
    if !principals.is_empty() && !principals.iter().any(|p| p.eq_ignore_ascii_case(host)) {
        return Some(format!(
            "it is issued for {} and not for {host}",
            principals.join(", ")
        ));
    }
    if let Some(option) = cert.critical_options().keys().next() {
        return Some(format!("it carries the unknown critical option {option:?}"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh::keys::PrivateKey;
    use russh::keys::ssh_key::certificate::Builder;
    use russh::keys::ssh_key::private::Ed25519Keypair;

    fn keypair(seed: u8) -> PrivateKey {
        PrivateKey::from(Ed25519Keypair::from_seed(&[seed; 32]))
    }

    fn certificate(ca: &PrivateKey, kind: CertType, principal: Option<&str>) -> Certificate {
        let host = keypair(9);
        let mut builder = Builder::new(vec![7; 32], host.public_key(), 100, 200).unwrap();
        builder.cert_type(kind).unwrap();
        match principal {
            Some(p) => builder.valid_principal(p).unwrap(),
            None => builder.all_principals_valid().unwrap(),
        };
        builder.sign(ca).unwrap()
    }

    #[test]
    fn a_valid_host_certificate_passes_and_each_flaw_is_named() {
        let ca = keypair(1);
        let authority = ca.public_key().clone();
        let good = certificate(&ca, CertType::Host, Some("web.example.com"));
        assert_eq!(problem(&good, &authority, "web.example.com", 150), None);
        let any_host = certificate(&ca, CertType::Host, None);
        assert_eq!(problem(&any_host, &authority, "other", 150), None);

        let flaw = |cert: &Certificate, authority: &PublicKey, host: &str, now: u64| {
            problem(cert, authority, host, now).unwrap_or_default()
        };
        assert!(flaw(&good, &authority, "other.example.com", 150).contains("issued for"));
        assert!(flaw(&good, &authority, "web.example.com", 250).contains("not valid now"));
        let user = certificate(&ca, CertType::User, Some("web.example.com"));
        assert!(flaw(&user, &authority, "web.example.com", 150).contains("user certificate"));
        let other_authority = keypair(2).public_key().clone();
        assert!(flaw(&good, &other_authority, "web.example.com", 150).contains("signature"));
    }
}
