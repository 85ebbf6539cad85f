//! The server tests of ferry, in `tests/`: raw sessions over loopback (ferry-wire and
//! `ferry-test-support`'s `RawSession`, no client library) against every server
//! implementation — threads, async-std, tokio and smol — through the one `TestServer` and
//! the one implementation list of `ferry-test-support` (`every_impl!`). Every server drives
//! the same protocol core (`ferry-proto`); these tests are what shows that each driver's
//! sockets, timers, storage and shutdown carry it faithfully.
