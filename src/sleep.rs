//! How idle workers go to sleep, and how new work wakes exactly one of them.
//!
//! # State
//!
//! One atomic word packs two counts: workers *searching* (awake, looking for
//! work to steal) and workers *sleeping* (registered in `sleepers` and
//! parked, or about to park). A worker that is running tasks is neither.
//!
//! # Rules
//!
//! 1. **Notify** (after any push, from a producer or from a task spawning
//!    locally): a SeqCst fence, then read the word. Wake one sleeper only if
//!    there is a sleeper and *nobody is searching*: a searcher will find the
//!    task, so waking a second thread would be wasted work. This holds for
//!    a push onto the pusher's own deque too: its owner may go on to block
//!    (on a channel, a latch) waiting for that very task, so a missed
//!    wake-up there can hang the pool (the loom `steal` model checks it).
//!    Only `join` skips the fence, in `notify_join_work`.
//!
//!    One exception to "nobody is searching": if the queue pushed to
//!    holds another task besides the one pushed, one more sleeper is woken
//!    even while someone searches. The searchers are then not keeping up,
//!    or not running at all: a woken worker counts as searching before it
//!    runs, and a pinned one whose core another thread holds may not run
//!    for a whole time slice: a producer spinning on the core of a pinned,
//!    just-woken worker would leave tasks waiting milliseconds in the
//!    injector while another worker sleeps (docs/benchmarks.md, "latency").
//! 2. **Wake one**: under the `sleepers` lock, pop a sleeper and move it
//!    from the sleeping count to the searching count in one atomic step.
//!    The woken worker is a searcher from that moment, so the next notify
//!    sees `searching > 0` and wakes nobody: one wake per burst, not a herd.
//! 3. **Searching** is capped at half the workers, and at least two (or
//!    all of them in a pool of one): more thieves than that contend on the
//!    same queues for nothing. Not one: a woken worker counts as searching
//!    from the moment it is chosen, and on a pinned core that was halted it
//!    takes ~20 µs before it looks anywhere; a cap of one would bar the
//!    worker that has just finished a task, awake and on its core, from
//!    searching, and the next task would wait for the slow one
//!    (docs/benchmarks.md, "latency").
//! 4. **The last searcher hands on**: a searcher that finds work stops
//!    searching; if it was the last one, someone sleeps, and work is still
//!    visible in some queue (after a SeqCst fence), it wakes one more.
//!    Notifies suppressed by rule 1 while it searched may stand for several
//!    tasks, and it takes only one; but if no queue holds anything, every
//!    task they stood for has been taken, and waking a worker would only
//!    send it searching for nothing, which at a low task rate costs as
//!    much CPU as the tasks themselves (docs/benchmarks.md, "idle_cpu"). A
//!    searcher that *leaves* instead (retired by `set_workers`, or exiting)
//!    hands on the same way, since it will look at no queue again.
//! 5. **Park**: under the `sleepers` lock, register, and move from the
//!    searching to the sleeping count (one SeqCst read-modify-write); then a
//!    SeqCst fence, then look at every queue once more (the *re-check*).
//!    Only if that finds nothing does the worker park.
//!
//! # Why no wake-up is lost
//!
//! Take a task pushed by P while worker W decides to sleep. P does
//! `push; fence(SeqCst); load(state)`. W does `rmw(state); fence(SeqCst);
//! re-check queues`. In the single order of SeqCst operations either P's
//! load comes after W's registration, and P sees a sleeper, or W's re-check
//! comes after P's push, and W sees the task. In the first case P wakes a
//! sleeper unless someone is searching, and a searcher either takes the
//! task or, under rule 4 and rule 5, hands the wake on or re-checks after
//! it stops searching. The parker keeps a token, so a wake that lands
//! between W's re-check and W's park is not lost either.
//!
//! Rule 4 looks at the queues instead of handing on blindly. Take a task
//! pushed by P whose notify was suppressed because searcher S was
//! searching: P did `push; fence; load(state)` and saw `searching > 0`.
//! S does `rmw(state)` (stops searching) `; fence; look at every queue`. If
//! S's fence comes first in the SeqCst order, P's load sees S gone: P wakes
//! someone itself, unless another searcher has started, which inherits
//! the duty. Otherwise S's look comes after P's push and sees the task,
//! unless a worker already took it. Either way the task has a worker.
//!
//! This is the scheme of tokio's `idle.rs` and rayon's `sleep` module, cut
//! down to what a pool of plain closures needs.

