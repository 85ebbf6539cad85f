//! # ferry-sync: the ferry/1 reference server and client on std threads
//!
//! - [`server`]: `run(listener, config, shutdown)`, one thread per connection, up to a cap.
//! - [`client`]: a blocking client with pipelined batch operations.
//!
//! Both are thin drivers over `ferry-wire` (the codec and payload state machine) and, for
//! the server, `ferry-store` (the served folder's safety rules).

pub mod client;
pub mod server;
