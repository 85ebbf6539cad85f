//! # ferry-auth: who may do what on a ferry server (spec section 16, the `auth` extension)
//!
//! Sans-IO building blocks of authentication, shared by the server cores, the clients and
//! the `ferry` command: no sockets, no clock.
//!
//! - [`directory`]: the server's users as its sessions ask them (ferry-proto's
//!   `Authenticator` over a users file).
//! - [`rights`]: the rights (`list`, `read`, `create`, `replace`, `delete`, `rename`) and sets
//!   of them.
//! - [`users`]: the users file (TOML): users with a root folder, rights, keys, an optional
//!   SCRAM verifier and limits; optional anonymous access; loaded with clear errors, saved
//!   atomically with mode 0600.
//! - [`keys`]: Ed25519 keys in OpenSSH's formats (`ssh-ed25519 AAAA…` lines, unencrypted
//!   `-----BEGIN OPENSSH PRIVATE KEY-----` files), generated with ring.
//! - [`scram`]: passwords: SCRAM-SHA-256(-PLUS) client and server exchanges, stored
//!   verifiers (RFC 5803).
//! - [`login`]: the client's side: ferry-client-core's `Prover` for a key and for a
//!   password.
//! - [`proof`]: the Ed25519 proof of `auth ed25519`: the signed message, signing, verifying,
//!   and the strict base64 of its fields.
//! - [`secret`]: the server secret of AUTH-14 (unknown users' made-up salts), kept in a
//!   file beside the users file so that it outlives a restart.

pub mod directory;
pub mod keys;
pub mod login;
pub mod proof;
pub use ferry_proto::rights;
pub use ferry_proto::throttle;
pub mod scram;
pub mod secret;
pub mod users;
