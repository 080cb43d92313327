//! `broadcast` and `spawn_broadcast`: running a closure once on every
//! active worker, as rayon's functions of the same names.
//!
//! # Inboxes
//!
//! Each core worker has an *inbox* of broadcast shares. A broadcast posts
//! one share to the inbox of every worker below the active count (read
//! once, when it starts), then wakes them: the idle ones (`Sleep::wake_all`),
//! the retired ones (the resize condition variable) and the ones parked in
//! a wait inside a task (their wait parkers). A worker runs the shares of
//! its inbox
//!
//! * at the top of its main loop, so a worker busy in a long task runs its
//!   share when that task returns;
//! * in the re-check before it parks (the post happens before the wake-up,
//!   and both sides go through the sleepers' lock, so either the wake-up
//!   finds the worker registered or its re-check finds the share);
//! * before it waits retired, and when it exits (the inbox closes then:
//!   a share posted to a closed inbox runs on the broadcaster's thread);
//! * before a blocking wait (`WorkerContext::block`: a `JoinHandle::join`,
//!   `block_in_place`, `install` into another pool). The inbox is marked
//!   *away* until the wait ends, and a share posted to an away inbox runs
//!   on the broadcaster's thread, as for a closed one: the worker runs
//!   nothing while it waits, and the task it waits for may be the
//!   broadcaster;
//! * inside a wait: a `join` or `scope` waiting for a stolen piece, a
//!   broadcast waiting for the other shares. Without that, a broadcast
//!   made from a piece that another worker waits for (`pool.join(|| ..,
//!   || pool.broadcast(..))`) could never finish. Why the wait protocol
//!   allows it is in `docs/fork-join.md`, "Broadcast".
//!
//! A broadcast never takes a slot of the bound and is never refused: it is
//! internal work, like a task's children.
//!
//! # Waiting
//!
//! The broadcaster runs its own share itself if it is one of the targets,
//! and never waits for it. It then waits for the count of shares left to
//! fall to zero: on a worker (of any pool) it blocks with
//! `WorkerContext::block`, so a spare keeps the pool's parallelism, parks on
//! its wait parker, and runs the shares posted to its own inbox meanwhile
//! (two workers broadcasting at once each wait for the other's share);
//! elsewhere it parks on a parker of the broadcast's own.

use std::any::Any;
use std::marker::PhantomData;
use std::ops::Deref;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

// Shares are `std`'s `Arc`s even under loom: loom's cannot hold a `dyn`,
// and broadcasts are not modeled (`WorkerContext::broadcast_pending`).
use std::sync::Arc as ShareArc;

use crate::registry::{drop_payload, RunShare, Share, Shared};
use crate::sync::{lock, Arc, AtomicUsize, Mutex, Ordering, Parker};
use crate::worker::{self, WorkerContext};

/// What a broadcast's closure is told about the worker it runs on: see
/// [`Pool::broadcast`](crate::Pool::broadcast).
///
/// ```
/// let pool = corepool::Pool::builder().workers(3).build()?;
/// let seen = pool.broadcast(|ctx| (ctx.index(), ctx.num_threads()));
/// assert_eq!(seen, [(0, 3), (1, 3), (2, 3)]);
/// # Ok::<(), corepool::BuildError>(())
/// ```
pub struct BroadcastContext<'a> {
    index: usize,
    num_threads: usize,
    /// Tied to the running share, and neither `Send` nor `Sync`, as in
    /// rayon.
    _marker: PhantomData<(&'a (), *mut ())>,
}

impl BroadcastContext<'_> {
    fn new(index: usize, num_threads: usize) -> Self {
        BroadcastContext {
            index,
            num_threads,
            _marker: PhantomData,
        }
    }

    /// The index of the worker running this share: `0..num_threads()`.
    /// `broadcast` returns the results in this order.
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(2).build()?;
    /// assert_eq!(pool.broadcast(|ctx| ctx.index()), [0, 1]);
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn index(&self) -> usize {
        self.index
    }

    /// How many workers take part in this broadcast: the pool's active
    /// workers when it started.
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(2).build()?;
    /// assert_eq!(pool.broadcast(|ctx| ctx.num_threads()), [2, 2]);
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn num_threads(&self) -> usize {
        self.num_threads
    }
}

