//! [`RedisSessionStore`].

use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::{Cmd, Value};

use super::memory::DEFAULT_IDLE_TIMEOUT;
use super::{Binding, SessionFuture, SessionKey, SessionOwner, SessionStore, SessionStoreError};

/// The default key prefix: keys are `dpop:mcp-session:<64 hex digits>`.
pub const DEFAULT_REDIS_PREFIX: &str = "dpop:mcp-session:";

/// The default deadline of one store operation.
pub const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_millis(250);

/// Session bindings in Redis (or Valkey), shared by every replica of the MCP server: a session
/// opened through one replica is refused to other callers on all of them.
///
/// One round trip per operation, each atomic on the server:
///
/// - opening a session: `SET <prefix><digest> <owner> NX PX <idle timeout>`;
/// - a request in a session: `GETEX <prefix><digest> PX <idle timeout>` (reads the owner and
///   restarts the idle timeout; Redis 6.2 or later);
/// - ending a session: `DEL <prefix><digest>`.
///
/// `<digest>` is the SHA-256 of the session id in hex ([`SessionKey`]) and `<owner>` is
/// [`SessionOwner::encode`]: neither the session id (a bearer secret) nor the subject is
/// stored. Redis expires bindings itself; memory is bounded by `maxmemory` (there is no
/// per-owner quota as in [`InMemorySessionStore`](super::InMemorySessionStore)). Under an evicting
/// `maxmemory-policy` an evicted binding makes its session unusable (refused as unknown,
/// `404`: the client opens a new one), never usable by another caller.
///
/// **Fail closed**: a connection error, a timeout ([`DEFAULT_REDIS_TIMEOUT`], see
/// [`timeout`](Self::timeout)), an error reply or a reply of the wrong shape is
/// [`SessionStoreError::Unavailable`]: the layer answers `503`.
///
/// `C` is any async connection of the `redis` crate that can be cloned to share:
/// `MultiplexedConnection`, `ConnectionManager` (which reconnects), a cluster connection.
///
/// ```no_run
/// use dpop_mcp::{RedisSessionStore, SessionBindingLayer};
///
/// # async fn run() -> redis::RedisResult<()> {
/// let connection = redis::Client::open("redis://127.0.0.1:6379")?.get_multiplexed_async_connection().await?;
/// let layer = SessionBindingLayer::new(RedisSessionStore::new(connection).prefix("my-mcp:session:"));
/// # let _ = layer;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisSessionStore<C> {
    connection: C,
    prefix: String,
    idle_timeout: Duration,
    timeout: Duration,
}

impl<C> RedisSessionStore<C> {
    /// A store on `connection`, with [`DEFAULT_REDIS_PREFIX`], an idle timeout of 30 minutes and
    /// operations bounded by [`DEFAULT_REDIS_TIMEOUT`].
    #[must_use]
    pub fn new(connection: C) -> Self {
        Self {
            connection,
            prefix: DEFAULT_REDIS_PREFIX.to_owned(),
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            timeout: DEFAULT_REDIS_TIMEOUT,
        }
    }

    /// The prefix of every key (for ACL key patterns, or several servers on one Redis).
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long a binding lives without a request in its session (at least 1 ms).
    #[must_use]
    pub fn idle_timeout(mut self, idle_timeout: Duration) -> Self {
        self.idle_timeout = idle_timeout.max(Duration::from_millis(1));
        self
    }

    /// The deadline of one operation, connection wait included.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The Redis key of `session`.
    #[must_use]
    pub fn redis_key(&self, session: SessionKey) -> String {
        format!("{}{}", self.prefix, session.to_hex())
    }

    fn idle_millis(&self) -> u64 {
        u64::try_from(self.idle_timeout.as_millis()).unwrap_or(u64::MAX)
    }
}

impl<C> std::fmt::Debug for RedisSessionStore<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSessionStore")
            .field("prefix", &self.prefix)
            .field("idle_timeout", &self.idle_timeout)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl<C: ConnectionLike + Clone + Send + Sync + 'static> RedisSessionStore<C> {
    /// Sends `command`, within the deadline.
    async fn query(&self, command: Cmd) -> Result<Value, SessionStoreError> {
        let mut connection = self.connection.clone();
        match tokio::time::timeout(self.timeout, command.query_async::<Value>(&mut connection)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(SessionStoreError::Unavailable(Box::new(error))),
            Err(_) => Err(unavailable(format!("no reply within {:?}", self.timeout))),
        }
    }
}

impl<C: ConnectionLike + Clone + Send + Sync + 'static> SessionStore for RedisSessionStore<C> {
    fn bind<'a>(&'a self, session: SessionKey, owner: &'a SessionOwner) -> SessionFuture<'a, Binding> {
        Box::pin(async move {
            let mut command = redis::cmd("SET");
            command.arg(self.redis_key(session)).arg(owner.encode()).arg("NX").arg("PX").arg(self.idle_millis());
            match self.query(command).await? {
                Value::Okay => Ok(Binding::New),
                Value::Nil => Ok(Binding::AlreadyBound),
                other => Err(unavailable(format!("unexpected reply to SET NX: {other:?}"))),
            }
        })
    }

    fn owner(&self, session: SessionKey) -> SessionFuture<'_, Option<SessionOwner>> {
        Box::pin(async move {
            let mut command = redis::cmd("GETEX");
            command.arg(self.redis_key(session)).arg("PX").arg(self.idle_millis());
            match self.query(command).await? {
                Value::Nil => Ok(None),
                Value::BulkString(bytes) => std::str::from_utf8(&bytes)
                    .ok()
                    .and_then(SessionOwner::decode)
                    .map(Some)
                    .ok_or_else(|| unavailable("a session binding that is not an owner".to_owned())),
                other => Err(unavailable(format!("unexpected reply to GETEX: {other:?}"))),
            }
        })
    }

    fn unbind(&self, session: SessionKey) -> SessionFuture<'_, ()> {
        Box::pin(async move {
            let mut command = redis::cmd("DEL");
            command.arg(self.redis_key(session));
            match self.query(command).await? {
                Value::Int(_) => Ok(()),
                other => Err(unavailable(format!("unexpected reply to DEL: {other:?}"))),
            }
        })
    }
}

fn unavailable(reason: String) -> SessionStoreError {
    SessionStoreError::Unavailable(reason.into())
}
