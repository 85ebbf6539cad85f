//! The ferry/1 protocol as sans-IO state machines, after quinn-proto and rustls: a session
//! takes the octets received, the current time and the results of storage operations, and
//! gives the octets to send, the storage operations to perform and its next deadline. It
//! opens no socket, touches no file and reads no clock, so every implementation — threads,
//! tokio, async-std, smol — drives the same protocol code with a small I/O loop, and tests run
//! two peers in memory on a virtual clock.
//!
//! - [`server`]: one server session (spec/protocol.md sections 3 to 9).
//! - [`auth`]: what a session asks of the server's users (the `auth` extension, section 16);
//!   [`rights`]: what a user may do; [`throttle`]: failed authentications per address.
//! - [`audit`]: the record of every operation of every session, for an operator's audit
//!   log.
//! - [`memory`]: an in-memory driver of a server session (tests, fuzzing).

pub mod audit;
pub mod auth;
pub mod memory;
pub mod rights;
pub mod server;
pub mod throttle;
pub mod tree;
