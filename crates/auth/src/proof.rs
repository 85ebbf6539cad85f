//! The Ed25519 proof of `auth ed25519 USER PUBKEY SIG` (spec section 16).
//!
//! The client signs
//!
//! ```text
//! "ferry/1 auth ed25519" 0x00 || CB (32 octets) || USER || 0x00 || PUBKEY (32 octets)
//! ```
//!
//! where CB is the session's TLS channel binding (`ferry_tls::channel_binding`; 32 zero
//! octets on an opted-in plain session), so a proof made for one connection is worthless on
//! another, for another user or with another key. PUBKEY and SIG travel as standard base64
//! with padding, decoded strictly: one spelling per value.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::signature::{ED25519, KeyPair as _, UnparsedPublicKey};

use crate::keys::PrivateKey;
use crate::users::UserName;

/// The context string that begins every signed message.
pub const CONTEXT: &[u8] = b"ferry/1 auth ed25519";

/// The message a proof signs.
pub fn proof_message(cb: &[u8; 32], user: &UserName, pubkey: &[u8; 32]) -> Vec<u8> {
    let user = user.as_str().as_bytes();
    let mut m = Vec::with_capacity(CONTEXT.len() + 1 + 32 + user.len() + 1 + 32);
    m.extend_from_slice(CONTEXT);
    m.push(0);
    m.extend_from_slice(cb);
    m.extend_from_slice(user);
    m.push(0);
    m.extend_from_slice(pubkey);
    m
}

/// The proof of `key` for `user` on the session whose channel binding is `cb`: the raw
/// public key and the signature.
pub fn sign(key: &PrivateKey, cb: &[u8; 32], user: &UserName) -> ([u8; 32], [u8; 64]) {
    let pair = key.key_pair();
    let pubkey = *key.public().raw();
    let mut sig = [0u8; 64];
    sig.copy_from_slice(pair.sign(&proof_message(cb, user, &pubkey)).as_ref());
    debug_assert_eq!(pair.public_key().as_ref(), pubkey);
    (pubkey, sig)
}

/// The `auth ed25519 USER PUBKEY SIG` request of `key` for `user` on the session whose
/// channel binding is `cb` (32 zero octets on a plain connection, AUTH-9).
pub fn request(key: &PrivateKey, cb: &[u8; 32], user: &UserName) -> ferry_wire::auth::AuthRequest {
    let (public_key, signature) = sign(key, cb, user);
    ferry_wire::auth::AuthRequest::Ed25519 {
        user: user.clone(),
        public_key,
        signature,
    }
}

/// Whether `sig` is `pubkey`'s signature of the proof message for `cb` and `user`.
pub fn verify(pubkey: &[u8; 32], sig: &[u8; 64], cb: &[u8; 32], user: &UserName) -> bool {
    UnparsedPublicKey::new(&ED25519, pubkey)
        .verify(&proof_message(cb, user, pubkey), sig)
        .is_ok()
}

/// A PUBKEY or SIG field that is not the standard base64 of the right number of octets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not the standard base64 (with padding) of {expected} octets")]
pub struct DecodeError {
    /// The number of octets the field must hold.
    pub expected: usize,
}

/// PUBKEY: standard base64 with padding.
pub fn encode_pubkey(pubkey: &[u8; 32]) -> String {
    STANDARD.encode(pubkey)
}

/// SIG: standard base64 with padding.
pub fn encode_sig(sig: &[u8; 64]) -> String {
    STANDARD.encode(sig)
}

/// Decodes exactly `N` octets; only the canonical spelling (padding required, unused bits
/// zero, no whitespace) is accepted.
fn decode_exact<const N: usize>(field: &str) -> Result<[u8; N], DecodeError> {
    let err = DecodeError { expected: N };
    // Refuse before decoding anything long: a field of N octets is this long.
    if field.len() != N.div_ceil(3) * 4 {
        return Err(err);
    }
    let octets = STANDARD.decode(field).map_err(|_| err.clone())?;
    let out: [u8; N] = octets.try_into().map_err(|_| err.clone())?;
    // The engine already refuses non-zero unused bits; the round trip states the rule.
    if STANDARD.encode(out) != field {
        return Err(err);
    }
    Ok(out)
}

/// Decodes PUBKEY (32 octets).
pub fn decode_pubkey(field: &str) -> Result<[u8; 32], DecodeError> {
    decode_exact(field)
}

