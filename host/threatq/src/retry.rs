//! Retrying transient failures with exponential backoff and full jitter.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use rand::Rng;

/// Errors that can say whether trying again later might succeed.
pub trait Transient {
    fn is_transient(&self) -> bool;
}

/// How often and how patiently to retry a transient failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (0 is taken as 1).
    pub max_attempts: u32,
    /// Cap of the first backoff; each later cap doubles.
    pub base_delay: Duration,
    /// No backoff is longer than this.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Runs `op` until it succeeds, fails with an error that is not
    /// transient, or has been tried `max_attempts` times; returns the last
    /// result. `what` names the operation in the retry warnings.
    pub async fn run<T, E, F, Fut>(&self, what: &str, mut op: F) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Transient + Display,
    {
        let attempts = self.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            match op().await {
                Err(error) if error.is_transient() && attempt < attempts => {
                    let delay = self.backoff(attempt);
                    tracing::warn!(
                        "{what}: attempt {attempt} of {attempts} failed ({error}); retrying in {} ms",
                        delay.as_millis()
                    );
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                outcome => return outcome,
            }
        }
    }

    /// The pause after failed attempt `attempt` (1-based): uniform in
    /// `[0, min(max_delay, base_delay * 2^(attempt-1))]`. Full jitter keeps
    /// many clients that failed together from retrying together.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let doubling = 2u32.saturating_pow(attempt.saturating_sub(1));
        let cap = self.base_delay.saturating_mul(doubling).min(self.max_delay);
        let cap_nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rand::rng().random_range(0..=cap_nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[derive(Debug)]
    struct Failure {
        transient: bool,
    }

    impl Transient for Failure {
        fn is_transient(&self) -> bool {
            self.transient
        }
    }

    impl Display for Failure {
        fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(formatter, "transient={}", self.transient)
        }
    }

    fn quick(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        }
    }

    #[tokio::test]
    async fn transient_failures_are_retried_until_success() {
        let calls = Cell::new(0);
        let outcome = quick(5)
            .run("test", || {
                calls.set(calls.get() + 1);
                let call = calls.get();
                async move {
                    if call < 3 {
                        Err(Failure { transient: true })
                    } else {
                        Ok(call)
                    }
                }
            })
            .await;
        assert_eq!(outcome.unwrap(), 3);
    }

    #[tokio::test]
    async fn retries_stop_after_max_attempts_with_the_last_error() {
        let calls = Cell::new(0);
        let outcome: Result<(), Failure> = quick(4)
            .run("test", || {
                calls.set(calls.get() + 1);
                async { Err(Failure { transient: true }) }
            })
            .await;
        assert!(outcome.is_err());
        assert_eq!(calls.get(), 4);
    }

    #[tokio::test]
    async fn permanent_failures_are_not_retried() {
        let calls = Cell::new(0);
        let outcome: Result<(), Failure> = quick(5)
            .run("test", || {
                calls.set(calls.get() + 1);
                async { Err(Failure { transient: false }) }
            })
            .await;
        assert!(outcome.is_err());
        assert_eq!(calls.get(), 1);
    }

    #[test]
    fn backoff_stays_under_the_doubling_cap_and_the_maximum() {
        let policy = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
        };
        for _ in 0..200 {
            assert!(policy.backoff(1) <= Duration::from_millis(100));
            assert!(policy.backoff(3) <= Duration::from_millis(400));
            assert!(policy.backoff(40) <= Duration::from_millis(1000));
        }
    }
}
