//! `spawn`: a task with a result, delivered through a [`JoinHandle`].
//!
//! The handle and the task share one `Packet`: a small state machine under
//! a mutex (`Pending → Running → Finished`, or `Pending → Finished` when
//! cancelled), a condition variable for blocking joins and a `Waker` slot
//! for `.await`. Exactly one of three things finishes a packet: the task
//! ran (result or panic), its owner cancelled it before it started, or the
//! task was dropped unrun (`shutdown_now` handed it back and the caller
//! dropped it). All three go through `Packet::finish`, which refuses a
//! second finish, so a result is delivered once or not at all.

use std::any::Any;
use std::borrow::Cow;
use std::cell::UnsafeCell;
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use std::sync::atomic::{AtomicUsize as StdAtomicUsize, Ordering as StdOrdering};
use std::sync::Arc as StdArc;

use crate::sync::{lock, wait_deadline, AtomicBool, Condvar, Instant, Mutex, MutexGuard, Ordering};
use crate::sync_wrapper::SyncWrapper;
use crate::task::Claimable;
use crate::worker;

/// Why a spawned task produced no value: it panicked
/// ([`is_panic`](Self::is_panic)) or never ran
/// ([`is_cancelled`](Self::is_cancelled)).
///
/// An opaque struct, shaped like tokio's `JoinError`. It is `Send + Sync`,
/// so `handle.join()?` converts into `Box<dyn Error + Send + Sync>` (or
/// `anyhow::Error`). The panic payload, a `Box<dyn Any + Send>` that is
/// not `Sync`, comes back only by value ([`into_panic`](Self::into_panic));
/// its message, when it is a `&str` or a `String`, is copied out when the
/// task panics, so that `Debug`, `Display` and
/// [`panic_message`](Self::panic_message) can show it.
///
/// ```
/// let pool = corepool::Pool::builder().workers(1).build()?;
/// let handle = pool.spawn(|| -> u32 { panic!("boom") }).unwrap();
/// let err = handle.join().unwrap_err();
/// assert!(err.is_panic());
/// assert_eq!(err.to_string(), "task panicked: boom");
/// assert_eq!(err.into_panic().and_then(|p| p.downcast::<&str>().ok()).map(|s| *s), Some("boom"));
/// # Ok::<(), corepool::BuildError>(())
/// ```
pub struct JoinError {
    repr: Repr,
}

enum Repr {
    /// The task panicked. `message` is the payload's text when it is a
    /// `&str` or a `String`, taken when the error is made; the payload
    /// itself sits in a `SyncWrapper` so that `JoinError` is `Sync`.
    Panicked {
        payload: SyncWrapper<Box<dyn Any + Send + 'static>>,
        message: Option<Cow<'static, str>>,
    },
    /// The task never ran: cancelled by its handle, or handed back by
    /// `shutdown_now` and dropped.
    Cancelled,
}

impl JoinError {
    pub(crate) fn cancelled() -> Self {
        JoinError {
            repr: Repr::Cancelled,
        }
    }