/// Decodes SIG (64 octets).
pub fn decode_sig(field: &str) -> Result<[u8; 64], DecodeError> {
    decode_exact(field)
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::Zeroizing;

    fn user(s: &str) -> UserName {
        s.parse().expect("user name")
    }

    fn key(byte: u8) -> PrivateKey {
        PrivateKey::from_seed(Zeroizing::new([byte; 32]), "")
    }

    #[test]
    fn the_message_is_laid_out_as_specified() {
        let m = proof_message(&[7; 32], &user("al"), &[9; 32]);
        let mut want = b"ferry/1 auth ed25519\0".to_vec();
        want.extend([7; 32]);
        want.extend(b"al\0");
        want.extend([9; 32]);
        assert_eq!(m, want);
    }

    #[test]
    fn a_proof_verifies_only_for_its_binding_user_and_key() {
        let (alice, cb) = (user("alice"), [0x42; 32]);
        let (pubkey, sig) = sign(&key(1), &cb, &alice);
        assert_eq!(&pubkey, key(1).public().raw());
        assert!(verify(&pubkey, &sig, &cb, &alice));
        assert!(
            !verify(&pubkey, &sig, &[0x43; 32], &alice),
            "another connection"
        );
        assert!(!verify(&pubkey, &sig, &[0; 32], &alice), "a plain session");
        assert!(!verify(&pubkey, &sig, &cb, &user("alicf")), "another user");
        assert!(
            !verify(&pubkey, &sig, &cb, &user("alice2")),
            "a longer name"
        );
        let other = *key(2).public().raw();
        assert!(!verify(&other, &sig, &cb, &alice), "another key");
        let mut flipped = sig;
        flipped[10] ^= 1;
        assert!(
            !verify(&pubkey, &flipped, &cb, &alice),
            "an altered signature"
        );
    }

    /// ring's Ed25519 is RFC 8032's: its test 1 (empty message).
    #[test]
    fn rfc_8032_test_1() {
        let hex = |s: &str| -> Vec<u8> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
                .collect()
        };
        let seed: [u8; 32] =
            hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
                .try_into()
                .expect("32");
        let k = PrivateKey::from_seed(Zeroizing::new(seed), "");
        assert_eq!(
            k.public().raw().to_vec(),
            hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
        );
        assert_eq!(
            k.key_pair().sign(b"").as_ref().to_vec(),
            hex(concat!(
                "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155",
                "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
            ))
        );
    }

    /// A known answer, so that a change of the message layout cannot pass unnoticed: seed
    /// 32 × 0x01, CB = 0x00, 0x01, …, 0x1f, USER `alice`. Computed once outside this code,
    /// with OpenSSL 3.0: the message written by hand (Python: `b"ferry/1 auth ed25519\0" +
    /// bytes(range(32)) + b"alice\0" + pubkey`), the seed wrapped as PKCS#8 DER
    /// (`302e020100300506032b657004220420` + seed) and converted with `openssl pkey`, the
    /// public key from `openssl pkey -pubout` (its last 32 octets), the signature from
    /// `openssl pkeyutl -sign -rawin`, both through `base64`.
    #[test]
    fn known_answer() {
        let cb: [u8; 32] = std::array::from_fn(|i| i as u8);
        let (pubkey, sig) = sign(&key(1), &cb, &user("alice"));
        assert_eq!(encode_pubkey(&pubkey), KAT_PUBKEY);
        assert_eq!(encode_sig(&sig), KAT_SIG);
        let (p, s) = (
            decode_pubkey(KAT_PUBKEY).expect("p"),
            decode_sig(KAT_SIG).expect("s"),
        );
        assert!(verify(&p, &s, &cb, &user("alice")));
    }

    const KAT_PUBKEY: &str = "iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w=";
    const KAT_SIG: &str = concat!(
        "atWmMeasZ4nMUXR1cNq/aQ2GQLwG5QjlQUUp9KqYrdq7ojhUDiNxfIyyH8Wi",
        "XtwVyDAttURToYxe5rOUOlIzDA=="
    );

    #[test]
    fn base64_fields_are_strict() {
        let p = [0xfb; 32];
        let text = encode_pubkey(&p);
        assert_eq!(decode_pubkey(&text), Ok(p));
        assert_eq!(text.len(), 44);
        assert!(text.ends_with('='));
        let unpadded = text.trim_end_matches('=');
        assert!(decode_pubkey(unpadded).is_err(), "padding is required");
        // The last character before `=` carries 2 unused bits (0xfb 0xfb ends in `s`,
        // 101100): `t` (101101) decodes to the same octets with an unused bit set.
        assert!(text.ends_with("s="), "{text}");
        let noncanonical = format!("{}t=", &text[..text.len() - 2]);
        assert!(decode_pubkey(&noncanonical).is_err(), "{noncanonical}");
        let url_safe = text.replace('+', "-").replace('/', "_");
        assert_ne!(url_safe, text);
        assert!(decode_pubkey(&url_safe).is_err(), "the URL-safe alphabet");
        assert!(decode_pubkey(&format!(" {}", &text[1..])).is_err());
        assert!(
            decode_pubkey(&encode_sig(&[0; 64])).is_err(),
            "64 octets are not a key"
        );
        assert!(decode_sig(&text).is_err(), "32 octets are not a signature");
        assert!(decode_sig("").is_err());
        let s = [0x3c; 64];
        assert_eq!(decode_sig(&encode_sig(&s)), Ok(s));
    }

    proptest::proptest! {
        /// Whatever decodes is the one spelling of its octets.
        #[test]
        fn decoding_accepts_only_canonical_spellings(
            field in "[A-Za-z0-9+/]{43}=|[A-Za-z0-9+/=]{42,46}",
            octets in proptest::array::uniform32(proptest::num::u8::ANY),
        ) {
            match decode_pubkey(&field) {
                Ok(p) => proptest::prop_assert_eq!(encode_pubkey(&p), field),
                // 43 characters and `=` decode unless the 2 unused bits are set.
                Err(_) if field.len() == 44 && field.ends_with('=') && !field[..43].contains('=') => {
                    let last = STANDARD.decode(format!("AA{}=", &field[42..43]));
                    proptest::prop_assert!(last.is_err(), "{field} refused");
                }
                Err(_) => {}
            }
            proptest::prop_assert_eq!(decode_pubkey(&encode_pubkey(&octets)), Ok(octets));
        }
    }
}
