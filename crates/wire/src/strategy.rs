//! proptest strategies for every message type, built through the validating constructors so
//! that they only produce legal values (feature `proptest`).

use proptest::prelude::*;

use crate::code::Code;
use crate::digest::Digest;
use crate::limits::{MAX_CHUNK, MAX_DEPTH, MAX_NAME, MAX_VERSION};
use crate::message::{
    ChunkLen, Entry, ErrorReply, Frame, Greeting, Hello, Limits, PutFlow, PutMode, Reply, Request,
};
use crate::name::FileName;
use crate::path::TreePath;
use crate::text::{ExtName, ParamName, ParamValue, Text, Version};
use crate::time::Timestamp;
use crate::tree::{EntryKind, Folder, ListEntry, ListOptions, TreeReply, TreeRequest};

const NAME_CHARS: &[char] = &[
    'a', 'b', 'z', 'A', 'Q', '0', '9', ' ', '.', '-', '_', '(', ')', '~', '=', '射', '频', '仿',
    '真', '天', '线', 'é', 'ß', 'Ω', '😀', '\u{a0}',
];

/// Valid file names: short and long, ASCII, CJK, accents, emoji, inner spaces and dots.
pub fn file_name() -> impl Strategy<Value = FileName> {
    prop_oneof![
        4 => proptest::collection::vec(proptest::sample::select(NAME_CHARS), 1..24),
        1 => proptest::collection::vec(proptest::sample::select(NAME_CHARS), 60..120),
    ]
    .prop_filter_map("not a valid name", |chars| {
        let s: String = chars.into_iter().collect();
        let mut cut = s.len().min(crate::limits::MAX_NAME);
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        FileName::new(&s[..cut]).ok()
    })
}

/// Any digest.
pub fn digest() -> impl Strategy<Value = Digest> {
    any::<[u8; 16]>().prop_map(Digest::from_bytes)
}

/// Any representable modification time.
pub fn timestamp() -> impl Strategy<Value = Timestamp> {
    (Timestamp::MIN.unix()..=Timestamp::MAX.unix()).prop_map(Timestamp::from_unix_clamped)
}

/// Any protocol version.
pub fn version() -> impl Strategy<Value = Version> {
    (1..=MAX_VERSION).prop_filter_map("version", |n| Version::new(n).ok())
}

/// Sizes and offsets, biased to the edges.
pub fn u64_value() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), Just(u64::MAX), 0..4096u64, any::<u64>()]
}

/// Defined codes and, more rarely, any three-digit code.
pub fn code() -> impl Strategy<Value = Code> {
    prop_oneof![
        4 => proptest::sample::select(Code::ALL),
        1 => (0u16..=999).prop_filter_map("code", Code::new),
    ]
}

/// Optional error text.
pub fn text() -> impl Strategy<Value = Option<Text>> {
    proptest::option::of(
        proptest::collection::vec(
            proptest::sample::select(&['a', 'Z', ' ', '!', '天', '"', ':', '\u{e9}'][..]),
            1..40,
        )
        .prop_filter_map("text", |c| {
            Text::new(c.into_iter().collect::<String>()).ok()
        }),
    )
}

/// An `err` reply or `abort` trailer body.
pub fn error_reply() -> impl Strategy<Value = ErrorReply> {
    (code(), text()).prop_map(|(code, text)| ErrorReply { code, text })
}

/// Any request.
pub fn request() -> impl Strategy<Value = Request> {
    let mode = prop_oneof![Just(PutMode::New), Just(PutMode::Replace)];
    let flow = prop_oneof![Just(PutFlow::Wait), Just(PutFlow::Now)];
    prop_oneof![
        Just(Request::Dir),
        (u64_value(), file_name()).prop_map(|(offset, name)| Request::Get { offset, name }),
        (u64_value(), mode, flow, file_name()).prop_map(|(size, mode, flow, name)| Request::Put {
            size,
            mode,
            flow,
            name
        }),
        version().prop_map(Request::Version),
        Just(Request::Close),
    ]
}

/// Any reply line.
pub fn reply() -> impl Strategy<Value = Reply> {
    prop_oneof![
        u64_value().prop_map(|count| Reply::DirOk { count }),
        (u64_value(), timestamp()).prop_map(|(size, mtime)| Reply::GetOk { size, mtime }),
        Just(Reply::Go),
        (u64_value(), digest()).prop_map(|(size, digest)| Reply::PutOk { size, digest }),
        version().prop_map(Reply::VersionOk),
        Just(Reply::Bye),
        error_reply().prop_map(Reply::Err),
    ]
}

/// Any listing entry.
pub fn entry() -> impl Strategy<Value = Entry> {
    (u64_value(), timestamp(), file_name()).prop_map(|(size, mtime, name)| Entry {
        size,
        mtime,
        name,
    })
}

/// Any payload frame line.
pub fn frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        (1..=u64::from(MAX_CHUNK)).prop_filter_map("len", |n| ChunkLen::new(n).map(Frame::Data)),
        digest().prop_map(Frame::End),
        error_reply().prop_map(Frame::Abort),
    ]
}

