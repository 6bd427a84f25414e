//! Group commit: concurrent requests that each need a durable write hand their
//! work to one worker, which commits whatever is waiting in one transaction and
//! one fsync instead of one each. Under load many requests share a commit;
//! alone, a request waits for nothing.

use std::future::Future;
use std::sync::{Arc, OnceLock};

use tokio::sync::{mpsc, oneshot};

use crate::{Store, StoreError};

/// Work that can be committed together with other work of its kind.
pub(crate) trait Grouped: Send + Sized + 'static {
    /// What one piece of work answers.
    type Out: Send + 'static;
    /// The most pieces one commit takes.
    const MAX: usize;
    /// How much a piece weighs towards `MAX` (events: the batch's length).
    fn weight(&self) -> usize {
        1
    }
    /// Commits `jobs` in one transaction; one answer per job, in order.
    fn commit(
        store: &Store,
        jobs: &[Self],
    ) -> impl Future<Output = Result<Vec<Self::Out>, StoreError>> + Send;
}

type Pending<J> = (J, oneshot::Sender<Result<<J as Grouped>::Out, StoreError>>);

/// The queue of one kind of work, its worker started on first use.
pub(crate) struct Queue<J: Grouped>(Arc<OnceLock<mpsc::UnboundedSender<Pending<J>>>>);

impl<J: Grouped> Clone for Queue<J> {
    fn clone(&self) -> Self {
        Queue(Arc::clone(&self.0))
    }
}

impl<J: Grouped> Default for Queue<J> {
    fn default() -> Self {
        Queue(Arc::default())
    }
}

impl<J: Grouped> Queue<J> {
    /// Queues `job` for the next commit and waits for its answer, which comes
    /// only after the commit that holds it.
    pub(crate) async fn submit(&self, store: &Store, job: J) -> Result<J::Out, StoreError> {
        let sender = self.0.get_or_init(|| {
            let (sender, receiver) = mpsc::unbounded_channel();
            tokio::spawn(worker(store.clone(), receiver));
            sender
        });
        let (reply, answer) = oneshot::channel();
        let stopped = || StoreError::Unavailable(sqlx::Error::PoolClosed);
        sender.send((job, reply)).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn worker<J: Grouped>(store: Store, mut queue: mpsc::UnboundedReceiver<Pending<J>>) {
    while let Some(first) = queue.recv().await {
        let mut weight = first.0.weight();
        let mut batch = vec![first];
        while weight < J::MAX {
            match queue.try_recv() {
                Ok(pending) => {
                    weight += pending.0.weight();
                    batch.push(pending);
                }
                Err(_) => break,
            }
        }
        let (jobs, replies): (Vec<J>, Vec<_>) = batch.into_iter().unzip();
        match J::commit(&store, &jobs).await {
            Ok(outcomes) => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(error) => {
                let unavailable = matches!(error, StoreError::Unavailable(_));
                let message = error.to_string();
                for reply in replies {
                    let shared = if unavailable {
                        StoreError::Unavailable(sqlx::Error::PoolTimedOut)
                    } else {
                        StoreError::Database(sqlx::Error::Protocol(message.clone()))
                    };
                    let _ = reply.send(Err(shared));
                }
            }
        }
    }
}
