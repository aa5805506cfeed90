//! A store over another that lets a test see, hold or fail what passes through it: the
//! sizes written and read, a write that fails as a killed process's would, two readers
//! or two claimants made to meet, a claim answered as a race would answer it.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use super::{Claim, Store, StoreError};

/// What an asynchronous hook hands back: it may wait (for another reader, say) first.
pub type Held<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send>>;

/// Called before each write with its key and value; an error fails the write unsent.
type BeforePut = Box<dyn Fn(&str, &str) -> Result<(), StoreError> + Send + Sync>;
/// Called before each read with its key: may hold it, or fail it.
type BeforeGet = Box<dyn Fn(&str) -> Held<()> + Send + Sync>;
/// Called after each read with its key and the value found.
type AfterGet = Box<dyn Fn(&str, Option<&str>) + Send + Sync>;
/// Called before each claim with its key and owner: may hold it, fail it, or answer it
/// instead of the store (`Some`).
type BeforeClaim = Box<dyn Fn(&str, &str) -> Held<Option<Claim>> + Send + Sync>;
/// Called after each claim the store answered, with what it came to.
type AfterClaim = Box<dyn Fn(&str, &str, &Claim) + Send + Sync>;

/// `inner`, with every write, read and claim shown to the hooks first.
pub struct Watched<S> {
    inner: S,
    before_put: BeforePut,
    before_get: BeforeGet,
    after_get: AfterGet,
    before_claim: BeforeClaim,
    after_claim: AfterClaim,
}

impl<S: Store> Watched<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            before_put: Box::new(|_, _| Ok(())),
            before_get: Box::new(|_| Box::pin(async { Ok(()) })),
            after_get: Box::new(|_, _| {}),
            before_claim: Box::new(|_, _| Box::pin(async { Ok(None) })),
            after_claim: Box::new(|_, _, _| {}),
        }
    }

    #[must_use]
    pub fn before_put(
        mut self,
        hook: impl Fn(&str, &str) -> Result<(), StoreError> + Send + Sync + 'static,
    ) -> Self {
        self.before_put = Box::new(hook);
        self
    }

    #[must_use]
    pub fn before_get(mut self, hook: impl Fn(&str) -> Held<()> + Send + Sync + 'static) -> Self {
        self.before_get = Box::new(hook);
        self
    }

    #[must_use]
    pub fn after_get(mut self, hook: impl Fn(&str, Option<&str>) + Send + Sync + 'static) -> Self {
        self.after_get = Box::new(hook);
        self
    }

    #[must_use]
    pub fn before_claim(
        mut self,
        hook: impl Fn(&str, &str) -> Held<Option<Claim>> + Send + Sync + 'static,
    ) -> Self {
        self.before_claim = Box::new(hook);
        self
    }

    #[must_use]
    pub fn after_claim(
        mut self,
        hook: impl Fn(&str, &str, &Claim) + Send + Sync + 'static,
    ) -> Self {
        self.after_claim = Box::new(hook);
        self
    }
}

impl<S: Store> Store for Watched<S> {
    async fn put_raw(&self, key: &str, value: String, ttl: Duration) -> Result<(), StoreError> {
        (self.before_put)(key, &value)?;
        self.inner.put_raw(key, value, ttl).await
    }

    async fn get_raw(&self, key: &str) -> Result<Option<String>, StoreError> {
        (self.before_get)(key).await?;
        let value = self.inner.get_raw(key).await?;
        (self.after_get)(key, value.as_deref());
        Ok(value)
    }

    async fn claim(
        &self,
        key: &str,
        owner: &str,
        value: String,
        ttl: Duration,
    ) -> Result<Claim, StoreError> {
        if let Some(answer) = (self.before_claim)(key, owner).await? {
            return Ok(answer);
        }
        let claim = self.inner.claim(key, owner, value, ttl).await?;
        (self.after_claim)(key, owner, &claim);
        Ok(claim)
    }

    async fn release(&self, key: &str, owner: Option<&str>) -> Result<bool, StoreError> {
        self.inner.release(key, owner).await
    }
}
