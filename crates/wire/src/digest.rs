//! The ferry/1 digest: XXH3-128, seed 0, of a whole file (SUM-1).

use std::fmt;

use xxhash_rust::xxh3::Xxh3Default;

/// The label that precedes the hex digits on the wire: `xxh3-128:`.
pub const DIGEST_LABEL: &str = "xxh3-128:";

/// A 128-bit XXH3 digest in its canonical (big-endian) octet order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 16]);

impl Digest {
    /// The digest with these canonical octets.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The canonical octets (big-endian).
    pub const fn to_bytes(self) -> [u8; 16] {
        self.0
    }

    /// The digest of `data` in one call.
    pub fn of(data: &[u8]) -> Self {
        Self(xxhash_rust::xxh3::xxh3_128(data).to_be_bytes())
    }

    /// Parses the 32 lower-case hex digits that follow [`DIGEST_LABEL`].
    pub(crate) fn from_lc_hex(hex: &[u8]) -> Option<Self> {
        if hex.len() != 32 {
            return None;
        }
        let mut out = [0u8; 16];
        for (i, pair) in hex.chunks_exact(2).enumerate() {
            out[i] = (lc_hex_value(pair[0])? << 4) | lc_hex_value(pair[1])?;
        }
        Some(Self(out))
    }
}

fn lc_hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

/// Wire form: `xxh3-128:` followed by 32 lower-case hex digits.
impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(DIGEST_LABEL)?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

/// Incremental digest of a file fed in pieces of any size.
#[derive(Clone)]
pub struct Hasher(Box<Xxh3Default>);

impl Hasher {
    /// A hasher that has seen no octets.
    pub fn new() -> Self {
        Self(Box::new(Xxh3Default::new()))
    }

    /// Feeds the next octets of the file.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The digest of everything fed so far (the hasher can go on).
    pub fn digest(&self) -> Digest {
        Digest(self.0.digest128().to_be_bytes())
    }
}

impl Default for Hasher {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hasher").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vectors of SUM-1 in spec/protocol.md.
    #[test]
    fn known_answers() {
        assert_eq!(
            Digest::of(b"").to_string(),
            "xxh3-128:99aa06d3014798d86001c324468d497f"
        );
        assert_eq!(
            Digest::of(b"hello").to_string(),
            "xxh3-128:b5e9c1ad071b3e7fc779cfaa5e523818"
        );
    }

    #[test]
    fn incremental_equals_one_shot() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut h = Hasher::new();
        for piece in data.chunks(777) {
            h.update(piece);
        }
        assert_eq!(h.digest(), Digest::of(&data));
    }

    #[test]
    fn hex_round_trip_and_rejections() {
        let d = Digest::of(b"x");
        let s = d.to_string();
        assert_eq!(
            Digest::from_lc_hex(&s.as_bytes()[DIGEST_LABEL.len()..]),
            Some(d)
        );
        assert_eq!(
            Digest::from_lc_hex(b"99AA06D3014798D86001C324468D497F"),
            None,
            "upper case"
        );
        assert_eq!(Digest::from_lc_hex(b"99aa"), None, "short");
    }
}
