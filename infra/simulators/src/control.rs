//! What tests and benchmarks steer and read on a running simulator: injected faults and
//! per-endpoint request counters. Reached through the in-process handle only, never over
//! HTTP, so the simulators serve no endpoint the real APIs lack.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// A fault to answer a request with instead of serving it.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub status: u16,
    /// `Retry-After` seconds, for 429.
    pub retry_after: Option<u64>,
    /// Only requests whose endpoint key (`GET /system/locations`) starts with this.
    pub endpoint: Option<String>,
    /// Matching requests let through before this fault answers one.
    pub after: usize,
}

/// How an answer to a write ConnectWise has already saved gets lost on its way back, as
/// it does behind a cloud tenant's gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LostAnswer {
    /// Saved, then the gateway answers 502 with an HTML page.
    BadGateway,
    /// Saved, then the connection drops while the answer is on its way.
    DropConnection,
    /// Saved, then the answer comes this late (past the client's timeout).
    Late(Duration),
}

impl std::str::FromStr for LostAnswer {
    type Err = String;

    /// `502-after-save`, `drop-after-save`, `timeout-after-save` (answers after 90 s) or
    /// `timeout-after-save=SECONDS`.
    fn from_str(text: &str) -> Result<Self, String> {
        match text.split_once('=') {
            None if text == "502-after-save" => Ok(Self::BadGateway),
            None if text == "drop-after-save" => Ok(Self::DropConnection),
            None if text == "timeout-after-save" => Ok(Self::Late(Duration::from_secs(90))),
            Some(("timeout-after-save", seconds)) => seconds
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(|s| Self::Late(Duration::from_secs_f64(s)))
                .ok_or_else(|| format!("`{seconds}` is not a number of seconds")),
            _ => Err(format!(
                "`{text}`: use 502-after-save, drop-after-save or timeout-after-save[=SECONDS]"
            )),
        }
    }
}

/// Which writes lose their answers, and how: `KIND:N,KIND:N` (every Nth write loses
/// its answer that way), as `lscw simulate connectwise --faults` takes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostAnswerRules(pub Vec<(LostAnswer, u64)>);

impl std::str::FromStr for LostAnswerRules {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        parse_lost_answers(text).map(Self)
    }
}

fn parse_lost_answers(text: &str) -> Result<Vec<(LostAnswer, u64)>, String> {
    text.split(',')
        .filter(|rule| !rule.trim().is_empty())
        .map(|rule| {
            let (kind, every) = rule
                .trim()
                .rsplit_once(':')
                .ok_or_else(|| format!("`{rule}` is not KIND:N"))?;
            let every: u64 = every
                .parse()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| format!("`{rule}`: N must be a whole number from 1"))?;
            Ok((kind.parse()?, every))
        })
        .collect()
}

/// One request as it arrived: what the contract tests hold against what the vendor
/// publishes.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub method: String,
    /// The path after the API's base (`/company/configurations/bulk`, `/api/v2/graphql`).
    pub path: String,
    /// The query parameters, decoded.
    pub query: Vec<(String, String)>,
    /// The body, when it is JSON.
    pub body: Option<serde_json::Value>,
}

#[derive(Debug, Default)]
struct ControlState {
    /// Every request since [`Control::record_requests`] turned recording on.
    seen: Option<Vec<Seen>>,
    faults: VecDeque<Fault>,
    latency: Duration,
    /// Item name → how many more times a bulk write of it fails.
    failing_items: HashMap<String, u32>,
    requests: BTreeMap<String, u64>,
    in_flight: usize,
    max_in_flight: usize,
    /// Writes whose answer is lost: (how, every how many writes).
    lost_answers: Vec<(LostAnswer, u64)>,
    /// Only writes to paths that start with this meet the rules.
    lost_answers_to: String,
    /// Writes counted since the rules were set.
    writes_seen: u64,
    /// Answers each rule lost since the rules were set, in the rules' order.
    answers_lost: Vec<u64>,
    /// Answers lost since the rules were set, per endpoint key.
    lost_at: BTreeMap<String, u64>,
    /// Requests refused (a 4xx answer) per endpoint key; items of a bulk write refused
    /// inside its answer under `KEY (item)`.
    refused: BTreeMap<String, u64>,
    /// Forward-only pages after the first come without their `Link` header.
    cut_listings: bool,
    /// Endpoints (key prefixes) that ignore `pagination-type: forward-only`.
    numbered_only: Vec<String>,
}

