//! Reads that many requests ask at once, sent to Postgres as one statement.
//!
//! Every ask that arrives while a batch is in flight joins the next one, so
//! an idle node pays no extra wait (a lone ask goes out at once) and a busy
//! one pays one round trip, one snapshot and one wake-up of the pool per
//! batch instead of per request. Each ask is still answered by a read that
//! started after the ask arrived, so a batch sees whatever had committed
//! when its request came in.

use std::future::Future;
use tokio::sync::{mpsc, oneshot};

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
                for (reply, answer) in replies.into_iter().zip(run(asks).await) {
                    let _ = reply.send(answer);
                }
            }
        });
        Batched { tx }
    }

    /// The answer to `ask`, or `None` when the batching task is gone (or
    /// gave fewer answers than asks).
    pub async fn ask(&self, ask: A) -> Option<R> {
        let (reply, answer) = oneshot::channel();
        self.tx.send((ask, reply)).await.ok()?;
        answer.await.ok()
    }
}
