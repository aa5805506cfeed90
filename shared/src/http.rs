//! The one HTTP execution path every connector uses: a bounded number of requests in
//! flight, a call counter, and one retry policy.
//!
//! Retry rules: `429` waits `Retry-After` (or the policy's fallback when the header is
//! missing): the request was not processed. For an idempotent request (a read, a PUT of
//! whole records, a GraphQL query or an edit that sets values) `5xx` and connection
//! errors back off exponentially with full jitter: sending it twice is the same as once.
//! A request that is not idempotent (a POST that creates) is resent only when it
//! certainly never reached the server (the connection could not be made); a `5xx`, a
//! timeout or a connection lost after sending may follow a save, so that request is
//! handed back as it is, or as [`TransportError::OutcomeUnknown`], for the caller to
//! find out what was saved. Any other status is handed back untouched, so a `400` is sent
//! exactly once. Both the number of attempts and the total time spent are bounded.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::clock::epoch_millis as epoch_ms;
use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, Response, StatusCode};
use tokio::sync::{Mutex, Semaphore};

/// How a connector retries; one value per API, shared by every call to it.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included.
    pub max_attempts: u32,
    /// First backoff step for 5xx and connection errors; doubles each attempt.
    pub base_delay: Duration,
    /// Upper bound of one backoff step.
    pub max_delay: Duration,
    /// No retry is started when it would end later than this after the first attempt.
    pub max_elapsed: Duration,
    /// Wait after a 429 that carries no `Retry-After`.
    pub rate_limit_fallback: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(20),
            max_elapsed: Duration::from_secs(120),
            rate_limit_fallback: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The longest backoff after the given 1-based failed attempt: `base_delay`, doubled
    /// each attempt, up to `max_delay`.
    pub fn backoff_bound(&self, attempt: u32) -> Duration {
        let exp = self.base_delay.saturating_mul(
            1u32.checked_shl(attempt.saturating_sub(1))
                .unwrap_or(u32::MAX),
        );
        exp.min(self.max_delay)
    }

    /// Exponential backoff with full jitter for the given 1-based failed attempt:
    /// anywhere up to [`RetryPolicy::backoff_bound`].
    pub fn backoff(&self, attempt: u32) -> Duration {
        self.backoff_bound(attempt).mul_f64(fastrand::f64())
    }
}

/// Whether sending a request twice is the same as sending it once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotence {
    /// Reads, whole-record PUTs, edits that set values: retried on 5xx and network errors.
    Idempotent,
    /// Creations: never resent once they may have reached the server.
    NotIdempotent,
}

/// Why a request did not produce a response worth handing back.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("could not reach {host} after {attempts} attempt(s): {reason}")]
    Connection {
        host: String,
        attempts: u32,
        reason: String,
    },
    #[error(
        "rate limited by {host}: asked to wait {wait:?}, beyond the retry budget ({attempts} attempt(s) made)"
    )]
    RateLimited {
        host: String,
        wait: Duration,
        attempts: u32,
    },
    #[error(
        "lost the answer from {host} after sending ({reason}); the request may have been carried out"
    )]
    OutcomeUnknown { host: String, reason: String },
    #[error(
        "the answer from {host} is over {} bytes ({bytes} read)",
        MAX_ANSWER_BYTES
    )]
    TooLarge { host: String, bytes: usize },
    #[error("could not build the request: {0}")]
    Build(String),
}

/// Client-side pacing for APIs with a request quota per window (Lansweeper: 150 a
/// minute), so the quota is never exceeded in normal runs. A request occupies its slot
/// from the moment it is sent until a full window after its answer came back: the
/// server's clock starts somewhere in between, so this never undercounts.
#[derive(Debug)]
pub struct RatePacer {
    limit: usize,
    window: Duration,
    state: Mutex<PacerState>,
    released: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct PacerState {
    next_id: u64,
    /// (slot id, when its answer arrived, also as epoch milliseconds; `None` while in
    /// flight), oldest first.
    slots: VecDeque<(u64, Option<Answered>)>,
}

/// When an answer arrived: on this process's clock, and as its request's stamp (epoch
/// milliseconds, [`request_stamp`]), which is how spent quota is shared with other
/// processes.
type Answered = (tokio::time::Instant, u64);

/// A request's stamp: the epoch millisecond its answer arrived, or the first after the
/// last stamp this process gave when several arrive in one millisecond. Every request a
/// process sends has its own, so a ledger holding stamps counts requests, not the
/// milliseconds they fell in.
pub fn request_stamp() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = epoch_ms();
    let next = |last: u64| now.max(last + 1);
    match LAST.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
        Some(next(last))
    }) {
        Ok(last) | Err(last) => next(last),
    }
}

