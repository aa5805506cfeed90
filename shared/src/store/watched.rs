//! A store over another that lets a test see or fail what passes through it: the sizes
//! written and read, a write that fails as a killed process's would.

use std::time::Duration;

use super::{Claim, Store, StoreError};

/// Called before each write with its key and value; an error fails the write unsent.
type BeforePut = Box<dyn Fn(&str, &str) -> Result<(), StoreError> + Send + Sync>;
/// Called after each read with its key and the value found.
type AfterGet = Box<dyn Fn(&str, Option<&str>) + Send + Sync>;

/// `inner`, with every write and read shown to the hooks first.
pub struct Watched<S> {
    inner: S,
    before_put: BeforePut,
    after_get: AfterGet,
}

impl<S: Store> Watched<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            before_put: Box::new(|_, _| Ok(())),
            after_get: Box::new(|_, _| {}),
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
    pub fn after_get(mut self, hook: impl Fn(&str, Option<&str>) + Send + Sync + 'static) -> Self {
        self.after_get = Box::new(hook);
        self
    }
}

impl<S: Store> Store for Watched<S> {
    async fn put_raw(&self, key: &str, value: String, ttl: Duration) -> Result<(), StoreError> {
        (self.before_put)(key, &value)?;
        self.inner.put_raw(key, value, ttl).await
    }

    async fn get_raw(&self, key: &str) -> Result<Option<String>, StoreError> {
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
        self.inner.claim(key, owner, value, ttl).await
    }

    async fn release(&self, key: &str, owner: Option<&str>) -> Result<bool, StoreError> {
        self.inner.release(key, owner).await
    }
}
