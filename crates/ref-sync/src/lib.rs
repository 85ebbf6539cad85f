//! # ferry-sync: the ferry/1 reference server and client on std threads
//!
//! - [`server`]: `run(listener, config, shutdown)`, one thread per connection, up to a cap.
//! - [`client`]: a blocking client with pipelined batch operations.
//!
//! Both are thin drivers of sans-IO protocol cores: the server of `ferry-proto`'s session
//! (with `ferry-store` for the served folder's safety rules), the client of
//! `ferry-client-core`'s session (with the local-file policy of `ferry_client_core::local`).
//!
//! Both speak ferry/1 over TLS (spec section 15) when their configuration has a
//! `ferry_tls` side (`ServerConfig::tls`, `ClientOptions::tls`): the same octets through a
//! rustls connection on the same socket (`server/conn.rs`, `client/transport.rs`).

pub mod client;
pub mod server;