    pub(crate) fn panicked(payload: Box<dyn Any + Send + 'static>) -> Self {
        let message = if let Some(s) = payload.downcast_ref::<&'static str>() {
            Some(Cow::Borrowed(*s))
        } else {
            payload
                .downcast_ref::<String>()
                .map(|s| Cow::Owned(s.clone()))
        };
        JoinError {
            repr: Repr::Panicked {
                payload: SyncWrapper::new(payload),
                message,
            },
        }
    }

    /// Whether the task panicked.
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(1).build()?;
    /// let err = pool.spawn(|| panic!("boom")).unwrap().join().unwrap_err();
    /// assert!(err.is_panic() && !err.is_cancelled());
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, Repr::Panicked { .. })
    }

    /// Whether the task never ran: cancelled before it started (by
    /// [`JoinHandle::cancel`]), or handed back by `shutdown_now` and
    /// dropped.
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(1).build()?;
    /// let (tx, rx) = std::sync::mpsc::channel::<()>();
    /// let blocker = pool.spawn(move || rx.recv().ok()).unwrap(); // occupies the one worker
    /// let queued = pool.spawn(|| "never runs").unwrap();
    /// assert!(queued.cancel());
    /// let err = queued.join().unwrap_err();
    /// assert!(err.is_cancelled() && !err.is_panic());
    /// tx.send(()).unwrap();
    /// blocker.join().unwrap();
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn is_cancelled(&self) -> bool {
        matches!(self.repr, Repr::Cancelled)
    }

    /// The panic payload, to inspect or to re-raise with
    /// `std::panic::resume_unwind`; `None` if the task was cancelled.
    /// (tokio's `into_panic` panics instead; see
    /// [`try_into_panic`](Self::try_into_panic) to keep the error.)
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(1).build()?;
    /// let err = pool.spawn(|| std::panic::panic_any(7u8)).unwrap().join().unwrap_err();
    /// let payload = err.into_panic().expect("it panicked");
    /// assert_eq!(payload.downcast_ref::<u8>(), Some(&7));
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn into_panic(self) -> Option<Box<dyn Any + Send + 'static>> {
        self.try_into_panic().ok()
    }

    /// The panic payload, or the error itself back when the task was
    /// cancelled (as tokio's `JoinError::try_into_panic`).
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(1).build()?;
    /// let err = pool.spawn(|| panic!("boom")).unwrap().join().unwrap_err();
    /// match err.try_into_panic() {
    ///     Ok(payload) => assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom")),
    ///     Err(err) => unreachable!("not a panic: {err}"),
    /// }
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self.repr {
            Repr::Panicked { payload, .. } => Ok(payload.into_inner()),
            Repr::Cancelled => Err(self),
        }
    }

    /// The panic's message, when the task panicked with a `&str` or a
    /// `String` payload (what `panic!` produces); `None` for any other
    /// payload, and when the task was cancelled.
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(1).build()?;
    /// let n = 3;
    /// let err = pool.spawn(move || panic!("bad input {n}")).unwrap().join().unwrap_err();
    /// assert_eq!(err.panic_message(), Some("bad input 3"));
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn panic_message(&self) -> Option<&str> {
        match &self.repr {
            Repr::Panicked { message, .. } => message.as_deref(),
            Repr::Cancelled => None,
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Panicked { message, .. } => match message {
                Some(message) => write!(f, "Panicked({message:?})"),
                None => f.write_str("Panicked(..)"),
            },
            Repr::Cancelled => f.write_str("Cancelled"),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Panicked { message, .. } => match message {
                Some(message) => write!(f, "task panicked: {message}"),
                None => f.write_str("task panicked"),
            },
            Repr::Cancelled => f.write_str("task was cancelled before it started"),
        }
    }
}

impl std::error::Error for JoinError {}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Pending,
    Running,
    Finished,
}

struct State<T> {
    phase: Phase,
    result: Option<Result<T, JoinError>>,
    waker: Option<Waker>,
}

struct Packet<T> {
    state: Mutex<State<T>>,
    finished_cvar: Condvar,
    /// Mirrors `phase == Finished`, so `is_finished` takes no lock.
    finished: AtomicBool,
    /// The pool the task was submitted to (the address of its shared
    /// state): a worker of that pool may run the task itself (`wait`).
    pool: usize,
    /// The thread running the task (`thread_token`), zero before it runs:
    /// a join from inside the task itself is refused, not left to hang.
    runner: StdAtomicUsize,
}

impl<T> Packet<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        lock(&self.state)
    }

    /// `Pending → Running`. `false` when the task was cancelled or claimed
    /// first.
    fn start(&self) -> bool {
        let mut state = self.lock();
        if state.phase != Phase::Pending {
            return false;
        }
        state.phase = Phase::Running;
        true
    }

    /// Delivers `result` unless the packet is already finished. `only_if_pending`
    /// restricts it to a task that never started (cancel, drop unrun).
    fn finish(&self, result: Result<T, JoinError>, only_if_pending: bool) -> bool {
        let waker = {
            let mut state = self.lock();
            if state.phase == Phase::Finished || (only_if_pending && state.phase != Phase::Pending)
            {
                return false;
            }
            state.phase = Phase::Finished;
            state.result = Some(result);
            self.finished.store(true, Ordering::Release);
            self.finished_cvar.notify_all();
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        true
    }
}

/// A spawned task: its packet and its closure, until someone runs it.
struct Spawned<T, F> {
    packet: Packet<T>,
    /// Taken by the thread that moves the packet from `Pending` to
    /// `Running` (`run`), or, once the packet is finished without that,
    /// dropped by the queued task (`discard`): no lock of its own.
    func: UnsafeCell<Option<F>>,
}

// SAFETY: `func` is reached only by the thread that moved the packet to
// `Running` (under its mutex), by the one queued task once the packet is
// `Finished` (after any runner is done with it), or by the drop, which
// owns the value: never by two threads at once, so sharing `&Spawned` is
// sound for any `F: Send`; the packet is `Sync` on its own.
unsafe impl<T: Send, F: Send> Sync for Spawned<T, F> {}

impl<T, F> Spawned<T, F> {
    /// The closure, for the thread that moved the packet to `Running`, or
    /// for the queued task once the packet is `Finished`.
    ///
    /// # Safety
    ///
    /// Only those, as the cell's field documents.
    unsafe fn take_func(&self) -> Option<F> {
        // SAFETY: per the contract, no other thread touches the cell.
        unsafe { (*self.func.get()).take() }
    }
}