/// Shared between a simulator and whoever started it.
#[derive(Debug, Clone, Default)]
pub struct Control(Arc<Mutex<ControlState>>);

impl Control {
    fn state(&self) -> MutexGuard<'_, ControlState> {
        // A panicking test thread must not wedge the simulator for the others.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// From now on every request is kept as it arrived (`false`: none, and those kept
    /// are dropped): for the contract tests, never for a long run.
    pub fn record_requests(&self, on: bool) {
        self.state().seen = on.then(Vec::new);
    }

    /// The requests kept since recording began.
    pub fn seen(&self) -> Vec<Seen> {
        self.state().seen.clone().unwrap_or_default()
    }

    /// Keeps a request, when recording.
    pub fn see(&self, request: impl FnOnce() -> Seen) {
        if let Some(seen) = self.state().seen.as_mut() {
            seen.push(request());
        }
    }

    /// The next `times` requests (matching `endpoint`, if given) are answered `status`.
    pub fn fail_next(
        &self,
        times: usize,
        status: u16,
        retry_after: Option<u64>,
        endpoint: Option<&str>,
    ) {
        self.fail_after(0, times, status, retry_after, endpoint);
    }

    /// As [`Control::fail_next`], once `after` matching requests have gone through: a
    /// step of a sequence fails, the steps before it succeed.
    pub fn fail_after(
        &self,
        after: usize,
        times: usize,
        status: u16,
        retry_after: Option<u64>,
        endpoint: Option<&str>,
    ) {
        let mut state = self.state();
        for n in 0..times {
            state.faults.push_back(Fault {
                status,
                retry_after,
                endpoint: endpoint.map(str::to_string),
                after: if n == 0 { after } else { 0 },
            });
        }
    }

    /// Every response is delayed by this much.
    pub fn set_latency(&self, latency: Duration) {
        self.state().latency = latency;
    }

    pub fn latency(&self) -> Duration {
        self.state().latency
    }

    /// A bulk write of the item with this name fails the next `times` times.
    pub fn fail_item(&self, name: &str, times: u32) {
        self.state().failing_items.insert(name.to_string(), times);
    }

    /// Consumes one failure of the named item, if one is pending.
    pub fn take_item_failure(&self, name: &str) -> bool {
        let mut state = self.state();
        match state.failing_items.get_mut(name) {
            Some(left) if *left > 0 => {
                *left -= 1;
                true
            }
            _ => false,
        }
    }

    /// Counts the request and hands back the fault it gets, if any.
    pub fn on_request(&self, endpoint: &str) -> Option<Fault> {
        let mut state = self.state();
        *state.requests.entry(endpoint.to_string()).or_default() += 1;
        let position = state.faults.iter().position(|fault| {
            fault
                .endpoint
                .as_deref()
                .is_none_or(|prefix| endpoint.starts_with(prefix))
        })?;
        if state.faults[position].after > 0 {
            state.faults[position].after -= 1;
            return None;
        }
        state.faults.remove(position)
    }

    /// From now on every `every`th write is saved and then loses its answer `how`; with
    /// several rules, the first whose turn it is applies. The counts of
    /// [`Control::answers_lost`] and [`Control::writes_seen`] start again.
    pub fn lose_answers(&self, rules: &[(LostAnswer, u64)]) {
        self.lose_answers_to("/", rules);
    }

