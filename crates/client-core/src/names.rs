//! Local names: where a download goes, which names this platform can store (NAME-11), and
//! how to show a server's names to a person (NAME-12).

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use ferry_wire::{Digest, FileName};

use crate::ClientError;

/// Suffix of the file a download is written to until its digest is verified.
pub const PART_SUFFIX: &str = ".ferry-part";

/// Longest file name most local file systems store (octets).
const LOCAL_NAME_MAX: usize = 255;

/// Renders `name` for a person: characters that are invisible or change the text direction
/// or break lines (U+200B … U+200F, U+2028 … U+202E, U+2060 … U+2064, U+2066 … U+2069,
/// U+FEFF, U+00AD, and any other format or control character) are shown as `\u{…}`, so that a
/// hostile name cannot pass for another one or start a line of its own (NAME-12). A
/// backslash is shown as `\\` so the escape is unambiguous.
pub fn visible(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c == '\\' {
            out.push_str("\\\\");
        } else if is_invisible(c) {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(
            u32::from(c),
            0x00AD
                | 0x034F
                | 0x061C
                | 0x115F
                | 0x1160
                | 0x17B4
                | 0x17B5
                | 0x180B..=0x180F
                | 0x200B..=0x200F
                | 0x2028..=0x202E
                | 0x2060..=0x206F
                | 0x3164
                | 0xFE00..=0xFE0F
                | 0xFEFF
                | 0xFFA0
                | 0xFFF0..=0xFFFB
                | 0x1D173..=0x1D17A
                | 0xE0000..=0xE0FFF
        )
}

/// Why Windows cannot store `name` faithfully (NAME-11), or `None` if it can: the device
/// names `CON`, `PRN`, `AUX`, `NUL`, `COM1`–`COM9`, `LPT1`–`LPT9` with or without an
/// extension, a name ending in `.` or SP, and the characters `<>:"|?*`. The client applies
/// this check only on Windows, where such names would be altered or misread.
pub fn windows_name_problem(name: &str) -> Option<&'static str> {
    if let Some(c) = name.chars().find(|c| "<>:\"|?*".contains(*c)) {
        return Some(match c {
            ':' => "Windows does not allow ':' in file names",
            _ => "Windows does not allow any of <>\"|?* in file names",
        });
    }
    if name.ends_with('.') || name.ends_with(' ') {
        return Some("Windows drops a trailing '.' or space from file names");
    }
    let stem = name.split('.').next().unwrap_or(name).trim_end_matches(' ');
    let upper = stem.to_ascii_uppercase();
    let device = matches!(upper.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || ((upper.starts_with("COM") || upper.starts_with("LPT"))
            && upper.len() == 4
            && matches!(upper.as_bytes()[3], b'1'..=b'9'));
    if device {
        return Some("Windows reserves this name for a device");
    }
    None
}

/// The local path for a file the server calls `name`, inside `dir`. A [`FileName`] has no
/// separator and cannot be `.` or `..`, so the result is always directly inside `dir`
/// (NAME-10); on Windows, names Windows would misread are refused (NAME-11).
pub fn local_path(dir: &Path, name: &FileName) -> Result<PathBuf, ClientError> {
    if cfg!(windows)
        && let Some(reason) = windows_name_problem(name.as_str())
    {
        let reason = reason.to_owned();
        return Err(ClientError::LocalName {
            name: name.to_string(),
            reason,
        });
    }
    Ok(dir.join(name.as_str()))
}

/// Where a download to `dest` keeps its unverified data: `<dest>.ferry-part` beside it, or,
/// when that name would be too long for the file system, `.ferry-part-<hash of the name>`
/// in the same folder (deterministic, so a resumed download finds it again).
///
/// A `dest` that ends with a path separator names a folder, not a file: it is refused (a
/// caller saves into a folder with [`local_path`]), rather than turned into a partial file
/// beside the folder (`Path` drops the separator: `downloads/` has the file name
/// `downloads`).
pub fn part_path(dest: &Path) -> Result<PathBuf, ClientError> {
    let bytes = dest.as_os_str().as_encoded_bytes();
    if bytes
        .last()
        .is_some_and(|&b| std::path::is_separator(char::from(b)))
    {
        return Err(ClientError::LocalName {
            name: dest.display().to_string(),
            reason: "the destination ends with a separator: it names a folder, not a file"
                .to_owned(),
        });
    }
    let Some(file_name) = dest.file_name() else {
        return Err(ClientError::LocalName {
            name: dest.display().to_string(),
            reason: "the destination has no file name".to_owned(),
        });
    };
    let mut part = OsString::from(file_name);
    if part.len() + PART_SUFFIX.len() <= LOCAL_NAME_MAX {
        part.push(PART_SUFFIX);
    } else {
        let hash = Digest::of(file_name.as_encoded_bytes()).to_string();
        let hex = hash.rsplit(':').next().unwrap_or(&hash);
        part = OsString::from(format!("{PART_SUFFIX}-{hex}"));
    }
    Ok(dest.with_file_name(part))
}

/// The ferry name of a local file: its file name in NFC (NAME-8), validated.
pub fn name_for_local(path: &Path) -> Result<FileName, ClientError> {
    let Some(file_name) = path.file_name() else {
        return Err(ClientError::LocalName {
            name: path.display().to_string(),
            reason: "the path has no file name".to_owned(),
        });
    };
    let Some(s) = file_name.to_str() else {
        return Err(ClientError::LocalName {
            name: file_name.to_string_lossy().into_owned(),
            reason: "the name is not valid UTF-8".to_owned(),
        });
    };
    FileName::from_local(s).map_err(|e| ClientError::LocalName {
        name: s.to_owned(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invisible_characters_are_shown() {
        assert_eq!(visible("天线15.doc"), "天线15.doc");
        assert_eq!(visible("evil\u{202e}fdp.exe"), "evil\\u{202e}fdp.exe");
        assert_eq!(visible("a\u{200b}b"), "a\\u{200b}b");
        assert_eq!(visible("a\\u{41}"), "a\\\\u{41}");
        // Line and paragraph separators: a name cannot start a line of its own (#14).
        assert_eq!(
            visible("x\u{2028}code=511\u{2029}y"),
            "x\\u{2028}code=511\\u{2029}y"
        );
    }

    #[test]
    fn windows_names() {
        for bad in [
            "CON",
            "con.txt",
            "Lpt1",
            "COM9.tar.gz",
            "a:b",
            "x.",
            "q?",
            "nul .txt",
        ] {
            assert!(windows_name_problem(bad).is_some(), "{bad}");
        }
        for good in [
            "CONSOLE",
            "COM0",
            "COM10",
            "射频仿真.pptx",
            "my report (final).pdf",
        ] {
            assert_eq!(windows_name_problem(good), None, "{good}");
        }
    }

    #[test]
    fn part_paths() {
        let p = part_path(Path::new("/tmp/x/a.txt")).expect("has a name");
        assert_eq!(p, Path::new("/tmp/x/a.txt.ferry-part"));
        let long = "a".repeat(250);
        let p = part_path(&Path::new("/tmp").join(&long)).expect("has a name");
        let f = p.file_name().expect("name").to_string_lossy().into_owned();
        assert!(f.starts_with(".ferry-part-") && f.len() <= 255, "{f}");
        assert_eq!(p, part_path(&Path::new("/tmp").join(&long)).expect("same"));
        // A folder is no destination file: never `downloads.ferry-part` beside it.
        for folder in ["downloads/", "/tmp/x/downloads/", "/", "..", "x/.."] {
            assert!(
                matches!(
                    part_path(Path::new(folder)),
                    Err(ClientError::LocalName { .. })
                ),
                "{folder}"
            );
        }
    }

    #[test]
    fn local_names_become_nfc() {
        let n = name_for_local(Path::new("/x/e\u{301}.txt")).expect("valid");
        assert_eq!(n.as_str(), "\u{e9}.txt");
        assert!(matches!(
            name_for_local(Path::new("/x/.hidden")),
            Err(ClientError::LocalName { .. })
        ));
    }
}