use crossbeam_utils::CachePadded;

use crate::sync::{fence, lock, AtomicUsize, Mutex, Ordering, Parker};

/// Low half of the word: searching workers. High half: sleeping workers.
const SHIFT: u32 = usize::BITS / 2;
const SEARCHING_ONE: usize = 1;
const SLEEPING_ONE: usize = 1 << SHIFT;
const SEARCHING_MASK: usize = SLEEPING_ONE - 1;
/// Workers beyond this could overflow a half of the packed word on 32-bit targets.
pub(crate) const MAX_WORKERS: usize = 1 << 15;

fn searching(state: usize) -> usize {
    state & SEARCHING_MASK
}

fn sleeping(state: usize) -> usize {
    state >> SHIFT
}

/// What happened to a worker that went through the park protocol.
pub(crate) enum Parked<T> {
    /// The re-check found work. `searching` says whether the worker is now
    /// counted as a searcher (a waker chose it while it re-checked).
    Found { item: T, searching: bool },
    /// The worker slept and was woken; it is now counted as a searcher.
    Woken,
    /// The re-check found that the worker should exit; it is counted as
    /// neither searching nor sleeping.
    Exit,
}

/// What the re-check before parking found.
pub(crate) enum Recheck<T> {
    Work(T),
    Exit,
    Nothing,
}

pub(crate) struct Sleep {
    state: CachePadded<AtomicUsize>,
    sleepers: Mutex<Vec<usize>>,
    parkers: Box<[Parker]>,
    num_workers: usize,
}

impl Sleep {
    pub(crate) fn new(num_workers: usize) -> Self {
        debug_assert!(num_workers > 0 && num_workers <= MAX_WORKERS);
        Sleep {
            state: CachePadded::new(AtomicUsize::new(0)),
            sleepers: Mutex::new(Vec::with_capacity(num_workers)),
            parkers: (0..num_workers).map(|_| Parker::new()).collect(),
            num_workers,
        }
    }

    /// Rule 1. Called after every push; `backlog` says whether the queue
    /// pushed to holds another task besides this one. It is asked only
    /// when the answer matters (someone sleeps and someone searches), so
    /// that a push does not read the consumers' end of its queue, a cache
    /// line they write on every steal.
    pub(crate) fn notify_work(&self, backlog: impl FnOnce() -> bool) {
        fence(Ordering::SeqCst);
        let state = self.state.load(Ordering::SeqCst);
        if sleeping(state) > 0 && (searching(state) == 0 || backlog()) {
            self.wake_one();
        }
    }

    /// Rule 1 without the fence, for `join`'s second half only: the
    /// joining worker pops that job back and runs it itself unless a thief
    /// took it, so a wake-up missed here costs parallelism, never progress.
    /// rayon makes the same trade for every job a worker pushes
    /// (`new_internal_jobs`); corepool keeps the fence wherever the pusher
    /// may block outside the pool waiting for what it pushed (rule 1).
    #[inline]
    pub(crate) fn notify_join_work(&self) {
        let state = self.state.load(Ordering::SeqCst);
        if searching(state) == 0 && sleeping(state) > 0 {
            self.wake_one();
        }
    }

    /// Rule 3. Returns whether the caller is now counted as a searcher.
    pub(crate) fn try_start_searching(&self) -> bool {
        let state = self.state.load(Ordering::SeqCst);
        if searching(state) >= (self.num_workers / 2).max(2) {
            return false;
        }
        self.state.fetch_add(SEARCHING_ONE, Ordering::SeqCst);
        true
    }

