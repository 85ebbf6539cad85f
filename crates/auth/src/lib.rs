//! # ferry-auth: who may do what on a ferry server (spec section 16, the `auth` extension)
//!
//! Sans-IO building blocks of authentication, shared by the server cores, the clients and
//! the `ferry` command: no sockets, no clock.

pub mod scram;