impl std::fmt::Debug for BroadcastContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BroadcastContext")
            .field("index", &self.index)
            .field("num_threads", &self.num_threads)
            .finish()
    }
}

/// Counts the shares of a broadcast still running, and wakes whoever
/// waits for them.
struct Done {
    remaining: AtomicUsize,
    waiter: Waiter,
}

enum Waiter {
    /// `spawn_broadcast`: nobody waits.
    Nobody,
    /// A thread outside any pool, parked here.
    Thread(Parker),
    /// A worker (of any pool), parked on its wait parker.
    Worker(Arc<Shared>, usize),
}

impl Done {
    fn finish_one(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            match &self.waiter {
                Waiter::Nobody => {}
                Waiter::Thread(parker) => parker.unpark(),
                Waiter::Worker(shared, index) => shared.wait_parkers[*index].unpark(),
            }
        }
    }

    fn finished(&self) -> bool {
        self.remaining.load(Ordering::Acquire) == 0
    }
}

/// Where one share's result, or its panic, waits for the broadcaster.
type ResultSlot<R> = Mutex<Option<std::thread::Result<R>>>;

/// A broadcast: the closure (behind `P`, a reference or a box), and a
/// slot per share for the results when someone waits for them.
struct Job<P, R> {
    op: P,
    num_threads: usize,
    results: Option<Box<[ResultSlot<R>]>>,
    done: ShareArc<Done>,
}

