//! `JoinContext`: joins that pass the worker down to the closures, for
//! recursions that join at every node (chili's `Scope::join`, rayon's
//! `join_context`).
//!
//! A join here takes one of two paths (`docs/fork-join.md`, "Fork-join"):
//!
//! - **Plain**, most joins: `a(ctx)`, then `b(ctx)`, as two calls. No frame,
//!   no thread-local, no atomic operation; the one cost is a countdown in
//!   the context. No other worker can ever take such a `b`.
//! - **Framed**, one join in [`FRAME_EVERY`], and every join while this
//!   worker holds fewer than [`KEEP_PRIVATE`] frames that no one else can
//!   see: `crate::join`'s join, whose frame may be offered to thieves
//!   (when the deque is empty, the oldest private frame is offered).
//!
//! So the frames a worker holds are those nearest the root of its
//! recursion, the largest pieces, plus one every `FRAME_EVERY` joins
//! deeper down, and a thief that took the piece on offer finds the next
//! one within `FRAME_EVERY` joins of its victim. This is chili's rule
//! (a port of Spice's heartbeat scheduling) without its heartbeat thread:
//! where chili promotes a frame when a timer fires, corepool offers one
//! whenever the deque is empty, at the next framed join.

use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::global::global;
use crate::job::JobBody;
use crate::join::join_framed;
use crate::registry::drop_payload;
use crate::worker::{self, WorkerContext};

/// One join in this many takes a frame, so that a thief finds a piece on
/// offer within this many joins of its victim (chili's default).
pub(crate) const FRAME_EVERY: u32 = 64;

/// Every join takes a frame while this worker holds fewer private frames
/// than this (chili's rule): the frames nearest the root are the pieces
/// worth offering.
pub(crate) const KEEP_PRIVATE: usize = 3;

/// The worker running a fork-join recursion, handed down to each closure
/// of [`join_context`] and [`JoinContext::join`] (chili's `Scope`).
///
/// Joining through the context costs about a plain function call: most
/// joins run `a` and then `b` right here, with no thread-local lookup, no
/// queue and no atomic operation, and only a few keep `b` where another
/// worker can take it (the ones nearest the root of the recursion, and
/// one join in 64 below them). That suits a recursion that joins at
/// every node down to tiny leaves. For a few coarse joins, a chain of
/// joins or work of uneven size, use [`join`](crate::join), which lets
/// every `b` be taken.
///
/// A context belongs to its thread: it is neither `Send` nor `Sync`. A
/// closure that another worker takes gets that worker's context.
///
/// ```compile_fail
/// fn needs_send<T: Send>(_: T) {}
/// corepool::join_context(|ctx| needs_send(ctx), |_| ());
/// ```
///
/// ```
/// use corepool::JoinContext;
///
/// fn sum(v: &[u64], ctx: &mut JoinContext<'_>) -> u64 {
///     if v.len() <= 1 {
///         return v.iter().sum();
///     }
///     let (left, right) = v.split_at(v.len() / 2);
///     let (l, r) = ctx.join(|ctx| sum(left, ctx), |ctx| sum(right, ctx));
///     l + r
/// }
///
/// let v: Vec<u64> = (1..=1000).collect();
/// let pool = corepool::Pool::builder().workers(2).build()?;
/// let (total, ()) = pool.install(|| corepool::join_context(|ctx| sum(&v, ctx), |_| ()));
/// assert_eq!(total, 500_500);
/// # Ok::<(), corepool::BuildError>(())
/// ```
pub struct JoinContext<'w> {
    /// The worker, or `None` where there is none (then every join is plain).
    worker: Option<&'w WorkerContext>,
    /// Plain joins left before the next framed one.
    countdown: u32,
    /// Not `Send`, not `Sync`, whatever `WorkerContext` is: the context
    /// is this thread's.
    _thread: PhantomData<*const ()>,
}

impl std::fmt::Debug for JoinContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinContext")
            .field("worker", &self.worker.map(WorkerContext::index))
            .finish_non_exhaustive()
    }
}