/// A booked request; hand it back with [`RatePacer::complete`].
#[derive(Debug)]
pub struct PacerSlot(u64);

impl RatePacer {
    pub fn new(limit: usize, window: Duration) -> Self {
        Self {
            limit: limit.max(1),
            window,
            state: Mutex::new(PacerState::default()),
            released: tokio::sync::Notify::new(),
        }
    }

    /// The window its limit counts over.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Waits until one more request fits in the window, and books it.
    pub async fn acquire(&self) -> PacerSlot {
        loop {
            let notified = self.released.notified();
            let wait = {
                let mut state = self.state.lock().await;
                let now = tokio::time::Instant::now();
                state.slots.retain(|(_, done)| {
                    done.is_none_or(|(t, _)| now.duration_since(t) < self.window)
                });
                if state.slots.len() < self.limit {
                    state.next_id += 1;
                    let id = state.next_id;
                    state.slots.push_back((id, None));
                    return PacerSlot(id);
                }
                // The earliest answered slot frees first; if all are in flight, wait for one.
                state
                    .slots
                    .iter()
                    .filter_map(|(_, done)| done.map(|(t, _)| t))
                    .min()
                    .map(|t| self.window.saturating_sub(now.duration_since(t)))
            };
            match wait {
                Some(wait) => {
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = notified => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// The request's answer arrived (or it failed): its window starts now.
    pub async fn complete(&self, slot: PacerSlot) {
        self.complete_stamped(slot, request_stamp()).await;
    }

    /// As [`RatePacer::complete`], the request known to others by `stamp` (from
    /// [`request_stamp`]: one request paced by several pacers has one stamp in all).
    pub async fn complete_stamped(&self, slot: PacerSlot, stamp: u64) {
        let mut state = self.state.lock().await;
        let now = tokio::time::Instant::now();
        if let Some(entry) = state.slots.iter_mut().find(|(id, _)| *id == slot.0) {
            entry.1 = Some((now, stamp));
        }
        drop(state);
        self.released.notify_waiters();
    }

    /// The server says fewer requests remain than we think (another client shares the
    /// quota): book the difference so we slow down with it.
    pub async fn observe_remaining(&self, remaining: usize) {
        let mut state = self.state.lock().await;
        let ours = self.limit.saturating_sub(state.slots.len());
        let now = tokio::time::Instant::now();
        for _ in remaining..ours {
            state.slots.push_back((0, Some((now, epoch_ms()))));
        }
    }

    /// When the requests still counting against the window finished, in milliseconds
    /// since the epoch: what another process sharing the quota has to count too.
    pub async fn spent(&self) -> Vec<u64> {
        let state = self.state.lock().await;
        let now = tokio::time::Instant::now();
        state
            .slots
            .iter()
            .filter_map(|(_, done)| *done)
            .filter(|(at, _)| now.duration_since(*at) < self.window)
            .map(|(_, at_ms)| at_ms)
            .collect()
    }

    /// Counts requests made elsewhere with the same quota (their finishing times, in
    /// milliseconds since the epoch) as if this pacer had made them. A time it counts
    /// already (its own request, shared before) is counted once.
    pub async fn adopt(&self, spent: &[u64]) {
        let mut state = self.state.lock().await;
        let (now, now_ms) = (tokio::time::Instant::now(), epoch_ms());
        let known: std::collections::HashSet<u64> = state
            .slots
            .iter()
            .filter_map(|(_, done)| done.map(|(_, at_ms)| at_ms))
            .collect();
        for &at_ms in spent {
            // A stamp's millisecond has begun, not ended: counted from its end, the request
            // is never taken for older than it is.
            let age = Duration::from_millis(now_ms.saturating_sub(at_ms + 1));
            if age >= self.window || known.contains(&at_ms) {
                continue;
            }
            if let Some(at) = now.checked_sub(age) {
                state.slots.push_back((0, Some((at, at_ms))));
            }
        }
    }

    /// How long until one more request fits in the window (zero when one does now).
    pub async fn wait_for_room(&self) -> Duration {
        self.wait_for_room_leaving(0).await
    }

    /// How long until one more request fits in the window with `reserve` requests of it
    /// still left for others (zero when one does now).
    pub async fn wait_for_room_leaving(&self, reserve: usize) -> Duration {
        let limit = self.limit.saturating_sub(reserve).max(1);
        let state = self.state.lock().await;
        let now = tokio::time::Instant::now();
        let live: Vec<Option<tokio::time::Instant>> = state
            .slots
            .iter()
            .map(|(_, done)| done.map(|(t, _)| t))
            .filter(|done| done.is_none_or(|t| now.duration_since(t) < self.window))
            .collect();
        if live.len() < limit {
            return Duration::ZERO;
        }
        // Room for one more once `excess + 1` answers have left the window, oldest first;
        // with too few answered (the rest in flight), a whole window is the bound.
        let excess = live.len() - limit;
        let mut answered: Vec<tokio::time::Instant> = live.into_iter().flatten().collect();
        answered.sort();
        answered.get(excess).map_or(self.window, |t| {
            self.window.saturating_sub(now.duration_since(*t))
        })
    }

    /// The quota was hit anyway: nothing more is sent until a whole window has passed.
    pub async fn exhausted(&self) {
        let mut state = self.state.lock().await;
        let now = tokio::time::Instant::now();
        // In-flight requests keep their slots; the rest of the window is filled from now.
        state.slots.retain(|(_, done)| done.is_none());
        let filler = self.limit.saturating_sub(state.slots.len());
        state
            .slots
            .extend(std::iter::repeat_n((0, Some((now, epoch_ms()))), filler));
    }
}

/// Sends requests for one API: concurrency cap, optional pacing, call counting, retries.
#[derive(Clone)]
pub struct HttpExecutor {
    client: reqwest::Client,
    policy: RetryPolicy,
    permits: Arc<Semaphore>,
    calls: Arc<AtomicU64>,
    pacer: Option<Arc<RatePacer>>,
    /// Longer windows paced alongside (Lansweeper: 2,000 an hour), without penalties.
    quotas: Vec<Arc<RatePacer>>,
}

impl HttpExecutor {
    pub fn new(client: reqwest::Client, policy: RetryPolicy, max_concurrent: usize) -> Self {
        Self {
            client,
            policy,
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            calls: Arc::new(AtomicU64::new(0)),
            pacer: None,
            quotas: Vec::new(),
        }
    }

    /// Also keeps every attempt within this longer window's quota.
    pub fn with_quota(mut self, quota: RatePacer) -> Self {
        self.quotas.push(Arc::new(quota));
        self
    }

    /// The pacers every request passes: the short window's, then the longer quotas'.
    pub fn pacers(&self) -> Vec<Arc<RatePacer>> {
        self.pacer.iter().chain(&self.quotas).cloned().collect()
    }

    /// Paces every attempt, retries included, and reads `x-ratelimit-remaining`.
    pub fn with_pacer(mut self, pacer: RatePacer) -> Self {
        self.pacer = Some(Arc::new(pacer));
        self
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// HTTP requests sent so far, retries included.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Sends the request `build` makes, retrying as the policy and `idempotence` say, and
    /// reads its answer whole (at most [`MAX_ANSWER_BYTES`]). Returns the final answer
    /// whatever its status (a 5xx once retries are exhausted or at once when not
    /// idempotent, any non-429 4xx at once); the caller turns a non-success status into
    /// its own error.
    pub async fn execute<F>(
        &self,
        idempotence: Idempotence,
        build: F,
    ) -> Result<Answer, TransportError>
    where
        F: Fn(&reqwest::Client) -> RequestBuilder,
    {
        let started = Instant::now();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let request = build(&self.client)
                .build()
                .map_err(|e| TransportError::Build(e.to_string()))?;
            let host = request.url().host_str().unwrap_or_default().to_string();
            let outcome = {
                let _permit = self.permits.acquire().await;
                let mut quota_slots = Vec::with_capacity(self.quotas.len());
                for quota in &self.quotas {
                    quota_slots.push(quota.acquire().await);
                }
                let slot = match &self.pacer {
                    Some(pacer) => Some(pacer.acquire().await),
                    None => None,
                };
                self.calls.fetch_add(1, Ordering::Relaxed);
                let outcome = match self.client.execute(request).await {
                    Ok(response) => read_answer(response).await,
                    Err(error) => Err(Lost::Transport(error)),
                };
                // One stamp in every pacer: the ledger counts the request once.
                let stamp = request_stamp();
                for (quota, slot) in self.quotas.iter().zip(quota_slots) {
                    quota.complete_stamped(slot, stamp).await;
                }
                if let (Some(pacer), Some(slot)) = (&self.pacer, slot) {
                    pacer.complete_stamped(slot, stamp).await;
                    if let Ok(answer) = &outcome {
                        if answer.status == StatusCode::TOO_MANY_REQUESTS {
                            pacer.exhausted().await;
                        } else if let Some(remaining) =
                            header_number(&answer.headers, "x-ratelimit-remaining")
                        {
                            pacer.observe_remaining(remaining).await;
                        }
                    }
                }
                outcome
            };
            let wait = match outcome {
                Ok(answer) => {
                    let status = answer.status;
                    if status == StatusCode::TOO_MANY_REQUESTS {
                        let wait =
                            retry_after(&answer.headers).unwrap_or(self.policy.rate_limit_fallback);
                        if attempt >= self.policy.max_attempts
                            || started.elapsed() + wait > self.policy.max_elapsed
                        {
                            return Err(TransportError::RateLimited {
                                host,
                                wait,
                                attempts: attempt,
                            });
                        }
                        tracing::warn!(%host, attempt, wait_ms = wait.as_millis() as u64, "rate limited; waiting Retry-After");
                        wait
                    } else if status.is_server_error() {
                        let wait = self.policy.backoff(attempt);
                        if idempotence == Idempotence::NotIdempotent
                            || attempt >= self.policy.max_attempts
                            || started.elapsed() + wait > self.policy.max_elapsed
                        {
                            return Ok(answer);
                        }
                        tracing::warn!(%host, attempt, status = status.as_u16(), wait_ms = wait.as_millis() as u64, "server error; backing off");
                        wait
                    } else {
                        return Ok(answer);
                    }
                }
                Err(Lost::TooLarge(bytes)) => {
                    return Err(TransportError::TooLarge { host, bytes });
                }
                Err(Lost::Transport(error)) => {
                    if idempotence == Idempotence::NotIdempotent && !error.is_connect() {
                        return Err(TransportError::OutcomeUnknown {
                            host,
                            reason: error_chain(&error),
                        });
                    }
                    let wait = self.policy.backoff(attempt);
                    if attempt >= self.policy.max_attempts
                        || started.elapsed() + wait > self.policy.max_elapsed
                    {
                        return Err(TransportError::Connection {
                            host,
                            attempts: attempt,
                            reason: error_chain(&error),
                        });
                    }
                    tracing::warn!(%host, attempt, error = %error_chain(&error), wait_ms = wait.as_millis() as u64, "request failed; backing off");
                    wait
                }
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// Longest answer read: far above a page of 1,000 configurations or 500 assets, and
/// far below what would put a function's memory at risk.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;

/// An answer read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

enum Lost {
    Transport(reqwest::Error),
    TooLarge(usize),
}

async fn read_answer(mut response: Response) -> Result<Answer, Lost> {
    let status = response.status();
    let headers = response.headers().clone();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(Lost::Transport)? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(Lost::TooLarge(body.len() + chunk.len()));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn header_number(headers: &HeaderMap, name: &str) -> Option<usize> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// `Retry-After` in seconds (the only form the APIs we talk to send).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?;
    let seconds: f64 = value.to_str().ok()?.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds))
}

/// The error and its causes on one line; reqwest's top-level message alone says little.
/// The URL is left out so that query strings never reach logs.
fn error_chain(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else if error.is_body() || error.is_decode() {
        "bad response body"
    } else {
        "request failed"
    }
    .to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn pacer_never_lets_more_than_the_limit_into_a_window() {
        let pacer = RatePacer::new(3, Duration::from_secs(60));
        let started = tokio::time::Instant::now();
        let mut times = Vec::new();
        for _ in 0..7 {
            let slot = pacer.acquire().await;
            // Each answer takes a second to arrive.
            tokio::time::sleep(Duration::from_secs(1)).await;
            pacer.complete(slot).await;
            times.push(started.elapsed().as_secs());
        }
        // A slot frees a full window after its answer: 1 + 60 = 61 s.
        assert_eq!(times, [1, 2, 3, 62, 63, 64, 123]);
        pacer.exhausted().await;
        let _slot = pacer.acquire().await;
        assert_eq!(started.elapsed().as_secs(), 183);
    }

    #[tokio::test]
    async fn spent_requests_travel_to_another_pacer_and_count_there() {
        let window = Duration::from_secs(60);
        let first = RatePacer::new(3, window);
        for _ in 0..2 {
            let slot = first.acquire().await;
            first.complete(slot).await;
        }
        let spent = first.spent().await;
        assert_eq!(spent.len(), 2);
        let second = RatePacer::new(3, window);
        assert_eq!(second.wait_for_room().await, Duration::ZERO);
        second.adopt(&spent).await;
        second.adopt(&spent).await;
        assert_eq!(second.spent().await.len(), 2, "adopting twice counts once");
        let slot = second.acquire().await;
        second.complete(slot).await;
        let wait = second.wait_for_room().await;
        assert!(
            wait > Duration::from_secs(55) && wait <= window,
            "the window is full until the oldest leaves it: {wait:?}"
        );
        let old = epoch_ms() - 61_000;
        let third = RatePacer::new(3, window);
        third.adopt(&[old, old, old]).await;
        assert!(third.spent().await.is_empty(), "older than the window");
    }

    /// Requests answered within one millisecond each have their own stamp, so another
    /// pacer adopting them counts every one (once, however often it adopts them).
    ///
    /// Breaking it looks like: a burst counted as fewer requests than it was, so a
    /// process sharing the quota sends past it and is refused.
    #[tokio::test]
    async fn requests_answered_in_one_millisecond_count_one_each() {
        let window = Duration::from_secs(60);
        let first = RatePacer::new(100, window);
        for _ in 0..50 {
            let slot = first.acquire().await;
            first.complete(slot).await;
        }
        let spent = first.spent().await;
        let distinct: std::collections::BTreeSet<u64> = spent.iter().copied().collect();
        assert_eq!(distinct.len(), 50, "{spent:?}");
        assert!(
            spent.iter().all(|at| at.abs_diff(epoch_ms()) < 1_000),
            "stamps stay epoch milliseconds: {spent:?}"
        );
        let second = RatePacer::new(100, window);
        second.adopt(&spent).await;
        second.adopt(&spent).await;
        assert_eq!(second.spent().await.len(), 50);
        let third = RatePacer::new(50, window);
        third.adopt(&spent).await;
        assert!(
            third.wait_for_room().await > Duration::from_secs(55),
            "50 of 50 spent: no room until the first leaves the window"
        );
    }

    /// Each attempt's bound doubles from the base until the cap and stays there; the
    /// backoffs drawn stay within their attempt's bound and reach past the previous
    /// attempt's, so they grow with it.
    ///
    /// Breaking it looks like: a backoff of zero (or stuck at the base), one that grows
    /// past its cap, or a bound that stops doubling before it.
    #[test]
    fn backoff_stays_under_its_cap_and_grows() {
        let policy = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            ..RetryPolicy::default()
        };
        let bounds: Vec<Duration> = (1..40).map(|a| policy.backoff_bound(a)).collect();
        let millis = |n| Duration::from_millis(n);
        assert_eq!(
            bounds[..5],
            [
                millis(100),
                millis(200),
                millis(400),
                millis(800),
                millis(1_000)
            ]
        );
        assert!(
            bounds[4..].iter().all(|b| *b == policy.max_delay),
            "{bounds:?}"
        );
        // Seeded: the draws are the same every run.
        fastrand::seed(27);
        let mut previous = Duration::ZERO;
        for (attempt, bound) in (1..40).zip(bounds) {
            let drawn: Vec<Duration> = (0..200).map(|_| policy.backoff(attempt)).collect();
            let longest = drawn.iter().max().copied().unwrap_or_default();
            assert!(
                longest <= bound,
                "attempt {attempt}: {longest:?} over {bound:?}"
            );
            // Growing, the draws reach past the previous bound; capped, past half the cap.
            let floor = if bound > previous {
                previous.max(bound / 2)
            } else {
                bound / 2
            };
            assert!(
                longest > floor,
                "attempt {attempt}: {longest:?}, never past {floor:?}"
            );
            assert!(
                drawn.iter().all(|d| !d.is_zero()),
                "attempt {attempt}: a zero backoff"
            );
            previous = bound;
        }
    }
}