impl<P, OP, R> RunShare for Job<P, R>
where
    P: Deref<Target = OP> + Send + Sync,
    OP: Fn(BroadcastContext<'_>) -> R + ?Sized,
    R: Send,
{
    fn run(self: ShareArc<Self>, index: usize, shared: &Shared) {
        let op = &*self.op;
        let context = BroadcastContext::new(index, self.num_threads);
        let result = catch_unwind(AssertUnwindSafe(|| op(context)));
        match &self.results {
            Some(results) => *lock(&results[index]) = Some(result),
            None => {
                if let Err(payload) = result {
                    shared.report_panic(index, payload);
                }
            }
        }
        // The broadcaster may return (and end what `op` borrows) as soon
        // as the count reaches zero: drop this reference to the job first.
        let done = self.done.clone();
        drop(self);
        done.finish_one();
    }
}

/// Posts `share` to every worker in `0..targets` but `skip`, wakes them,
/// and runs here the shares of workers that have already exited.
fn post(shared: &Shared, targets: usize, skip: Option<usize>, share: &Share) {
    let mut refused = Vec::new();
    for (index, inbox) in shared.inboxes[..targets].iter().enumerate() {
        if Some(index) == skip {
            continue;
        }
        if let Err(share) = inbox.post(share.clone()) {
            refused.push((index, share));
        }
    }
    shared.wake_for_broadcast(targets);
    for (index, share) in refused {
        share.run(index, shared);
    }
}

/// `Pool::broadcast`.
pub(crate) fn broadcast<OP, R>(shared: &Arc<Shared>, op: OP) -> Vec<R>
where
    OP: Fn(BroadcastContext<'_>) -> R + Sync,
    R: Send,
{
    let targets = shared.active_workers();
    let caller = worker::current_any();
    let own = worker::current(shared)
        .map(|worker| worker.index())
        .filter(|&index| index < targets);
    let waiter = match &caller {
        Some(worker) => Waiter::Worker(worker.shared().clone(), worker.index()),
        None => Waiter::Thread(Parker::new()),
    };
    let done = ShareArc::new(Done {
        remaining: AtomicUsize::new(targets),
        waiter,
    });
    let job = ShareArc::new(Job {
        op: &op,
        num_threads: targets,
        results: Some((0..targets).map(|_| Mutex::new(None)).collect()),
        done: done.clone(),
    });
    let share: ShareArc<dyn RunShare + '_> = job.clone();
    // The share borrows `op`, which lives on this frame. This function
    // returns only once `done` counts every share finished, and a share
    // drops its reference to the job before it counts itself (`Job::run`);
    // every share posted runs (on its worker, when that worker exits at the
    // latest, or here), and nothing between the post and the wait below can
    // unwind (the own share catches its panic).
    // SAFETY: so no reference to the job is used after `op`'s borrow ends.
    let share: Share = unsafe { std::mem::transmute::<ShareArc<dyn RunShare + '_>, Share>(share) };
    post(shared, targets, own, &share);
    drop(share);
    if let Some(index) = own {
        // Never waited for: the caller runs its own share.
        job.clone().run(index, shared);
    }
    match caller.as_deref() {
        Some(worker) => wait_on_worker(worker, &done),
        None => {
            if let Waiter::Thread(parker) = &done.waiter {
                while !done.finished() {
                    parker.park();
                }
            }
        }
    }
    let mut first_panic: Option<Box<dyn Any + Send>> = None;
    let mut values = Vec::with_capacity(targets);
    for slot in job.results.iter().flat_map(|results| results.iter()) {
        match lock(slot).take() {
            Some(Ok(value)) => values.push(value),
            Some(Err(payload)) => {
                if first_panic.is_none() {
                    first_panic = Some(payload);
                } else {
                    drop_payload(payload);
                }
            }
            None => unreachable!("every share of a finished broadcast ran"),
        }
    }
    if let Some(payload) = first_panic {
        resume_unwind(payload);
    }
    values
}

/// A worker waits for the shares of its broadcast: blocked, with a spare
/// standing in, running the shares posted to its own inbox meanwhile.
fn wait_on_worker(worker: &WorkerContext, done: &Done) {
    let _blocked = worker.block_running_shares();
    loop {
        if done.finished() {
            return;
        }
        if worker.run_broadcasts_in_wait() {
            continue;
        }
        // `finish_one` and a new share's post both unpark this parker
        // after their change, and the parker keeps the token.
        worker.wait_parker().park();
    }
}

/// `Pool::spawn_broadcast`.
pub(crate) fn spawn_broadcast<OP>(shared: &Arc<Shared>, op: OP)
where
    OP: Fn(BroadcastContext<'_>) + Send + Sync + 'static,
{
    let targets = shared.active_workers();
    let job: Share = ShareArc::new(Job {
        op: Box::new(op),
        num_threads: targets,
        results: None,
        done: ShareArc::new(Done {
            remaining: AtomicUsize::new(targets),
            waiter: Waiter::Nobody,
        }),
    });
    post(shared, targets, None, &job);
}

impl WorkerContext {
    /// Whether a broadcast share waits in this worker's inbox.
    #[inline]
    pub(crate) fn broadcast_pending(&self) -> bool {
        self.shared
            .inboxes
            .get(self.index)
            .is_some_and(|inbox| inbox.is_pending())
    }

    /// Runs every broadcast share in this worker's inbox; returns whether
    /// it ran any. For the main loop (no wait open on this stack).
    pub(crate) fn run_broadcasts(&self) -> bool {
        let Some(inbox) = self.shared.inboxes.get(self.index) else {
            return false;
        };
        let mut ran = false;
        while let Some(share) = inbox.pop() {
            share.run(self.index, &self.shared);
            ran = true;
        }
        ran
    }

    /// Runs the broadcast shares in this worker's inbox from inside a wait
    /// (a `join`, a `scope`, a broadcast, `block_in_place`): in a region of
    /// their own, so that nothing they leave on the deque is taken for the
    /// enclosing region's work; what they leave goes to the injector.
    /// Returns whether it ran any.
    pub(crate) fn run_broadcasts_in_wait(&self) -> bool {
        if !self.broadcast_pending() {
            return false;
        }
        let saved = self.enter_region();
        let ran = self.run_broadcasts();
        // `region_new` counts what the shares pushed and did not pop. It
        // overcounts only if thieves took some of those tasks, and thieves
        // take the oldest first: then nothing older is left below, so the
        // pops below never reach the enclosing region's tasks.
        let mut moved = false;
        for _ in 0..self.region_new.replace(0) {
            match self.local.pop() {
                Some(task) => {
                    self.shared.injector.push(task);
                    moved = true;
                }
                None => break,
            }
        }
        if moved {
            self.shared.sleep.notify_work(|| true);
        }
        self.exit_region(saved);
        ran
    }
}
