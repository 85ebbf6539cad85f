//! The requirements of `spec/protocol.md`, embedded at build time: every `**[ID]**` with its
//! level and text, so that a failing case can print the normative sentence it checks.

use std::sync::OnceLock;

use serde::Serialize;

/// `spec/protocol.md` as it was when the runner was built.
pub const PROTOCOL_MD: &str = include_str!("../spec/protocol.md");

/// The requirement level of a requirement (RFC 2119 key word, negated or not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    /// MUST / MUST NOT.
    Must,
    /// SHOULD / SHOULD NOT.
    Should,
    /// MAY.
    May,
}

impl Level {
    /// `MUST`, `SHOULD` or `MAY`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
            Level::May => "MAY",
        }
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One requirement of the specification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// `GET-5`.
    pub id: String,
    /// Its level.
    pub level: Level,
    /// The requirement's sentence(s), on one line, without the bold ID.
    pub text: String,
}

/// Extracts every requirement of a protocol document: each `**[ID]**` (pattern
/// `\*\*\[([A-Z]+-[0-9]+)\]\*\*`, as spec/README.md says) up to the end of its list item or
/// paragraph, classified by the first key word in it.
pub fn parse_requirements(md: &str) -> Vec<Requirement> {
    let mut out = Vec::new();
    let mut rest = md;
    while let Some(start) = rest.find("**[") {
        let after = &rest[start + 3..];
        let Some(close) = after.find("]**") else {
            break;
        };
        let id = &after[..close];
        let valid = id.split_once('-').is_some_and(|(p, n)| {
            !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_uppercase())
                && !n.is_empty()
                && n.bytes().all(|b| b.is_ascii_digit())
        });
        let body_all = &after[close + 3..];
        rest = body_all;
        if !valid {
            continue;
        }
        let end = ["\n\n", "\n- ", "\n#", "\n|"]
            .iter()
            .filter_map(|s| body_all.find(s))
            .min()
            .unwrap_or(body_all.len());
        let text = body_all[..end]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let level = if text.contains("MUST") {
            Level::Must
        } else if text.contains("SHOULD") {
            Level::Should
        } else {
            Level::May
        };
        out.push(Requirement {
            id: id.to_owned(),
            level,
            text,
        });
    }
    out
}

/// Every requirement of the embedded `spec/protocol.md`, in document order.
pub fn requirements() -> &'static [Requirement] {
    static ALL: OnceLock<Vec<Requirement>> = OnceLock::new();
    ALL.get_or_init(|| parse_requirements(PROTOCOL_MD))
}

/// The requirement with this ID.
pub fn requirement(id: &str) -> Option<&'static Requirement> {
    requirements().iter().find(|r| r.id == id)
}

/// The level of a requirement (MUST for an unknown ID, so that a typo can never hide a
/// failure; the coverage test rejects unknown IDs anyway).
pub fn level_of(id: &str) -> Level {
    requirement(id).map_or(Level::Must, |r| r.level)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_levels_and_text() {
        let all = requirements();
        assert!(all.len() > 100, "{}", all.len());
        let get4 = requirement("GET-4").expect("GET-4");
        assert_eq!(get4.level, Level::Must);
        assert!(get4.text.contains("err 515 bad-offset"), "{}", get4.text);
        assert_eq!(requirement("CONN-1").map(|r| r.level), Some(Level::Should));
        assert_eq!(requirement("VER-2").map(|r| r.level), Some(Level::May));
        // `**[PREFIX-N]**` in section 1.2 is not an ID.
        let n = PROTOCOL_MD.matches("**[").count();
        assert_eq!(n - PROTOCOL_MD.matches("**[PREFIX-N]**").count(), all.len());
    }
}