    /// As [`Control::lose_answers`], counting only writes to paths that start with
    /// `path_prefix` (`/company/configurations`); other writes keep their answers.
    pub fn lose_answers_to(&self, path_prefix: &str, rules: &[(LostAnswer, u64)]) {
        let mut state = self.state();
        state.lost_answers = rules.to_vec();
        state.lost_answers_to = path_prefix.to_string();
        state.writes_seen = 0;
        state.answers_lost = vec![0; rules.len()];
        state.lost_at.clear();
    }

    /// Counts a saved write to `endpoint` (its key) and says whether, and how, its
    /// answer is lost.
    pub fn lost_answer(&self, endpoint: &str) -> Option<LostAnswer> {
        let mut state = self.state();
        let path = endpoint.split_once(' ').map_or(endpoint, |(_, path)| path);
        if state.lost_answers.is_empty() || !path.starts_with(&state.lost_answers_to) {
            return None;
        }
        state.writes_seen += 1;
        let seen = state.writes_seen;
        let rule = state
            .lost_answers
            .iter()
            .position(|(_, every)| seen.is_multiple_of(*every))?;
        state.answers_lost[rule] += 1;
        *state.lost_at.entry(endpoint.to_string()).or_default() += 1;
        Some(state.lost_answers[rule].0)
    }

    /// How many answers each rule of [`Control::lose_answers`] lost since it was set:
    /// (how, every how many writes, answers lost), in the rules' order.
    pub fn answers_lost(&self) -> Vec<(LostAnswer, u64, u64)> {
        let state = self.state();
        state
            .lost_answers
            .iter()
            .zip(&state.answers_lost)
            .map(|(&(how, every), &lost)| (how, every, lost))
            .collect()
    }

    /// Answers lost since the rules were set to writes whose endpoint key starts with
    /// `prefix` (`"POST /company/configurations/bulk"`).
    pub fn answers_lost_at(&self, prefix: &str) -> u64 {
        self.state()
            .lost_at
            .iter()
            .filter(|(key, _)| key.starts_with(prefix))
            .map(|(_, n)| n)
            .sum()
    }

    /// Writes saved since the rules of [`Control::lose_answers`] were set that met them
    /// (each one whose answer could have been lost).
    pub fn writes_seen(&self) -> u64 {
        self.state().writes_seen
    }

    /// Records the answer a request got: a 4xx is a refusal.
    pub fn on_answer(&self, endpoint: &str, status: u16) {
        if (400..500).contains(&status) {
            *self
                .state()
                .refused
                .entry(endpoint.to_string())
                .or_default() += 1;
        }
    }

    /// Records an item of a bulk write refused (4xx) inside the bulk answer.
    pub fn on_item_answer(&self, endpoint: &str, status: u16) {
        self.on_answer(&format!("{endpoint} (item)"), status);
    }

    /// Requests refused with a 4xx, per endpoint key (bulk items refused inside their
    /// answer under `KEY (item)`).
    pub fn refusals(&self) -> BTreeMap<String, u64> {
        self.state().refused.clone()
    }

    /// Requests (and bulk items) refused with a 4xx, in all.
    pub fn refused(&self) -> u64 {
        self.state().refused.values().sum()
    }

    /// Forward-only listings lose their `Link` header after the first page (`true`), as a
    /// misbehaving proxy would; or are whole again (`false`).
    pub fn cut_listings(&self, cut: bool) {
        self.state().cut_listings = cut;
    }

    pub fn listings_cut(&self) -> bool {
        self.state().cut_listings
    }

    /// The endpoints whose key starts with `prefix` ignore forward-only paging and answer
    /// numbered pages without a `Link` header, as some of ConnectWise's do.
    pub fn ignore_forward_only(&self, prefix: &str) {
        self.state().numbered_only.push(prefix.to_string());
    }

    pub fn ignores_forward_only(&self, endpoint: &str) -> bool {
        self.state()
            .numbered_only
            .iter()
            .any(|prefix| endpoint.starts_with(prefix))
    }

