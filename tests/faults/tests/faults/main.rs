//! The fault-injection suite: every server implementation (threads, async-std, tokio, smol)
//! against network faults (a faulty proxy), slow and stuck peers, floods, crashes and
//! storage faults. See docs/RELIABILITY.md.

/// `per_impl!(f: f_threads = Impl::Threads, …)`: one test per implementation, each `f(imp)`.
macro_rules! per_impl {
    ($f:ident: $($name:ident = $imp:expr),*) => {$(
        #[test]
        fn $name() {
            $f($imp);
        }
    )*};
}

mod auth;
mod crashes;
mod digests;
mod floods;
mod memory;
pub mod proxy;
mod slow;
mod soak;
mod space;
mod storage;
mod tree;
