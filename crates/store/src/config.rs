//! [`ServerConfig`]: the settings of a ferry server, shared by every implementation so that
//! they announce and enforce the same limits from the same values.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ferry_proto::auth::Authenticator;
use ferry_proto::server::SessionConfig;

use ferry_wire::limits::{
    DEFAULT_IDLE_SECS, DEFAULT_MAX_EAGER, DEFAULT_MAX_SIZE, DEFAULT_MIN_RATE, DEFAULT_STALL_SECS,
};
use ferry_wire::{Greeting, Limits};

/// The default of [`ServerConfig::max_per_address`]: an eighth of the default total (256),
/// enough for a pipelining client's parallel connections or a small office behind one NAT
/// address.
pub const DEFAULT_MAX_PER_ADDRESS: usize = 32;

/// How long a server pauses accepting after a failure that is not the connection's own
/// ([`ServerConfig::accept_failed`]).
pub const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// The longest timeout or grace a server applies (a year): longer configured values are cut
/// to it, so that deadline arithmetic (`Instant + Duration`) cannot overflow.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);

/// Past the shutdown deadline, how long a server waits for a client that accepts no octet of
/// the chunk being sent before it closes without finishing it (CLOSE-9, CLOSE-10): a reading
/// client gets the whole chunk and `abort 422`, a stuck one cannot hold the shutdown for
/// `stall`. 5 s, because a server sees a reader's progress only when the kernel reports the
/// socket writable again, which takes up to half a send buffer read by the client.
pub const SHUTDOWN_CHUNK_PATIENCE: Duration = Duration::from_secs(5);

/// Server configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The served folder; created when missing (unless the server is read-only).
    pub root: PathBuf,
    /// Refuse every put with `514 read-only` (SEC-10).
    pub read_only: bool,
    /// List and serve regular files with more than one hard link (SEC-13). Off by default: such
    /// a file may be the same inode as a file outside the served folder.
    pub allow_hard_links: bool,
    /// Largest SIZE accepted in a put (`max-size`).
    pub max_size: u64,
    /// Largest SIZE of an eager (`now`) put (`max-eager`); 0 disables eager puts.
    pub max_eager: u64,
    /// The most octets the served folder's files and folders may hold (PUT-23; each folder
    /// counts [`crate::FOLDER_OCTETS`]); a put or a `mkdir` that would exceed it, counting the
    /// uploads and `mkdir`s in progress, gets `err 432 no-space`. `None`: no quota (the free
    /// space of the file system still bounds the uploads, PUT-2, PUT-22).
    pub quota: Option<u64>,
    /// The most files and folders the served folder may hold in its whole tree (PUT-23); a
    /// put that would add a file, or a `mkdir`, beyond it gets `err 432 no-space`. `None`: no
    /// limit.
    pub quota_files: Option<u64>,
    /// Most concurrent sessions; more connections get `err 420 busy` (CONN-3).
    pub max_connections: usize,
    /// Most concurrent sessions from one source address; more get `err 420 busy` too
    /// (CONN-9), so that one address cannot take every slot.
    pub max_per_address: usize,
    /// Idle timeout between requests (TIME-1). Announced in whole seconds, at least 1.
    pub idle_timeout: Duration,
    /// Stall timeout inside a request, payload or reply (TIME-2). Announced in whole seconds,
    /// at least 1.
    pub stall_timeout: Duration,
    /// The least average rate of a payload in octets per second, beyond a grace of the stall
    /// timeout (TIME-9), announced as `min-rate`; 0: none (and not announced).
    pub min_rate: u64,
    /// The memory all sessions share for large buffers (an eager put held until it has
    /// arrived, a get's 1 MiB chunks, an upload's large reads); when it is spent, sessions
    /// stream and use small buffers instead (`ferry_proto::server::MemoryBudget`).
    pub buffer_memory: usize,
    /// How long requests in flight may go on after a shutdown was triggered (CLOSE-8).
    pub shutdown_grace: Duration,
    /// Serve ferry/1 over TLS (spec section 15) with this certificate and key; `None`: plain
    /// ferry/1. Every implementation's driver wraps its accepted connections with it.
    pub tls: Option<ferry_tls::ServerTls>,
    /// Authenticate users (the `auth` extension, spec section 16): who they are and what they
    /// may do, and their folders; `None`: no authentication, every session is served
    /// [`ServerConfig::root`].
    pub auth: Option<ServerAuth>,
    /// Where every session's operations are recorded (`ferry_proto::audit`: each auth
    /// attempt, dir, get, put and the session's end); `None`: no audit.
    pub audit: Option<ferry_proto::audit::AuditSink>,
    /// Offer the `tree` extension (spec section 17: folders, `list`, `mkdir`, `rmdir`,
    /// `delete`, `rename`, paths in `get` and `put` after `enable tree`); on by default
    /// (`ferry serve --no-tree` turns it off: those requests then get `err 503 unsupported`).
    pub tree: bool,
}