    /// Marks a request as being served until the guard drops.
    pub fn begin(&self) -> InFlight {
        let mut state = self.state();
        state.in_flight += 1;
        state.max_in_flight = state.max_in_flight.max(state.in_flight);
        InFlight(self.clone())
    }

    /// The most requests ever served at once.
    pub fn max_in_flight(&self) -> usize {
        self.state().max_in_flight
    }

    /// Requests per endpoint key (`METHOD /path/with/{id}`).
    pub fn requests(&self) -> BTreeMap<String, u64> {
        self.state().requests.clone()
    }

    /// Requests to endpoints whose key starts with `prefix` (`"GET "`, `"POST /system"`).
    pub fn count(&self, prefix: &str) -> u64 {
        self.state()
            .requests
            .iter()
            .filter(|(key, _)| key.starts_with(prefix))
            .map(|(_, n)| n)
            .sum()
    }

    /// Requests that change data (anything but GET).
    pub fn writes(&self) -> u64 {
        self.state()
            .requests
            .iter()
            .filter(|(key, _)| !key.starts_with("GET "))
            .map(|(_, n)| n)
            .sum()
    }

    pub fn total(&self) -> u64 {
        self.state().requests.values().sum()
    }

    pub fn reset_counts(&self) {
        let mut state = self.state();
        state.requests.clear();
        state.refused.clear();
        state.max_in_flight = state.in_flight;
    }
}

/// Held while a request is served.
pub struct InFlight(Control);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.state().in_flight -= 1;
    }
}

/// The endpoint key of a path: `METHOD` and its [`path_template`].
pub fn endpoint_key(method: &str, path: &str) -> String {
    format!("{method} {}", path_template(path))
}

/// A path with its numeric segments (record ids) as `{id}`.
pub fn path_template(path: &str) -> String {
    let template: Vec<&str> = path
        .split('/')
        .map(|segment| {
            if !segment.is_empty() && segment.chars().all(|c| c.is_ascii_digit()) {
                "{id}"
            } else {
                segment
            }
        })
        .collect();
    template.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_answers_are_counted_per_rule_and_endpoint_within_their_paths() {
        let control = Control::default();
        control.lose_answers_to(
            "/company/configurations",
            &[(LostAnswer::BadGateway, 2), (LostAnswer::DropConnection, 3)],
        );
        let outcomes: Vec<Option<LostAnswer>> = (0..6)
            .map(|n| {
                control.lost_answer("POST /system/locations");
                control.lost_answer(if n % 2 == 0 {
                    "POST /company/configurations/bulk"
                } else {
                    "PUT /company/configurations/bulk"
                })
            })
            .collect();
        use LostAnswer::{BadGateway as Bad, DropConnection as Drop};
        assert_eq!(
            outcomes,
            [None, Some(Bad), Some(Drop), Some(Bad), None, Some(Bad)]
        );
        assert_eq!(control.writes_seen(), 6, "writes to locations do not count");
        assert_eq!(
            control.answers_lost(),
            [(Bad, 2, 3), (Drop, 3, 1)],
            "the 6th is the first rule's"
        );
        assert_eq!(control.answers_lost_at("POST "), 1);
        assert_eq!(control.answers_lost_at("PUT "), 3);
        control.lose_answers(&[]);
        assert_eq!((control.writes_seen(), control.answers_lost_at("")), (0, 0));
    }

    #[test]
    fn only_4xx_answers_count_as_refused() {
        let control = Control::default();
        for status in [200, 201, 400, 404, 429, 500, 502] {
            control.on_answer("GET /system/locations", status);
        }
        control.on_item_answer("POST /company/configurations/bulk", 400);
        control.on_item_answer("POST /company/configurations/bulk", 500);
        assert_eq!(control.refused(), 4);
        assert_eq!(
            control.refusals(),
            BTreeMap::from([
                ("GET /system/locations".to_string(), 3),
                ("POST /company/configurations/bulk (item)".to_string(), 1),
            ])
        );
        control.reset_counts();
        assert_eq!(control.refused(), 0);
    }
}
