//! Reads that many requests ask at once, sent to Postgres as one statement.
//!
//! Every ask that arrives while a batch is in flight joins the next one, so
//! an idle node pays no extra wait (a lone ask goes out at once) and a busy
//! one pays one round trip, one snapshot and one wake-up of the pool per
//! batch instead of per request. Each ask is still answered by a read that
//! started after the ask arrived, so a batch sees whatever had committed
//! when its request came in.
//!
//! A batch that outlives [`DEADLINE`] is dropped, with its connection, and
//! its asks get no answer (their callers answer 503): a Postgres that is
//! paused or cut off behind a silent network holds one batch, not every
//! read queued behind it until TCP gives up minutes later.

use std::future::Future;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// How long one batch may take. A batch of 256 index probes takes about a
/// millisecond; this is for a Postgres that does not answer at all.
pub const DEADLINE: Duration = Duration::from_secs(2);

pub struct Batched<A, R> {
    tx: mpsc::Sender<(A, oneshot::Sender<R>)>,
}

impl<A, R> Clone for Batched<A, R> {
    fn clone(&self) -> Self {
        Batched {
            tx: self.tx.clone(),
        }
    }
}

impl<A: Send + 'static, R: Send + 'static> Batched<A, R> {
    /// Spawns the batching task. `run` answers a batch of at most `max`
    /// asks with one answer per ask, in the asks' order.
    pub fn spawn<F, Fut>(max: usize, run: F) -> Batched<A, R>
    where
        F: Fn(Vec<A>) -> Fut + Send + 'static,
        Fut: Future<Output = Vec<R>> + Send,
    {
        let (tx, mut rx) = mpsc::channel::<(A, oneshot::Sender<R>)>(max * 16);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(max);
            while rx.recv_many(&mut batch, max).await > 0 {
                let (asks, replies): (Vec<A>, Vec<_>) = batch.drain(..).unzip();
                let n = asks.len();
                let Ok(answers) = tokio::time::timeout(DEADLINE, run(asks)).await else {
                    tracing::warn!(
                        asks = n,
                        "batched read outlived its deadline; its asks answer 503"
                    );
                    continue;
                };
                for (reply, answer) in replies.into_iter().zip(answers) {
                    let _ = reply.send(answer);
                }
            }
        });
        Batched { tx }
    }

    /// The answer to `ask`, or `None` when the batching task is gone, its
    /// batch outlived [`DEADLINE`] (or it gave fewer answers than asks).
    pub async fn ask(&self, ask: A) -> Option<R> {
        let (reply, answer) = oneshot::channel();
        self.tx.send((ask, reply)).await.ok()?;
        answer.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch that never ends (a Postgres that stopped answering) fails
    /// its own asks at the deadline and holds no later batch behind it.
    #[tokio::test]
    async fn a_batch_past_its_deadline_fails_its_asks_and_the_next_batch_is_answered() {
        let batches = Batched::spawn(4, |asks: Vec<u32>| async move {
            if asks.contains(&0) {
                std::future::pending::<()>().await;
            }
            asks
        });
        let started = tokio::time::Instant::now();
        let stuck = tokio::time::timeout(DEADLINE * 2, batches.ask(0)).await;
        assert_eq!(stuck, Ok(None), "a stuck batch's ask fails at the deadline");
        let took = started.elapsed();
        assert!(took >= DEADLINE && took < DEADLINE * 2, "{took:?}");
        let next = tokio::time::timeout(Duration::from_secs(1), batches.ask(7)).await;
        assert_eq!(next, Ok(Some(7)));
    }
}