/// A server's users: the [`Authenticator`] its sessions ask, and the users' folders.
#[derive(Debug, Clone)]
pub struct ServerAuth {
    /// Checks proofs and gives rights (`ferry-auth` implements it over the users file).
    pub authenticator: Arc<dyn Authenticator>,
    /// The users' folders, and the anonymous access's.
    pub homes: Arc<crate::homes::Homes>,
}

impl ServerAuth {
    /// The folder a session is served (AUTH-18): its user's, or the anonymous access's before
    /// (or without) authentication; `None` when there is none (a user removed from the users
    /// file since it authenticated: its requests get `err 431 storage`).
    pub fn root(&self, grant: Option<&ferry_proto::auth::Grant>) -> Option<crate::Root> {
        match grant {
            Some(g) => self.homes.user(&g.user),
            None => self.homes.anonymous(),
        }
    }
}

impl PartialEq for ServerAuth {
    /// The same users: the same authenticator and folders (not equal contents).
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.authenticator, &other.authenticator)
            && Arc::ptr_eq(&self.homes, &other.homes)
    }
}

impl Eq for ServerAuth {}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            root: PathBuf::from("ferry-files"),
            read_only: false,
            allow_hard_links: false,
            max_size: DEFAULT_MAX_SIZE,
            max_eager: DEFAULT_MAX_EAGER,
            quota: None,
            quota_files: None,
            max_connections: 256,
            max_per_address: DEFAULT_MAX_PER_ADDRESS,
            idle_timeout: Duration::from_secs(DEFAULT_IDLE_SECS),
            stall_timeout: Duration::from_secs(DEFAULT_STALL_SECS),
            min_rate: DEFAULT_MIN_RATE,
            buffer_memory: ferry_proto::server::DEFAULT_MEMORY_BUDGET,
            shutdown_grace: Duration::from_secs(10),
            tls: None,
            auth: None,
            audit: None,
            tree: true,
        }
    }
}

impl ServerConfig {
    /// The idle timeout the server applies: at least 1 s (the greeting announces whole
    /// seconds, at least 1, and a server never times out sooner than announced: HELLO-7),
    /// at most [`MAX_TIMEOUT`].
    pub fn idle(&self) -> Duration {
        self.idle_timeout.clamp(Duration::from_secs(1), MAX_TIMEOUT)
    }

    /// The stall timeout the server applies, bounded like [`ServerConfig::idle`].
    pub fn stall(&self) -> Duration {
        self.stall_timeout
            .clamp(Duration::from_secs(1), MAX_TIMEOUT)
    }

    /// The shutdown grace the server applies, at most [`MAX_TIMEOUT`].
    pub fn grace(&self) -> Duration {
        self.shutdown_grace.min(MAX_TIMEOUT)
    }

    /// The settings of each session of a server with this configuration, for
    /// `ferry_proto::server::ServerSession`: call once per server, since its clones share one
    /// memory budget. `upload_input` is the driver's choice of input
    /// buffer during uploads ([`SessionConfig::upload_input`]).
    pub fn session(&self, upload_input: usize) -> SessionConfig {
        SessionConfig {
            greeting: self.greeting().to_bytes(),
            read_only: self.read_only,
            max_size: self.max_size,
            max_eager: self.max_eager,
            idle: self.idle(),
            stall: self.stall(),
            min_rate: self.min_rate,
            chunk_patience: SHUTDOWN_CHUNK_PATIENCE,
            upload_input,
            memory: ferry_proto::server::MemoryBudget::new(self.buffer_memory),
            listing_memory: ferry_proto::server::MemoryBudget::new(
                ferry_proto::server::DEFAULT_LISTING_BUDGET,
            ),
            auth: self.auth.as_ref().map(|a| Arc::clone(&a.authenticator)),
            tree: self.tree,
        }
    }

