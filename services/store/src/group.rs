//! Group commit: concurrent requests that each need a durable write hand their
//! work to one worker, which commits whatever is waiting in one transaction and
//! one fsync instead of one each. Under load many requests share a commit;
//! alone, a request waits for nothing.
//!
//! Work that can read ahead ([`Grouped::ahead`], events) runs in a pipeline of
//! two tasks: while one group commits, the next is gathered and its reads are
//! done on other connections, so the writer spends its time writing.

use std::future::Future;
use std::sync::{Arc, OnceLock};

use tokio::sync::{mpsc, oneshot};

use crate::error::StoreError;

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
    /// What the worker works with (the store's core, and the feature's own state).
    type Context: Clone + Send + Sync + 'static;
    /// Whether [`Grouped::ahead`] reads anything in `context` (see [`worker`]).
    fn reads_ahead(context: &Self::Context) -> bool;
    /// What is read ahead of the commit, outside its transaction.
    type Ahead: Send + 'static;
    /// Reads ahead for `jobs` while the group before them commits. The commit
    /// must check that what was read still holds, and read again if not.
    fn ahead(context: &Self::Context, jobs: &[Self]) -> impl Future<Output = Self::Ahead> + Send;
    /// Commits `jobs` in one transaction; one answer per job, in order.
    fn commit(
        context: &Self::Context,
        jobs: &[Self],
        ahead: Self::Ahead,
    ) -> impl Future<Output = Result<Vec<Self::Out>, StoreError>> + Send;
}

type Reply<J> = oneshot::Sender<Result<<J as Grouped>::Out, StoreError>>;
type Pending<J> = (J, Reply<J>);
/// A group gathered and read ahead, waiting for the writer.
type Gathered<J> = (Vec<J>, Vec<Reply<J>>, <J as Grouped>::Ahead);

/// The queue of one kind of work, its worker started by [`Queue::start`] or on first use.
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
    pub(crate) async fn submit(&self, context: &J::Context, job: J) -> Result<J::Out, StoreError> {
        let sender = self.sender(context);
        let (reply, answer) = oneshot::channel();
        let stopped = || StoreError::Unavailable(sqlx::Error::PoolClosed);
        sender.send((job, reply)).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

impl<J: Grouped> Queue<J> {
    /// Starts the worker on the current Tokio runtime unless it runs already.
    /// A server starts it on its own runtime (see `Store::start_server_tasks`):
    /// started by the first request instead, it would run on that request's
    /// HTTP worker thread and wait behind the requests there at every step of
    /// every commit.
    pub(crate) fn start(&self, context: &J::Context) {
        self.sender(context);
    }

    fn sender(&self, context: &J::Context) -> &mpsc::UnboundedSender<Pending<J>> {
        self.0.get_or_init(|| {
            let (sender, receiver) = mpsc::unbounded_channel();
            tokio::spawn(worker(context.clone(), receiver));
            sender
        })
    }
}

/// Takes the first waiting job and what else waits, up to [`Grouped::MAX`];
/// `None` once the queue is closed.
async fn gather<J: Grouped>(
    queue: &mut mpsc::UnboundedReceiver<Pending<J>>,
) -> Option<(Vec<J>, Vec<Reply<J>>)> {
    let first = queue.recv().await?;
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
    Some(batch.into_iter().unzip())
}

/// Runs the queue. Work that reads nothing ahead is gathered only once the
/// commit before has ended, so that everything that arrived meanwhile shares
/// the next commit. Work that reads ahead is gathered as soon as the writer
/// takes the group before, and read for while that group commits: at most one
/// group waits for the writer.
async fn worker<J: Grouped>(context: J::Context, mut queue: mpsc::UnboundedReceiver<Pending<J>>) {
    if !J::reads_ahead(&context) {
        while let Some((jobs, replies)) = gather(&mut queue).await {
            let ahead = J::ahead(&context, &jobs).await;
            answer(&context, jobs, replies, ahead).await;
        }
        return;
    }
    let (to_writer, mut for_writer) = mpsc::channel::<Gathered<J>>(1);
    let writer = context.clone();
    tokio::spawn(async move {
        while let Some((jobs, replies, ahead)) = for_writer.recv().await {
            answer(&writer, jobs, replies, ahead).await;
        }
    });
    loop {
        let Ok(slot) = to_writer.reserve().await else {
            return;
        };
        let Some((jobs, replies)) = gather(&mut queue).await else {
            return;
        };
        let ahead = J::ahead(&context, &jobs).await;
        slot.send((jobs, replies, ahead));
    }
}

/// Commits one group and answers its requests.
async fn answer<J: Grouped>(
    context: &J::Context,
    jobs: Vec<J>,
    replies: Vec<Reply<J>>,
    ahead: J::Ahead,
) {
    match J::commit(context, &jobs, ahead).await {
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
