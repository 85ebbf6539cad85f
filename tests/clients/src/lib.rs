//! The client tests of ferry, in `tests/`: scripted fake servers over loopback — a
//! one-connection server that sends canned octets and checks what the client sends — and the
//! real servers, against every client implementation: the threaded client and the async
//! client on async-std, tokio and smol, through `ferry-test-support`'s one implementation
//! list (`every_impl!`) and its `TestClient`. Every client drives the same protocol core
//! (`ferry-client-core`); these tests are what shows that each driver's sockets, timers and
//! local files carry it faithfully, and that no server, however broken or hostile, makes any
//! of them write outside its destination, keep unverified data, hang or panic.
