//! # ferry-sync: the ferry/1 reference server and client on std threads
//!
//! - [`server`]: `run(listener, config, shutdown)`, one thread per connection, up to a cap.
//! - [`client`]: a blocking client with pipelined batch operations.
//!
//! Both are thin drivers of sans-IO protocol cores: the server of `ferry-proto`'s session
//! (with `ferry-store` for the served folder's safety rules), the client of
//! `ferry-client-core`'s session (with the local-file policy in `client/local.rs`).

pub mod client;
pub mod server;
