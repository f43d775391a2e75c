//! The invocation being served, as the lifecycle learns it from INVOKE events, and the deadline a
//! request gets from it.
//!
//! Lambda delivers an INVOKE to the extension and to the runtime at the same moment, so a handler's
//! first request can arrive before the sidecar has recorded its INVOKE. Such a request must not
//! take the previous invocation's deadline. Two things tell it apart:
//! - the request names its invocation: the thin clients send the runtime's `X-Amzn-Trace-Id`
//!   (`_X_AMZN_TRACE_ID`), and the INVOKE event carries the same trace; a request whose trace is
//!   not the recorded one waits for its INVOKE;
//! - the recorded deadline has passed: that invocation is over, so the request belongs to the
//!   next one, and waits for its INVOKE.
//!
//! The wait is short ([`INVOKE_WAIT`]): the event is already on its way.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

/// The longest a request waits for the INVOKE event of its invocation.
pub const INVOKE_WAIT: Duration = Duration::from_millis(200);

/// One INVOKE event: its deadline and its trace's root id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Invoke {
    deadline_ms: u64,
    trace_root: Option<String>,
}

/// The current invocation. In standalone mode ([`Invocation::default`]) there never is one.
#[derive(Debug)]
pub struct Invocation {
    current: watch::Sender<Option<Invoke>>,
    /// Inside Lambda, where INVOKE events come.
    lambda: bool,
}

impl Default for Invocation {
    fn default() -> Self {
        Self {
            current: watch::channel(None).0,
            lambda: false,
        }
    }
}

impl Invocation {
    /// Inside Lambda: requests are matched with their INVOKE events.
    pub fn lambda() -> Self {
        Self {
            lambda: true,
            ..Self::default()
        }
    }

    /// Records an INVOKE event. `trace` is its tracing value (`Root=1-...;Parent=...`).
    pub fn start(&self, deadline_ms: u64, trace: Option<&str>) {
        self.current.send_replace(Some(Invoke {
            deadline_ms,
            trace_root: trace.and_then(trace_root),
        }));
    }

    /// Whether an invocation is under way (its deadline is still ahead).
    pub fn active(&self) -> bool {
        self.current
            .borrow()
            .as_ref()
            .is_some_and(|i| i.deadline_ms > now_ms())
    }

    /// The deadline of the invocation a request belongs to; `None` outside any invocation
    /// (standalone mode, or a call from the function's init). `trace` is the request's
    /// `X-Amzn-Trace-Id`, if it sent one.
    pub async fn deadline_for(&self, trace: Option<&str>) -> Option<SystemTime> {
        if !self.lambda {
            return None;
        }
        let wanted = trace.and_then(trace_root);
        let belongs = |invoke: &Option<Invoke>| match invoke {
            None => wanted.is_none(),
            Some(invoke) => match &wanted {
                Some(root) => invoke.trace_root.as_ref() == Some(root),
                None => invoke.deadline_ms > now_ms(),
            },
        };
        let mut rx = self.current.subscribe();
        let invoke = if belongs(&rx.borrow()) {
            rx.borrow().clone()
        } else {
            match tokio::time::timeout(INVOKE_WAIT, rx.wait_for(belongs)).await {
                Ok(Ok(invoke)) => invoke.clone(),
                // Its INVOKE never came: only the sidecar's own limits bound the request.
                _ => None,
            }
        };
        invoke.map(|i| UNIX_EPOCH + Duration::from_millis(i.deadline_ms))
    }
}

/// `Root=1-5759e988-bd862e3fe1be46a994272793` out of an X-Ray trace header.
fn trace_root(header: &str) -> Option<String> {
    header
        .split(';')
        .map(str::trim)
        .find_map(|part| part.strip_prefix("Root="))
        .filter(|root| !root.is_empty())
        .map(str::to_owned)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn in_ms(ms: u64) -> u64 {
        now_ms() + ms
    }

    fn ms_from_now(deadline: Option<SystemTime>) -> Option<i64> {
        deadline.map(|d| match d.duration_since(SystemTime::now()) {
            Ok(ahead) => ahead.as_millis() as i64,
            Err(behind) => -(behind.duration().as_millis() as i64),
        })
    }

    #[tokio::test]
    async fn outside_any_invocation_there_is_no_deadline() {
        let invocation = Invocation::lambda();
        assert_eq!(invocation.deadline_for(None).await, None);
        assert!(!invocation.active());
        let standalone = Invocation::default();
        let started = std::time::Instant::now();
        assert_eq!(standalone.deadline_for(Some("Root=1-x")).await, None);
        assert!(started.elapsed() < INVOKE_WAIT);
    }

    #[tokio::test]
    async fn a_request_of_the_current_invocation_gets_its_deadline() {
        let invocation = Invocation::lambda();
        invocation.start(in_ms(3000), Some("Root=1-a-b;Parent=c;Sampled=0"));
        let left = ms_from_now(invocation.deadline_for(Some("Root=1-a-b;Sampled=0")).await);
        assert!(
            left.is_some_and(|ms| (2500..=3000).contains(&ms)),
            "{left:?}"
        );
        let left = ms_from_now(invocation.deadline_for(None).await);
        assert!(left.is_some_and(|ms| ms > 2500), "{left:?}");
    }

    #[tokio::test]
    async fn a_request_that_arrives_before_its_invoke_waits_for_it() {
        let invocation = Arc::new(Invocation::lambda());
        // The previous invocation still has 100 ms of its deadline left.
        invocation.start(in_ms(100), Some("Root=1-previous"));
        let recorder = Arc::clone(&invocation);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            recorder.start(in_ms(10_000), Some("Root=1-next;Parent=x"));
        });
        let left = ms_from_now(invocation.deadline_for(Some("Root=1-next")).await);
        assert!(
            left.is_some_and(|ms| ms > 9000),
            "took the previous deadline: {left:?}"
        );
    }

    #[tokio::test]
    async fn a_request_after_the_recorded_deadline_waits_for_the_next_invoke() {
        let invocation = Arc::new(Invocation::lambda());
        invocation.start(now_ms().saturating_sub(5), None);
        let recorder = Arc::clone(&invocation);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            recorder.start(in_ms(2000), None);
        });
        let left = ms_from_now(invocation.deadline_for(None).await);
        assert!(left.is_some_and(|ms| ms > 1500), "{left:?}");
    }

    #[tokio::test]
    async fn an_invoke_that_never_comes_leaves_the_request_to_the_sidecars_own_limits() {
        let invocation = Invocation::lambda();
        invocation.start(now_ms().saturating_sub(5), None);
        let started = std::time::Instant::now();
        assert_eq!(invocation.deadline_for(None).await, None);
        assert!(started.elapsed() >= INVOKE_WAIT);
    }
}
