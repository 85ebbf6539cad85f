//! `arbitrary::Arbitrary` for every message type (feature `arbitrary`), built through the
//! validating constructors so that fuzzers only ever produce legal values.

use arbitrary::{Arbitrary, Result, Unstructured};
use unicode_normalization::UnicodeNormalization;

use crate::code::Code;
use crate::digest::Digest;
use crate::limits::{MAX_NAME, MAX_TEXT};
use crate::message::{
    ChunkLen, Entry, ErrorReply, Frame, Greeting, Hello, Limits, PutFlow, PutMode, Reply, Request,
};
use crate::name::FileName;
use crate::path::TreePath;
use crate::text::{ExtName, Text, Version};
use crate::time::Timestamp;
use crate::tree::{EntryKind, Folder, ListEntry, ListOptions, TreeReply, TreeRequest};

fn cut(s: &mut String, max: usize) {
    let mut at = s.len().min(max);
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    s.truncate(at);
}

impl<'a> Arbitrary<'a> for FileName {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let raw: String = u.arbitrary()?;
        let mut s: String = raw
            .chars()
            .filter(|&c| !(c.is_control() || c == '/' || c == '\\') && crate::name::is_assigned(c))
            .nfc()
            .collect();
        cut(&mut s, MAX_NAME);
        // NFC of a cut string can differ; the loop below converges in a step or two.
        for _ in 0..4 {
            let t = s
                .trim_start_matches(['.', ' '])
                .trim_end_matches(' ')
                .nfc()
                .collect::<String>();
            s = t;
            cut(&mut s, MAX_NAME);
            if let Ok(n) = FileName::new(s.clone()) {
                return Ok(n);
            }
        }
        FileName::new("x").map_err(|_| arbitrary::Error::IncorrectFormat)
    }
}

impl<'a> Arbitrary<'a> for Text {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let raw: String = u.arbitrary()?;
        let mut s: String = raw.chars().filter(|c| !c.is_control()).collect();
        cut(&mut s, MAX_TEXT);
        Text::new(if s.is_empty() { "x".to_owned() } else { s })
            .map_err(|_| arbitrary::Error::IncorrectFormat)
    }
}

impl<'a> Arbitrary<'a> for Version {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Version::new(u.int_in_range(1..=crate::limits::MAX_VERSION)?)
            .map_err(|_| arbitrary::Error::IncorrectFormat)
    }
}

impl<'a> Arbitrary<'a> for Code {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        if u.ratio(4, 5)? {
            Ok(*u.choose(Code::ALL)?)
        } else {
            Code::new(u.int_in_range(0..=999)?).ok_or(arbitrary::Error::IncorrectFormat)
        }
    }
}

impl<'a> Arbitrary<'a> for Timestamp {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(Timestamp::from_unix_clamped(u.int_in_range(
            Timestamp::MIN.unix()..=Timestamp::MAX.unix(),
        )?))
    }
}

impl<'a> Arbitrary<'a> for Digest {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(Digest::from_bytes(u.arbitrary()?))
    }
}

impl<'a> Arbitrary<'a> for ChunkLen {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        ChunkLen::new(u.int_in_range(1..=u64::from(crate::limits::MAX_CHUNK))?)
            .ok_or(arbitrary::Error::IncorrectFormat)
    }
}

impl<'a> Arbitrary<'a> for ErrorReply {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(ErrorReply {
            code: u.arbitrary()?,
            text: u.arbitrary()?,
        })
    }
}

impl<'a> Arbitrary<'a> for Request {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(match u.int_in_range(0..=4)? {
            0 => Request::Dir,
            1 => Request::Get {
                offset: u.arbitrary()?,
                name: u.arbitrary()?,
            },
            2 => Request::Put {
                size: u.arbitrary()?,
                mode: if u.arbitrary()? {
                    PutMode::New
                } else {
                    PutMode::Replace
                },
                flow: if u.arbitrary()? {
                    PutFlow::Wait
                } else {
                    PutFlow::Now
                },
                name: u.arbitrary()?,
            },
            3 => Request::Version(u.arbitrary()?),
            _ => Request::Close,
        })
    }
}