    /// Rule 4: a searcher stops searching, because it found work or because
    /// it leaves (exit, retirement). Either way, if it was the last
    /// searcher, the wake-ups suppressed while it searched are handed on.
    /// `work_visible` looks at every queue once.
    pub(crate) fn stop_searching(&self, work_visible: impl FnOnce() -> bool) {
        let previous = self.state.fetch_sub(SEARCHING_ONE, Ordering::SeqCst);
        debug_assert!(searching(previous) > 0);
        if searching(previous) == 1 && sleeping(previous) > 0 {
            // Pairs with the notifier's fence: see "Why no wake-up is lost".
            fence(Ordering::SeqCst);
            if work_visible() {
                self.wake_one();
            }
        }
    }

    /// Rule 4 for a worker that gave up its search by registering to sleep
    /// and then found work in its re-check.
    fn hand_on(&self, work_visible: impl FnOnce() -> bool) {
        fence(Ordering::SeqCst);
        if !work_visible() {
            return;
        }
        let state = self.state.load(Ordering::SeqCst);
        if searching(state) == 0 && sleeping(state) > 0 {
            self.wake_one();
        }
    }

    /// Rule 2.
    fn wake_one(&self) {
        let mut sleepers = lock(&self.sleepers);
        if let Some(index) = sleepers.pop() {
            // sleeping -= 1, searching += 1, in one step (the sleeping half
            // is at least one, so the wrapping add borrows from nothing).
            self.state
                .fetch_add(SEARCHING_ONE.wrapping_sub(SLEEPING_ONE), Ordering::SeqCst);
            // Unparked under the lock, so that a worker that finds itself
            // popped (in `cancel_park`) knows its token is already set.
            self.parkers[index].unpark();
        }
    }

    /// Wakes every sleeper (shutdown). Each becomes a searcher.
    pub(crate) fn wake_all(&self) {
        let mut sleepers = lock(&self.sleepers);
        while let Some(index) = sleepers.pop() {
            self.state
                .fetch_add(SEARCHING_ONE.wrapping_sub(SLEEPING_ONE), Ordering::SeqCst);
            self.parkers[index].unpark();
        }
    }

    /// Rule 5. `recheck` looks at every queue and the exit condition once;
    /// `work_visible` tells whether any queue holds a task (rule 4).
    pub(crate) fn park<T>(
        &self,
        index: usize,
        searching_now: bool,
        recheck: impl FnOnce() -> Recheck<T>,
        work_visible: impl FnOnce() -> bool,
    ) -> Parked<T> {
        {
            let mut sleepers = lock(&self.sleepers);
            sleepers.push(index);
            let delta = if searching_now {
                SLEEPING_ONE - SEARCHING_ONE
            } else {
                SLEEPING_ONE
            };
            self.state.fetch_add(delta, Ordering::SeqCst);
        }
        fence(Ordering::SeqCst);
        match recheck() {
            Recheck::Nothing => {
                self.parkers[index].park();
                Parked::Woken
            }
            Recheck::Work(item) => {
                let searching = !self.cancel_park(index);
                if !searching {
                    // We may have been the last searcher when notifies were
                    // suppressed; they may stand for more than this one task.
                    self.hand_on(work_visible);
                }
                Parked::Found { item, searching }
            }
            Recheck::Exit => {
                if self.cancel_park(index) {
                    // We may have given up the last search in the
                    // registration above, and we leave without looking at
                    // the queues: hand any suppressed wake-up on.
                    self.notify_work(|| false);
                } else {
                    self.stop_searching(work_visible);
                }
                Parked::Exit
            }
        }
    }

    /// Takes a worker that has registered but not parked back off the
    /// sleepers. Returns `true` when it was still registered; `false` when a
    /// waker chose it first, in which case it is counted as a searcher.
    fn cancel_park(&self, index: usize) -> bool {
        let mut sleepers = lock(&self.sleepers);
        match sleepers.iter().position(|&i| i == index) {
            Some(position) => {
                sleepers.swap_remove(position);
                self.state.fetch_sub(SLEEPING_ONE, Ordering::SeqCst);
                true
            }
            None => {
                // The waker unparked us under this lock: drop the token so
                // that our next park really sleeps.
                self.parkers[index].clear();
                false
            }
        }
    }

