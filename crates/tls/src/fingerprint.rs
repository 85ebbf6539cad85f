//! Key fingerprints (TLS-10): `SHA256:` + unpadded base64 of the SHA-256 of the key's DER
//! SubjectPublicKeyInfo, OpenSSH's form.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use rustls::pki_types::CertificateDer;

use crate::TlsError;

/// The prefix of every fingerprint.
const PREFIX: &str = "SHA256:";

/// The fingerprint of a public key (TLS-10). `Display` and `FromStr` use the written form,
/// `SHA256:` and 43 characters of unpadded base64.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER-encoded SubjectPublicKeyInfo.
    pub fn of_spki(spki_der: &[u8]) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, spki_der);
        let mut out = [0; 32];
        out.copy_from_slice(digest.as_ref());
        Self(out)
    }

    /// The fingerprint of the public key a certificate carries (whatever its issuer, names and
    /// dates).
    pub fn of_certificate(cert: &CertificateDer<'_>) -> Result<Self, TlsError> {
        let parsed = webpki::EndEntityCert::try_from(cert)
            .map_err(|e| TlsError::Certificate(format!("{e:?}")))?;
        Ok(Self::of_spki(parsed.subject_public_key_info().as_ref()))
    }

    /// The 32 octets of the SHA-256 digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}", STANDARD_NO_PAD.encode(self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a string is not a fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a key fingerprint (SHA256: and 43 characters of base64, as `ferry serve` prints)"
)]
pub struct BadFingerprint(pub String);

impl FromStr for Fingerprint {
    type Err = BadFingerprint;

    /// Parses the written form. Strict: the prefix is `SHA256:` exactly, the base64 has no
    /// padding and no unused bits set (one fingerprint, one spelling).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadFingerprint(s.chars().take(80).collect());
        let b64 = s.strip_prefix(PREFIX).ok_or_else(bad)?;
        if b64.len() != 43 {
            return Err(bad());
        }
        let bytes = STANDARD_NO_PAD.decode(b64).map_err(|_| bad())?;
        let out: [u8; 32] = bytes.try_into().map_err(|_| bad())?;
        let fp = Self(out);
        // The decoder accepts non-zero trailing bits; the canonical form does not have them.
        if fp.to_string() != s {
            return Err(bad());
        }
        Ok(fp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_example_is_the_empty_string() {
        let fp = Fingerprint::of_spki(b"");
        assert_eq!(
            fp.to_string(),
            "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"
        );
        assert_eq!(fp.to_string().len(), 7 + 43);
        assert_eq!(fp.to_string().parse::<Fingerprint>(), Ok(fp));
    }

    #[test]
    fn bad_spellings_are_refused() {
        let good = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU";
        assert!(good.parse::<Fingerprint>().is_ok());
        for bad in [
            "",
            "SHA256:",
            "sha256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU",
            "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
            "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFV",
            "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuF",
            "SHA256:47DEQpj8HBSa-_TImW+5JCeuQeRkm5NMpJWZG3hSuFU",
            " SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU",
            "MD5:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU",
        ] {
            assert!(bad.parse::<Fingerprint>().is_err(), "{bad:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn written_form_round_trips(bytes in proptest::array::uniform32(0u8..)) {
            let fp = Fingerprint(bytes);
            proptest::prop_assert_eq!(fp.to_string().parse::<Fingerprint>(), Ok(fp));
        }

        #[test]
        fn parsing_never_panics(s in "\\PC{0,60}") {
            let _ = s.parse::<Fingerprint>();
        }
    }
}
