//! `Inbox`: a core worker's broadcast shares still to run, and `Share`,
//! the broadcast job seen from the worker that runs it.

use std::collections::VecDeque;

use super::Shared;
use crate::sync::{lock, AtomicUsize, Mutex, Ordering};

/// One worker's share of a broadcast, as it waits in an inbox.
pub(crate) type Share = std::sync::Arc<dyn RunShare>;

/// A broadcast job, seen from the worker that runs one share of it.
pub(crate) trait RunShare: Send + Sync {
    /// Runs share `index` and counts it done. `shared` is the pool's, for
    /// the panic handler.
    fn run(self: std::sync::Arc<Self>, index: usize, shared: &Shared);
}

/// A core worker's broadcast shares still to run.
pub(crate) struct Inbox {
    /// How many shares `shares` holds: read without the lock on every
    /// pass of the main loop.
    pending: AtomicUsize,
    shares: Mutex<InboxShares>,
}

struct InboxShares {
    queue: VecDeque<Share>,
    /// The worker has exited: later shares run on their broadcaster.
    closed: bool,
    /// The worker is in a blocking wait (`WorkerContext::block`): later
    /// shares run on their broadcaster, as if it had exited.
    away: bool,
}

impl Default for Inbox {
    fn default() -> Self {
        Inbox {
            pending: AtomicUsize::new(0),
            shares: Mutex::new(InboxShares {
                queue: VecDeque::new(),
                closed: false,
                away: false,
            }),
        }
    }
}

impl Inbox {
    /// Posts `share`; hands it back if the worker has exited or is away.
    pub(crate) fn post(&self, share: Share) -> Result<(), Share> {
        let mut shares = lock(&self.shares);
        if shares.closed || shares.away {
            return Err(share);
        }
        shares.queue.push_back(share);
        self.pending.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    pub(crate) fn is_pending(&self) -> bool {
        self.pending.load(Ordering::SeqCst) != 0
    }

    pub(crate) fn pop(&self) -> Option<Share> {
        let mut shares = lock(&self.shares);
        let share = shares.queue.pop_front();
        if share.is_some() {
            self.pending.fetch_sub(1, Ordering::SeqCst);
        }
        share
    }

    /// Marks the worker away (in a blocking wait) or back; returns whether
    /// it was away before. Shares posted before it went away stay queued:
    /// the worker runs them before it blocks (`WorkerContext::block`).
    pub(crate) fn set_away(&self, away: bool) -> bool {
        std::mem::replace(&mut lock(&self.shares).away, away)
    }

    /// Closes the inbox (its worker exits) and returns what it held.
    pub(crate) fn close(&self) -> Vec<Share> {
        let mut shares = lock(&self.shares);
        shares.closed = true;
        self.pending.store(0, Ordering::SeqCst);
        shares.queue.drain(..).collect()
    }
}
