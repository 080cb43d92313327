//! Blocking on a flag: [`Signal`], a flag behind a mutex with a condition
//! variable, and [`Parker`], a one-token parker built on it.

use super::{lock, wait, Condvar, Instant, Mutex};

/// A flag that threads block on until it is set: a mutex-guarded `bool`
/// and a condition variable, the one place this pattern is written.
pub(crate) struct Signal {
    flag: Mutex<bool>,
    cvar: Condvar,
}

impl Signal {
    pub(crate) fn new() -> Self {
        Signal {
            flag: Mutex::new(false),
            cvar: Condvar::new(),
        }
    }

    /// Sets the flag and wakes every waiter.
    pub(crate) fn set(&self) {
        *lock(&self.flag) = true;
        self.cvar.notify_all();
    }

    /// Clears the flag; returns whether it was set.
    pub(crate) fn take(&self) -> bool {
        std::mem::replace(&mut *lock(&self.flag), false)
    }

    /// Blocks until the flag is set; with `consume`, clears it again.
    pub(crate) fn wait(&self, consume: bool) {
        let mut flag = lock(&self.flag);
        while !*flag {
            flag = wait(&self.cvar, flag);
        }
        if consume {
            *flag = false;
        }
    }

    /// Blocks until the flag is set or `deadline` passes; returns whether
    /// it was set. With `consume`, a set flag is cleared again.
    ///
    /// Under loom the deadline is treated as already due once the thread has
    /// yielded: loom then explores the timeout firing at every point of the
    /// other threads' execution, deterministically.
    pub(crate) fn wait_until(&self, deadline: Instant, consume: bool) -> bool {
        #[cfg(corepool_loom)]
        let mut flag = {
            let _ = deadline;
            loom::thread::yield_now();
            lock(&self.flag)
        };
        #[cfg(not(corepool_loom))]
        let mut flag = {
            let mut flag = lock(&self.flag);
            while !*flag {
                match super::wait_deadline(&self.cvar, flag, Some(deadline)) {
                    Ok(guard) => flag = guard,
                    Err(_) => return false,
                }
            }
            flag
        };
        let set = *flag;
        if consume {
            *flag = false;
        }
        set
    }
}

/// A one-token parker: `unpark` before `park` is remembered, so a wake-up
/// that arrives while its target is still deciding to sleep is never lost.
pub(crate) struct Parker {
    token: Signal,
}

impl Parker {
    pub(crate) fn new() -> Self {
        Parker {
            token: Signal::new(),
        }
    }

    /// Blocks until a token is available, then consumes it.
    pub(crate) fn park(&self) {
        self.token.wait(true);
    }

    /// Blocks until a token is available or `deadline` passes (see
    /// [`Signal::wait_until`] for loom). Returns whether a token was
    /// consumed.
    pub(crate) fn park_until(&self, deadline: Instant) -> bool {
        self.token.wait_until(deadline, true)
    }

    /// Makes a token available and wakes the parked thread, if any.
    pub(crate) fn unpark(&self) {
        self.token.set();
    }

    /// Discards a token that is known to be stale.
    pub(crate) fn clear(&self) {
        self.token.take();
    }
}