    /// Opens the served folder as this configuration asks: read-only (creating, locking and
    /// cleaning nothing, SEC-10) or for uploads ([`Root::open`]), serving files with more
    /// than one hard link only if [`ServerConfig::allow_hard_links`] (SEC-13), with the
    /// [`ServerConfig::quota`] and [`ServerConfig::quota_files`] (which scan the folder once,
    /// `Root::with_quotas`).
    ///
    /// [`Root::open`]: crate::Root::open
    pub fn open_root(&self) -> std::io::Result<crate::Root> {
        let root = if self.read_only {
            crate::Root::open_read_only(&self.root)
        } else {
            crate::Root::open(&self.root)
        }?;
        root.with_hard_links(self.allow_hard_links)
            .with_quotas(crate::Quota {
                bytes: self.quota,
                files: self.quota_files,
            })
    }

    /// How long to pause before the next accept after `accept` failed with `e`: none for
    /// what concerns only the connection that failed (interrupted, aborted, reset); for
    /// anything else (EMFILE and the like) [`ACCEPT_PAUSE`], logged, so that the server waits
    /// for resources instead of spinning.
    pub fn accept_failed(e: &std::io::Error) -> Option<Duration> {
        use std::io::ErrorKind;
        match e.kind() {
            ErrorKind::Interrupted | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset => {
                None
            }
            _ => {
                tracing::warn!(error = %e, "accept failed");
                Some(ACCEPT_PAUSE)
            }
        }
    }

    /// Logs that a server with this configuration serves on `addr`.
    pub fn log_serving(&self, addr: std::net::SocketAddr) {
        let folder = match &self.auth {
            Some(_) => "each user's own (the users file's)".to_owned(),
            None => self.root.display().to_string(),
        };
        tracing::info!(
            %addr,
            %folder,
            read_only = self.read_only,
            allow_hard_links = self.allow_hard_links,
            quota = ?self.quota,
            quota_files = ?self.quota_files,
            max_connections = self.max_connections,
            max_per_address = self.max_per_address,
            tls = ?self.tls.as_ref().map(|t| t.fingerprint().to_string()),
            tree = self.tree,
            "serving"
        );
    }

    /// The greeting that announces these settings (HELLO-2, HELLO-5, HELLO-7) and the
    /// extensions offered (`auth` with its mechanisms, `tree`).
    pub fn greeting(&self) -> Greeting {
        let greeting = Greeting::new(Limits {
            max_size: self.max_size,
            max_eager: self.max_eager,
            idle: self.idle().as_secs(),
            stall: self.stall().as_secs(),
            ..Limits::default()
        })
        .with_min_rate((self.min_rate > 0).then_some(self.min_rate));
        let greeting = match &self.auth {
            Some(auth) => ferry_wire::auth::offer(greeting, &auth.authenticator.mechanisms())
                .expect("a greeting offers auth once"),
            None => greeting,
        };
        match self.tree {
            true => ferry_wire::tree::offer(greeting).expect("a greeting offers tree once"),
            false => greeting,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_are_announced_as_applied() {
        let c = ServerConfig {
            idle_timeout: Duration::from_millis(10),
            stall_timeout: Duration::MAX,
            ..ServerConfig::default()
        };
        assert_eq!(c.idle(), Duration::from_secs(1));
        assert_eq!(c.stall(), MAX_TIMEOUT);
        let l = *c.greeting().limits();
        assert_eq!((l.idle, l.stall), (1, MAX_TIMEOUT.as_secs()));
        assert_eq!(c.greeting().check(), Ok(()));
        let plain = ServerConfig {
            tree: false,
            ..ServerConfig::default()
        };
        assert_eq!(
            plain.greeting(),
            Greeting::new(Limits::default()).with_min_rate(Some(DEFAULT_MIN_RATE))
        );
        let none = ServerConfig {
            min_rate: 0,
            ..plain
        };
        assert_eq!(none.greeting(), Greeting::new(Limits::default()));
        assert!(!ferry_wire::tree::offered(&none.greeting()));
        assert!(!none.session(0).tree);
    }

    #[test]
    fn the_tree_extension_is_offered_by_default() {
        let c = ServerConfig::default();
        assert!(ferry_wire::tree::offered(&c.greeting()));
        assert!(c.session(0).tree);
        let g = Greeting::new(Limits::default()).with_min_rate(Some(DEFAULT_MIN_RATE));
        assert_eq!(c.greeting(), ferry_wire::tree::offer(g).expect("offer"));
    }
}