    /// Workers counted as sleeping right now (a statistic: no decision is
    /// made from it).
    pub(crate) fn sleeping(&self) -> usize {
        sleeping(self.state.load(Ordering::Relaxed))
    }

    /// Workers counted as searching right now (a statistic).
    pub(crate) fn searching(&self) -> usize {
        searching(self.state.load(Ordering::Relaxed))
    }
}

/// Component models of `Sleep` alone, without a pool: a queue is one
/// counter, and a lost wake-up is a worker parked for good, which loom
/// reports as a deadlock. Run by `loom-tests/run.sh` before the whole-pool
/// models (see docs/verification.md).
#[cfg(all(test, corepool_loom))]
mod loom_tests {
    use super::{Parked, Recheck, Sleep};
    use crate::sync::{thread, Arc, AtomicUsize, Ordering};

    /// Takes one task off `queue`, if it holds one.
    fn take(queue: &AtomicUsize) -> bool {
        queue
            .fetch_update(Ordering::Acquire, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }

    /// Worker `index` goes through the park protocol until it takes a task
    /// from `queue`, then stops searching as the main loop does.
    fn run_until_one_task(sleep: &Sleep, index: usize, queue: &AtomicUsize) {
        let mut searching = false;
        loop {
            if take(queue) {
                break;
            }
            let parked = sleep.park(
                index,
                searching,
                || {
                    if take(queue) {
                        Recheck::Work(())
                    } else {
                        Recheck::Nothing
                    }
                },
                || queue.load(Ordering::Acquire) > 0,
            );
            match parked {
                Parked::Woken => searching = true,
                Parked::Found { searching: now, .. } => {
                    searching = now;
                    break;
                }
                Parked::Exit => unreachable!("the re-check never asks to exit"),
            }
        }
        if searching {
            sleep.stop_searching(|| queue.load(Ordering::Acquire) > 0);
        }
    }

    /// Rules 1 and 5: a worker parking while a producer pushes and
    /// notifies either sees the task in its re-check or is woken.
    #[test]
    fn loom_park_vs_notify() {
        loom::model(|| {
            let sleep = Arc::new(Sleep::new(1));
            let queue = Arc::new(AtomicUsize::new(0));
            let producer = {
                let (sleep, queue) = (sleep.clone(), queue.clone());
                thread::spawn(move || {
                    queue.fetch_add(1, Ordering::Release);
                    sleep.notify_work(|| false);
                })
            };
            run_until_one_task(&sleep, 0, &queue);
            producer.join().expect("the producer does not panic");
            assert_eq!(sleep.searching(), 0);
        });
    }

    /// Rules 2 and 4: two tasks, two workers going to sleep; the producer's
    /// notifies may be suppressed while one worker searches, so that one
    /// must hand the wake-up on when it stops. Each worker takes one task.
    #[test]
    fn loom_two_workers_hand_on() {
        loom::model(|| {
            let sleep = Arc::new(Sleep::new(2));
            let queue = Arc::new(AtomicUsize::new(0));
            let other = {
                let (sleep, queue) = (sleep.clone(), queue.clone());
                thread::spawn(move || run_until_one_task(&sleep, 1, &queue))
            };
            let producer = {
                let (sleep, queue) = (sleep.clone(), queue.clone());
                thread::spawn(move || {
                    for _ in 0..2 {
                        queue.fetch_add(1, Ordering::Release);
                        sleep.notify_work(|| false);
                    }
                })
            };
            run_until_one_task(&sleep, 0, &queue);
            producer.join().expect("the producer does not panic");
            other.join().expect("the other worker does not panic");
            assert_eq!(queue.load(Ordering::Relaxed), 0);
        });
    }
}