/// Runs `a` and `b`, potentially in parallel, each with the context of
/// the worker that runs it, and returns both results: [`join`](crate::join)
/// for closures that go on joining through [`JoinContext::join`]
/// (`rayon::join_context`).
///
/// Like `join`, on a worker thread (of any corepool pool) it joins on that
/// worker, and on any other thread it runs on the global pool while the
/// caller blocks. If either closure panics, the panic is re-raised after
/// both have finished (the first closure's panic wins if both panic).
///
/// ```
/// fn fib(n: u64, ctx: &mut corepool::JoinContext<'_>) -> u64 {
///     if n < 2 {
///         return n;
///     }
///     let (a, b) = ctx.join(|ctx| fib(n - 1, ctx), |ctx| fib(n - 2, ctx));
///     a + b
/// }
/// let pool = corepool::Pool::builder().workers(2).build()?;
/// let (a, b) = pool.install(|| corepool::join_context(|ctx| fib(20, ctx), |ctx| fib(19, ctx)));
/// assert_eq!(a + b, 10_946);
/// // Not on a worker: the global pool runs it.
/// assert_eq!(corepool::join_context(|ctx| fib(10, ctx), |_| 1), (55, 1));
/// # Ok::<(), corepool::BuildError>(())
/// ```
pub fn join_context<A, B, RA, RB>(a: A, b: B) -> (RA, RB)
where
    A: FnOnce(&mut JoinContext<'_>) -> RA + Send,
    B: FnOnce(&mut JoinContext<'_>) -> RB + Send,
    RA: Send,
    RB: Send,
{
    let off_worker = worker::with_current(|current| match current {
        Some(worker) => Ok(JoinContext::new(Some(worker)).join(a, b)),
        None => Err((a, b)),
    });
    match off_worker {
        Ok(results) => results,
        Err((a, b)) => global().install(|| join_context(a, b)),
    }
}

impl<'w> JoinContext<'w> {
    /// A context whose first join takes a frame.
    fn new(worker: Option<&'w WorkerContext>) -> Self {
        JoinContext {
            worker,
            countdown: 0,
            _thread: PhantomData,
        }
    }

    /// Runs `a` and `b`, potentially in parallel, and returns both
    /// results; each closure gets the context to join further
    /// (chili's `Scope::join`).
    ///
    /// `a` runs on this thread. `b` runs after it, on this thread, unless
    /// another worker took it meanwhile; only a few joins let it (see
    /// [`JoinContext`]). If either closure panics, the panic is re-raised
    /// after both have finished (the first closure's panic wins if both
    /// panic). As with [`join`](crate::join), `a` must not wait for `b` by
    /// blocking: `b` may run after `a`, on the same thread.
    ///
    /// ```
    /// use corepool::JoinContext;
    ///
    /// struct Node {
    ///     value: u64,
    ///     left: Option<Box<Node>>,
    ///     right: Option<Box<Node>>,
    /// }
    ///
    /// fn tree(depth: u32) -> Option<Box<Node>> {
    ///     (depth > 0).then(|| {
    ///         Box::new(Node { value: 1, left: tree(depth - 1), right: tree(depth - 1) })
    ///     })
    /// }
    ///
    /// fn sum(node: &Option<Box<Node>>, ctx: &mut JoinContext<'_>) -> u64 {
    ///     match node {
    ///         None => 0,
    ///         Some(n) => {
    ///             let (l, r) = ctx.join(|ctx| sum(&n.left, ctx), |ctx| sum(&n.right, ctx));
    ///             n.value + l + r
    ///         }
    ///     }
    /// }
    ///
    /// let root = tree(12);
    /// let pool = corepool::Pool::builder().workers(2).build()?;
    /// let (total, ()) = pool.install(|| corepool::join_context(|ctx| sum(&root, ctx), |_| ()));
    /// assert_eq!(total, 4095);
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    // Not inlined into its caller: the closures are inlined into it
    // instead, so a recursion through it becomes `join` calling itself,
    // with the closures' own early returns (a leaf's) made before the
    // call rather than inside it: on a tree, one call fewer per empty
    // child (docs/benchmarks.md, "fork-join").
    #[inline(never)]
    pub fn join<A, B, RA, RB>(&mut self, a: A, b: B) -> (RA, RB)
    where
        A: FnOnce(&mut JoinContext<'_>) -> RA + Send,
        B: FnOnce(&mut JoinContext<'_>) -> RB + Send,
        RA: Send,
        RB: Send,
    {
        if self.countdown == 0 {
            return self.join_framed(a, b);
        }
        self.countdown -= 1;
        let this: *mut Self = self;
        // Runs `b` if `a` unwinds, so that both have run before the panic
        // goes on up; `b`'s own panic is dropped (the first one wins).
        let guard = RunOnUnwind {
            b: ManuallyDrop::new(b),
            ctx: this,
            _result: PhantomData,
        };
        // SAFETY: `this` is `self`, which outlives this call; `a`'s
        // reborrow ends before anything else uses it.
        let ra = a(unsafe { &mut *this });
        let guard = ManuallyDrop::new(guard);
        // SAFETY: `guard` is never dropped, so `b` is read out of it once.
        let b = unsafe { std::ptr::read(&*guard.b) };
        let rb = b(self);
        (ra, rb)
    }

    /// A join with a frame (`crate::join`), after which the countdown
    /// starts again.
    #[inline(never)]
    fn join_framed<A, B, RA, RB>(&mut self, a: A, b: B) -> (RA, RB)
    where
        A: FnOnce(&mut JoinContext<'_>) -> RA + Send,
        B: FnOnce(&mut JoinContext<'_>) -> RB + Send,
        RA: Send,
        RB: Send,
    {
        let Some(worker) = self.worker else {
            // No worker to offer `b` to: plain joins from now on.
            self.countdown = u32::MAX;
            return self.join(a, b);
        };
        let this: *mut Self = self;
        let results = join_framed(
            worker,
            || {
                // SAFETY: `this` is `self`, which outlives `join_framed`;
                // `a` and then `b` (below) use it one after the other,
                // never both at once.
                let ctx = unsafe { &mut *this };
                ctx.reset_countdown(worker);
                a(ctx)
            },
            WithContext(b),
            |b| {
                // SAFETY: as above; `a` has returned.
                let ctx = unsafe { &mut *this };
                ctx.reset_countdown(worker);
                (b.0)(ctx)
            },
        );
        self.reset_countdown(worker);
        results
    }

    /// Frames every join while the worker holds few private frames, one
    /// in `FRAME_EVERY` otherwise.
    #[inline]
    fn reset_countdown(&mut self, worker: &WorkerContext) {
        self.countdown = if worker.private_frames() < KEEP_PRIVATE {
            0
        } else {
            FRAME_EVERY - 1
        };
    }
}

/// A join's second closure in its frame: whoever takes it runs it with
/// the context of the worker it runs on.
struct WithContext<B>(B);

impl<B, RB> JobBody<RB> for WithContext<B>
where
    B: FnOnce(&mut JoinContext<'_>) -> RB + Send,
{
    fn run(self) -> RB {
        worker::with_current(|current| (self.0)(&mut JoinContext::new(current)))
    }
}

/// Runs a plain join's `b` if `a` unwinds (see `JoinContext::join`).
struct RunOnUnwind<'w, B, RB>
where
    B: FnOnce(&mut JoinContext<'_>) -> RB,
{
    b: ManuallyDrop<B>,
    ctx: *mut JoinContext<'w>,
    _result: PhantomData<fn() -> RB>,
}

impl<B, RB> Drop for RunOnUnwind<'_, B, RB>
where
    B: FnOnce(&mut JoinContext<'_>) -> RB,
{
    fn drop(&mut self) {
        // SAFETY: the guard drops only while `a` unwinds (otherwise it is
        // forgotten), so `b` was not taken; it is taken once, here.
        let b = unsafe { ManuallyDrop::take(&mut self.b) };
        // SAFETY: `ctx` outlives the guard, and `a`, which borrowed it,
        // is unwinding.
        let ctx = unsafe { &mut *self.ctx };
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| b(ctx))) {
            drop_payload(payload);
        }
    }
}