impl<'a> Arbitrary<'a> for Reply {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(match u.int_in_range(0..=6)? {
            0 => Reply::DirOk {
                count: u.arbitrary()?,
            },
            1 => Reply::GetOk {
                size: u.arbitrary()?,
                mtime: u.arbitrary()?,
            },
            2 => Reply::Go,
            3 => Reply::PutOk {
                size: u.arbitrary()?,
                digest: u.arbitrary()?,
            },
            4 => Reply::VersionOk(u.arbitrary()?),
            5 => Reply::Bye,
            _ => Reply::Err(u.arbitrary()?),
        })
    }
}

impl<'a> Arbitrary<'a> for Entry {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(Entry {
            size: u.arbitrary()?,
            mtime: u.arbitrary()?,
            name: u.arbitrary()?,
        })
    }
}

impl<'a> Arbitrary<'a> for Frame {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(match u.int_in_range(0..=2)? {
            0 => Frame::Data(u.arbitrary()?),
            1 => Frame::End(u.arbitrary()?),
            _ => Frame::Abort(u.arbitrary()?),
        })
    }
}

impl<'a> Arbitrary<'a> for Greeting {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let limits = Limits {
            max_line: u.arbitrary()?,
            max_name: u.arbitrary()?,
            max_size: u.arbitrary()?,
            max_chunk: u.arbitrary()?,
            max_eager: u.arbitrary()?,
            idle: u.arbitrary()?,
            stall: u.arbitrary()?,
        };
        let first: Version = u.arbitrary()?;
        let rest: Vec<Version> = (0..u.int_in_range(0..=2)?)
            .map(|_| u.arbitrary())
            .collect::<Result<_>>()?;
        let mut g = Greeting::new(limits)
            .with_versions(first, &rest)
            .with_min_rate(u.arbitrary()?);
        for _ in 0..u.int_in_range(0..=2)? {
            let n: u16 = u.arbitrary()?;
            if let Ok(ext) = ExtName::new(format!("x{n}")) {
                g = g.clone().with_extension(ext).unwrap_or(g);
            }
        }
        Ok(g)
    }
}

impl<'a> Arbitrary<'a> for Hello {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(if u.arbitrary()? {
            Hello::Greeting(u.arbitrary()?)
        } else {
            Hello::Refused(u.arbitrary()?)
        })
    }
}

impl<'a> Arbitrary<'a> for TreePath {
    /// One to eight names; names are dropped from the end until the path fits TREE-3.
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let mut names: Vec<FileName> = (0..u.int_in_range(1..=8)?)
            .map(|_| u.arbitrary())
            .collect::<Result<_>>()?;
        while !names.is_empty() {
            if let Ok(p) = TreePath::from_names(&names) {
                return Ok(p);
            }
            names.pop();
        }
        TreePath::new("x").map_err(|_| arbitrary::Error::IncorrectFormat)
    }
}

impl<'a> Arbitrary<'a> for ListOptions {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(ListOptions {
            digests: u.arbitrary()?,
            recursive: u.arbitrary()?,
        })
    }
}

impl<'a> Arbitrary<'a> for Folder {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(if u.ratio(1, 4)? {
            Folder::Root
        } else {
            Folder::Path(u.arbitrary()?)
        })
    }
}

/// `tree` most of the time, else another extension name.
fn ext_name(u: &mut Unstructured<'_>) -> Result<ExtName> {
    let name = if u.ratio(3, 4)? {
        "tree".to_owned()
    } else {
        format!("x{}", u.arbitrary::<u16>()?)
    };
    ExtName::new(name).map_err(|_| arbitrary::Error::IncorrectFormat)
}

