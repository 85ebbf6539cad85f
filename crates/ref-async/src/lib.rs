//! # ferry-async: the ferry/1 reference server and client over async I/O
//!
//! The second reference implementation of ferry/1 (the first is `ferry-sync`, on threads):
//! the same features, limits, storage rules, timeouts and shutdown behaviour, written for
//! async runtimes. The session state machine ([`server`]) and the client ([`client`]) are
//! written **once**, over the `futures-io` traits and the small [`runtime::Runtime`] trait;
//! each runtime is a thin driver behind a Cargo feature:
//!
//! | feature | module | driver | blocking entry points |
//! |---|---|---|---|
//! | `tokio` | [`tokio`] | `Tokio` | `serve`, `BlockingClient` |
//! | `async-std` | [`async_std`] | `AsyncStd` | `serve`, `BlockingClient` |
//! | `smol` | [`smol`] | `Smol` | `serve`, `BlockingClient` |
//!
//! The features are additive and all on by default. The codec (`ferry-wire`) and the served
//! folder's rules (`ferry-store`, called on the runtime's blocking pool) are shared with
//! `ferry-sync`; the session logic deliberately is not (see README.md).

pub mod blocking;
pub mod client;
pub mod runtime;
pub mod server;
mod tls;

#[cfg(feature = "async-std")]
pub mod async_std;
#[cfg(feature = "smol")]
pub mod smol;
#[cfg(feature = "tokio")]
pub mod tokio;

pub use runtime::{BlockOn, Runtime};