/// What a `JoinHandle` needs of its task, whatever the closure's type.
trait Joinable<T>: Send + Sync {
    fn packet(&self) -> &Packet<T>;
    /// Runs the task here if it has not started; whoever calls this first
    /// (the queued task, or a worker that waits for it) runs it.
    fn run(&self);
    /// Cancels the task if it has not started (its queued task drops the
    /// closure when reached or dropped).
    fn cancel(&self) -> bool;
}

impl<T, F> Joinable<T> for Spawned<T, F>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    fn packet(&self) -> &Packet<T> {
        &self.packet
    }

    fn run(&self) {
        if !self.packet.start() {
            return; // cancelled, or run by whoever waits for it
        }
        // SAFETY: `start` moved the packet out of `Pending`: this thread won.
        let Some(func) = (unsafe { self.take_func() }) else {
            return; // unreachable: the closure is there until its winner takes it
        };
        self.packet
            .runner
            .store(crate::sync::thread_token(), StdOrdering::Relaxed);
        let result = catch_unwind(AssertUnwindSafe(func)).map_err(|payload| {
            worker::note_panic();
            JoinError::panicked(payload)
        });
        self.packet.finish(result, false);
    }

    fn cancel(&self) -> bool {
        // The closure stays in place: the queued task drops it (`discard`).
        self.packet.finish(Err(JoinError::cancelled()), true)
    }
}

impl<T, F> Spawned<T, F>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    /// The queued task's end when it does not run the closure (it was
    /// cancelled, or is dropped unrun): cancels it if it is still pending,
    /// and drops the closure if the packet is finished without having run
    /// it. A packet that is `Running` belongs to its runner.
    fn discard(&self) {
        self.cancel();
        if self.packet.lock().phase == Phase::Finished {
            // SAFETY: finished: a runner, if any, is done with the cell,
            // and this is the one queued task.
            drop(unsafe { self.take_func() });
        }
    }
}

/// The task that goes into the queues: one pointer, so it is stored
/// inline. Dropped without running (a `Task` from `shutdown_now` that the
/// caller drops), it cancels the task.
struct Queued<T, F>(Option<StdArc<Spawned<T, F>>>)
where
    F: FnOnce() -> T + Send,
    T: Send;

impl<T, F> Drop for Queued<T, F>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    fn drop(&mut self) {
        if let Some(spawned) = self.0.take() {
            spawned.discard();
        }
    }
}

impl<T, F> Claimable for Queued<T, F>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    fn run(mut self) {
        if let Some(spawned) = self.0.take() {
            spawned.run();
            // Cancelled before it started: the closure is dropped here.
            spawned.discard();
        }
    }

    fn is_spent(&self) -> bool {
        self.0
            .as_ref()
            .is_none_or(|spawned| spawned.packet.lock().phase != Phase::Pending)
    }
}

/// Wraps `f`, submitted to the pool whose shared state is at `pool`, into
/// what goes into the queues (see [`Task::claimable`]), and the handle that
/// receives its result.
pub(crate) fn wrap<F, T>(f: F, pool: usize) -> (impl Claimable + 'static, JoinHandle<T>)
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let spawned = StdArc::new(Spawned {
        packet: Packet {
            state: Mutex::new(State {
                phase: Phase::Pending,
                result: None,
                waker: None,
            }),
            finished_cvar: Condvar::new(),
            finished: AtomicBool::new(false),
            pool,
            runner: StdAtomicUsize::new(0),
        },
        func: UnsafeCell::new(Some(f)),
    });
    (
        Queued(Some(spawned.clone())),
        JoinHandle { packet: spawned },
    )
}