impl<'a> Arbitrary<'a> for TreeRequest {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(match u.int_in_range(0..=7)? {
            0 => TreeRequest::Enable(ext_name(u)?),
            1 => TreeRequest::List {
                options: u.arbitrary()?,
                folder: u.arbitrary()?,
            },
            2 => TreeRequest::Mkdir(u.arbitrary()?),
            3 => TreeRequest::Rmdir(u.arbitrary()?),
            4 => TreeRequest::Delete(u.arbitrary()?),
            5 => TreeRequest::Rename {
                from: u.arbitrary()?,
                to: u.arbitrary()?,
            },
            6 => TreeRequest::Get {
                offset: u.arbitrary()?,
                path: u.arbitrary()?,
            },
            _ => TreeRequest::Put {
                size: u.arbitrary()?,
                mode: if u.arbitrary()? {
                    PutMode::New
                } else {
                    PutMode::Replace
                },
                flow: if u.arbitrary()? {
                    PutFlow::Wait
                } else {
                    PutFlow::Now
                },
                path: u.arbitrary()?,
            },
        })
    }
}

impl<'a> Arbitrary<'a> for TreeReply {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(match u.int_in_range(0..=5)? {
            0 => TreeReply::Enabled(ext_name(u)?),
            1 => TreeReply::ListOk {
                count: u.arbitrary()?,
            },
            2 => TreeReply::Mkdir,
            3 => TreeReply::Rmdir,
            4 => TreeReply::Delete,
            _ => TreeReply::Rename,
        })
    }
}

impl<'a> Arbitrary<'a> for ListEntry {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let kind = if u.ratio(1, 4)? {
            EntryKind::Folder
        } else {
            EntryKind::File {
                size: u.arbitrary()?,
                digest: u.arbitrary()?,
            }
        };
        Ok(ListEntry {
            kind,
            mtime: u.arbitrary()?,
            path: u.arbitrary()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever octets the fuzzer supplies, the generated values are legal: they encode and
    /// decode back to themselves.
    #[test]
    fn generated_values_are_legal() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2000 {
            let bytes: Vec<u8> = (0..512)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    (seed >> 32) as u8
                })
                .collect();
            let mut u = Unstructured::new(&bytes);
            let r: Request = u.arbitrary().expect("request");
            assert_eq!(
                crate::decode_request(&r.to_bytes()),
                Ok((r.clone(), r.to_bytes().len()))
            );
            let r: Reply = u.arbitrary().expect("reply");
            assert_eq!(
                crate::decode_reply(&r.to_bytes()),
                Ok((r.clone(), r.to_bytes().len()))
            );
            let e: Entry = u.arbitrary().expect("entry");
            assert_eq!(
                crate::decode_entry(&e.to_bytes()),
                Ok((e.clone(), e.to_bytes().len()))
            );
            let f: Frame = u.arbitrary().expect("frame");
            assert_eq!(
                crate::decode_frame(&f.to_bytes()),
                Ok((f.clone(), f.to_bytes().len()))
            );
            let h: Hello = u.arbitrary().expect("hello");
            assert_eq!(
                crate::decode_hello(&h.to_bytes()),
                Ok((h.clone(), h.to_bytes().len()))
            );
            let r: TreeRequest = u.arbitrary().expect("tree request");
            assert_eq!(
                crate::tree::decode_tree_request(&r.encode()),
                Ok((r.clone(), r.encode().len()))
            );
            let r: TreeReply = u.arbitrary().expect("tree reply");
            assert_eq!(
                crate::tree::decode_tree_reply(&r.encode()),
                Ok((r.clone(), r.encode().len()))
            );
            let e: ListEntry = u.arbitrary().expect("list entry");
            assert_eq!(
                crate::tree::decode_list_entry(&e.encode()),
                Ok((e.clone(), e.encode().len()))
            );
        }
    }
}
