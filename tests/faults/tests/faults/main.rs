//! The fault-injection suite: every server implementation (threads, async-std, tokio, smol)
//! against network faults (a faulty proxy), slow and stuck peers, floods, crashes and
//! storage faults. See docs/RELIABILITY.md.

mod crashes;
mod digests;
mod floods;
mod memory;
pub mod proxy;
mod slow;
mod soak;
mod space;
mod storage;