/// The handle to a task started with [`spawn`](crate::Pool::spawn): join
/// it (blocking, with a timeout, or `.await`), or cancel it before it
/// starts. Dropping the handle detaches the task; it still runs.
///
/// ```
/// let pool = corepool::Pool::builder().workers(2).build()?;
/// let answer = pool.spawn(|| 6 * 7).unwrap();
/// assert_eq!(answer.join().unwrap(), 42);
/// # Ok::<(), corepool::BuildError>(())
/// ```
///
/// It is also a `Future`, so async code can await CPU work on the pool:
///
/// ```
/// let pool = corepool::Pool::builder().workers(1).build()?;
/// let handle = pool.spawn(|| (1..=10u64).product::<u64>()).unwrap();
/// let value = futures::executor::block_on(handle).unwrap();
/// assert_eq!(value, 3_628_800);
/// # Ok::<(), corepool::BuildError>(())
/// ```
pub struct JoinHandle<T> {
    /// A std `Arc`, not the sync facade's: it is only shared ownership
    /// (no protocol decides anything from its count), and it must coerce
    /// to a trait object.
    packet: StdArc<dyn Joinable<T>>,
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl<T> JoinHandle<T> {
    /// Whether the task has finished: ran, panicked or was cancelled.
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(1).build()?;
    /// let handle = pool.spawn(|| ()).unwrap();
    /// drop(pool); // drains: the task has run
    /// assert!(handle.is_finished());
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn is_finished(&self) -> bool {
        self.packet.packet().finished.load(Ordering::Acquire)
    }

    /// Cancels the task if it has not started: it will then never run, and
    /// joining gives a [`JoinError`] that
    /// [`is_cancelled`](JoinError::is_cancelled). Returns whether it was
    /// cancelled; `false` means it already started (or finished), and
    /// will deliver its result as usual.
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(1).build()?;
    /// let (tx, rx) = std::sync::mpsc::channel::<()>();
    /// let blocker = pool.spawn(move || rx.recv().ok()).unwrap(); // occupies the one worker
    /// let queued = pool.spawn(|| "never runs").unwrap();
    /// // `queued` cannot have started: the only worker is blocked.
    /// assert!(queued.cancel());
    /// assert!(queued.join().unwrap_err().is_cancelled());
    /// tx.send(()).unwrap();
    /// blocker.join().unwrap();
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn cancel(&self) -> bool {
        self.packet.cancel()
    }

    /// Waits for the task and returns its result.
    ///
    /// Called from a worker of the task's pool before the task started, the
    /// worker runs the task itself. Otherwise a worker blocks, running no
    /// other task (which could depend on its own continuation), and a spare
    /// worker runs the pool's queues meanwhile
    /// ([`Builder::max_spare_threads`](crate::Builder::max_spare_threads)).
    ///
    /// # Panics
    ///
    /// If called from inside the task it joins (it would wait forever), or
    /// after the handle was awaited to completion.
    ///
    /// ```
    /// let pool = corepool::Pool::builder().workers(1).build()?;
    /// let handle = pool.spawn(|| String::from("done")).unwrap();
    /// assert_eq!(handle.join().unwrap(), "done");
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn join(self) -> Result<T, JoinError> {
        match self.wait(None) {
            Ok(result) => result,
            Err(_) => unreachable!("a join without a deadline cannot time out"),
        }
    }

    /// Waits at most `timeout`. On timeout the handle is given back, so the
    /// caller can wait again, cancel, or drop it.
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = corepool::Pool::builder().workers(1).build()?;
    /// let handle = pool.spawn(|| 1 + 1).unwrap();
    /// let result = match handle.join_timeout(Duration::from_secs(10)) {
    ///     Ok(result) => result,
    ///     Err(handle) => handle.join(), // still running: wait for good
    /// };
    /// assert_eq!(result.unwrap(), 2);
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn join_timeout(self, timeout: Duration) -> Result<Result<T, JoinError>, JoinHandle<T>> {
        self.wait(Instant::now().checked_add(timeout))
    }

    fn wait(self, deadline: Option<Instant>) -> Result<Result<T, JoinError>, JoinHandle<T>> {
        let packet = self.packet.packet();
        // A worker must not block while the task sits unstarted in its own
        // pool's queues (perhaps in its own deque): it runs it here instead.
        // Not with a deadline: the task could run past it.
        let worker = worker::current_any();
        if let Some(worker) = &worker {
            if deadline.is_none() && worker.pool_id() == packet.pool {
                self.packet.run();
            }
        }
        let mut state = packet.lock();
        if state.phase == Phase::Running
            && packet.runner.load(StdOrdering::Relaxed) == crate::sync::thread_token()
        {
            drop(state);
            panic!("JoinHandle::join called from inside the task it joins: it would wait forever");
        }
        // A worker that blocks has a spare take its place (`crate::wait`).
        let _blocked = match (&worker, state.phase) {
            (Some(worker), phase) if phase != Phase::Finished => {
                drop(state);
                let blocked = worker.block();
                state = packet.lock();
                Some(blocked)
            }
            _ => None,
        };
        // `None` when the deadline passed first. In a block of its own, so
        // that the guard is released before `self` may be handed back.
        let result = {
            let mut state = state;
            loop {
                if state.phase == Phase::Finished {
                    break Some(state.result.take());
                }
                match wait_deadline(&packet.finished_cvar, state, deadline) {
                    Ok(guard) => state = guard,
                    Err(_) => break None,
                }
            }
        };
        match result {
            Some(Some(result)) => Ok(result),
            Some(None) => panic!("JoinHandle joined after it was polled to completion"),
            None => Err(self),
        }
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.packet.packet().lock();
        if state.phase == Phase::Finished {
            return match state.result.take() {
                Some(result) => Poll::Ready(result),
                None => panic!("JoinHandle polled after completion"),
            };
        }
        match &state.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => state.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}