fn limits() -> impl Strategy<Value = Limits> {
    (
        u64_value(),
        u64_value(),
        u64_value(),
        u64_value(),
        u64_value(),
        u64_value(),
        u64_value(),
    )
        .prop_map(
            |(max_line, max_name, max_size, max_chunk, max_eager, idle, stall)| Limits {
                max_line,
                max_name,
                max_size,
                max_chunk,
                max_eager,
                idle,
                stall,
            },
        )
}

/// Any greeting: versions, limits, extensions and unknown params.
pub fn greeting() -> impl Strategy<Value = Greeting> {
    let ext = proptest::option::of(proptest::collection::vec("[a-z][a-z0-9-]{0,8}", 0..3));
    let params = proptest::collection::vec(("x-[a-z0-9]{1,6}", "[!-~]{0,10}"), 0..3);
    (
        version(),
        proptest::collection::vec(version(), 0..3),
        limits(),
        proptest::option::of(u64_value()),
        ext,
        params,
    )
        .prop_map(|(first, rest, limits, min_rate, ext, params)| {
            let mut g = Greeting::new(limits)
                .with_versions(first, &rest)
                .with_min_rate(min_rate);
            for e in ext.into_iter().flatten() {
                if let Ok(e) = ExtName::new(e) {
                    g = g.clone().with_extension(e).unwrap_or(g);
                }
            }
            for (k, v) in params {
                if let (Ok(k), Ok(v)) = (ParamName::new(k), ParamValue::new(v)) {
                    g = g.clone().with_param(k, v).unwrap_or(g);
                }
            }
            g
        })
}

/// The server's first line.
pub fn hello() -> impl Strategy<Value = Hello> {
    prop_oneof![
        greeting().prop_map(Hello::Greeting),
        error_reply().prop_map(Hello::Refused)
    ]
}

/// Valid paths (TREE-3): one to five names, and now and then a deep one of up to 64 short
/// names or a long one near 1024 octets.
pub fn tree_path() -> impl Strategy<Value = TreePath> {
    prop_oneof![
        8 => proptest::collection::vec(file_name(), 1..=5),
        1 => proptest::collection::vec(
            proptest::sample::select(&["a", "b c", "天", "x.y", "0"][..])
                .prop_map(|n| FileName::new(n).expect("a valid name")),
            1..=MAX_DEPTH,
        ),
        1 => proptest::collection::vec(
            (1..=MAX_NAME).prop_map(|n| FileName::new("n".repeat(n)).expect("a valid name")),
            4..=6,
        ),
    ]
    .prop_filter_map("over the path limits", |names| {
        TreePath::from_names(&names).ok()
    })
}

/// Extension names, `tree` most of the time.
pub fn ext_name() -> impl Strategy<Value = ExtName> {
    prop_oneof![
        3 => Just(ExtName::new("tree").expect("a valid extension name")),
        1 => "[a-z][a-z0-9-]{0,8}".prop_filter_map("ext-name", |s| ExtName::new(s).ok()),
    ]
}

/// Any `list` options.
pub fn list_options() -> impl Strategy<Value = ListOptions> {
    (any::<bool>(), any::<bool>())
        .prop_map(|(digests, recursive)| ListOptions { digests, recursive })
}

/// Any request of the `tree` extension, `get` and `put` with a path included.
pub fn tree_request() -> impl Strategy<Value = TreeRequest> {
    let mode = prop_oneof![Just(PutMode::New), Just(PutMode::Replace)];
    let flow = prop_oneof![Just(PutFlow::Wait), Just(PutFlow::Now)];
    let folder = prop_oneof![
        1 => Just(Folder::Root),
        3 => tree_path().prop_map(Folder::Path),
    ];
    prop_oneof![
        ext_name().prop_map(TreeRequest::Enable),
        (list_options(), folder)
            .prop_map(|(options, folder)| TreeRequest::List { options, folder }),
        tree_path().prop_map(TreeRequest::Mkdir),
        tree_path().prop_map(TreeRequest::Rmdir),
        tree_path().prop_map(TreeRequest::Delete),
        (tree_path(), tree_path()).prop_map(|(from, to)| TreeRequest::Rename { from, to }),
        (u64_value(), tree_path()).prop_map(|(offset, path)| TreeRequest::Get { offset, path }),
        (u64_value(), mode, flow, tree_path()).prop_map(|(size, mode, flow, path)| {
            TreeRequest::Put {
                size,
                mode,
                flow,
                path,
            }
        }),
    ]
}

/// Any final reply of the `tree` extension.
pub fn tree_reply() -> impl Strategy<Value = TreeReply> {
    prop_oneof![
        ext_name().prop_map(TreeReply::Enabled),
        u64_value().prop_map(|count| TreeReply::ListOk { count }),
        Just(TreeReply::Mkdir),
        Just(TreeReply::Rmdir),
        Just(TreeReply::Delete),
        Just(TreeReply::Rename),
    ]
}

/// Any line of a `list` listing.
pub fn list_entry() -> impl Strategy<Value = ListEntry> {
    let kind = prop_oneof![
        3 => (u64_value(), proptest::option::of(digest()))
            .prop_map(|(size, digest)| EntryKind::File { size, digest }),
        1 => Just(EntryKind::Folder),
    ];
    (kind, timestamp(), tree_path()).prop_map(|(kind, mtime, path)| ListEntry { kind, mtime, path })
}
