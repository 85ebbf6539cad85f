//! # ferry-wire: the ferry/1 wire format
//!
//! This crate is `spec/grammar.abnf` in code. It has four layers, each usable alone:
//!
//! 1. **Validated values** — [`FileName`], [`Digest`], [`Timestamp`], [`Text`], [`Code`],
//!    [`Version`], [`ChunkLen`]: each can only be built through a check of its rule, so the
//!    encoder can never produce octets the decoder rejects.
//! 2. **Messages** — [`Request`], [`Hello`]/[`Greeting`], [`Reply`], [`Entry`], [`Frame`],
//!    each with `encode` (canonical form: LF line ends, no leading zeros). The extensions'
//!    messages, with their own decoders, are in [`auth`] (section 16) and [`tree`] (section
//!    17, paths as [`TreePath`]): not variants of ferry/1's (EXT-6).
//! 3. **Streaming decode** — [`decode_request`], [`decode_hello`], [`decode_reply`],
//!    [`decode_entry`], [`decode_frame`]: octets in, `(message, consumed)` out;
//!    [`DecodeError::Incomplete`] (read more) is kept apart from [`DecodeError::Invalid`]
//!    (what was wrong and where). No decoder allocates more than one line's worth or looks
//!    past [`limits::MAX_LINE`] octets, and none panics on any input.
//! 4. **Payload receiving** — [`PayloadReceiver`], a sans-IO state machine that turns the
//!    octets of a payload into file data, checks the chunk framing and verifies the digest.
//!
//! The crate does no I/O: the reference servers and clients (`ferry-sync`, `ferry-async`)
//! drive it over their own sockets.
//!
//! ```
//! use ferry_wire::{decode_request, FileName, Request};
//!
//! let req = Request::Get { offset: 0, name: FileName::new("天线15.doc").unwrap() };
//! let bytes = req.to_bytes();
//! assert_eq!(bytes, "get 0 天线15.doc\n".as_bytes());
//! assert_eq!(decode_request(&bytes), Ok((req, bytes.len())));
//! // Any strict prefix is merely incomplete.
//! assert_eq!(decode_request(&bytes[..5]), Err(ferry_wire::DecodeError::Incomplete));
//! ```

pub mod auth;
pub mod code;
pub mod decode;
pub mod digest;
pub mod limits;
pub mod message;
pub mod name;
pub(crate) mod parse;
pub mod path;
pub mod payload;
pub mod text;
pub mod time;
pub mod tree;

#[cfg(any(test, feature = "proptest"))]
pub mod strategy;

#[cfg(any(test, feature = "arbitrary"))]
mod arbitrary;

#[cfg(test)]
mod negative;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod snapshots;

pub use code::{Class, Code};
pub use decode::{
    DecodeError, Invalid, InvalidKind, decode_entry, decode_frame, decode_hello, decode_listed,
    decode_reply, decode_request,
};
pub use digest::{Digest, Hasher};
pub use message::{
    ChunkLen, Entry, ErrorReply, Frame, Greeting, GreetingError, Hello, Limits, Listed, Listing,
    ListingOrderError, PutFlow, PutMode, Reply, Request, SkippedEntry, chunk_lengths,
    encode_payload,
};
pub use name::{FileName, NameError, UNICODE_VERSION, is_assigned};
pub use parse::PutHead;
pub use path::{PathError, TreePath};
pub use payload::{HEAD_ROOM, PayloadError, PayloadReceiver, Step, write_chunk_head};
pub use text::{ExtName, ParamName, ParamValue, Text, TokenError, Version};
pub use time::Timestamp;

/// The examples of README.md, run as doctests so that they cannot drift.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
