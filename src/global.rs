//! The global pool: the pool the free functions ([`crate::join`],
//! [`crate::scope`], [`crate::spawn`], [`crate::submit`],
//! [`crate::current_num_threads`]) use when called off any pool's worker,
//! as rayon's do.
//!
//! It is built once, either by [`Builder::build_global`] or, on first use,
//! with [`Builder::new`]'s defaults (one pinned worker per core, the
//! default capacity), and kept in a static: it is never dropped, so it
//! never shuts down and a submission to it is never refused.

use std::sync::OnceLock;

use crate::builder::Builder;
use crate::error::BuildError;
use crate::pool::Pool;

static GLOBAL: OnceLock<Pool> = OnceLock::new();

/// The global pool, built with the defaults if it does not exist yet.
///
/// # Panics
///
/// If the default pool cannot be built (the OS refuses a thread), as
/// rayon's global pool does.
pub(crate) fn global() -> &'static Pool {
    GLOBAL.get_or_init(|| match Builder::new().build() {
        Ok(pool) => pool,
        Err(err) => panic!("corepool: could not build the global pool: {err}"),
    })
}

impl Builder {
    /// Builds the *global* pool with this configuration: the pool that
    /// [`corepool::join`](crate::join), [`corepool::scope`](crate::scope),
    /// [`corepool::spawn`](crate::spawn), [`corepool::submit`](crate::submit)
    /// and [`corepool::current_num_threads`](crate::current_num_threads)
    /// use when called off any pool's worker (rayon's
    /// `ThreadPoolBuilder::build_global`). The global pool lives until the
    /// process ends; it is never shut down.
    ///
    /// Call it once, early: if the global pool already exists (an earlier
    /// `build_global`, or the first use of one of those functions, which
    /// builds it with [`Builder::new`]'s defaults), it fails with
    /// [`BuildError::GlobalPoolAlreadyInitialized`] and the existing pool
    /// is kept. Any other error is `build`'s, and leaves the global pool
    /// unbuilt.
    ///
    /// ```
    /// corepool::Builder::new()
    ///     .workers(2)
    ///     .thread_name_fn(|i| format!("global-{i}"))
    ///     .build_global()?;
    /// assert_eq!(corepool::current_num_threads(), 2);
    /// let (a, b) = corepool::join(|| 1, || 2); // runs on the global pool
    /// assert_eq!(a + b, 3);
    /// let again = corepool::Builder::new().build_global().unwrap_err();
    /// assert!(matches!(again, corepool::BuildError::GlobalPoolAlreadyInitialized));
    /// # Ok::<(), corepool::BuildError>(())
    /// ```
    pub fn build_global(self) -> Result<(), BuildError> {
        if GLOBAL.get().is_some() {
            return Err(BuildError::GlobalPoolAlreadyInitialized);
        }
        let pool = self.build()?;
        // Two racing calls may both build: the loser's pool shuts down here.
        GLOBAL
            .set(pool)
            .map_err(|_pool| BuildError::GlobalPoolAlreadyInitialized)
    }
}

/// The message of the submissions to the global pool that cannot fail.
pub(crate) const NEVER_SHUTS_DOWN: &str = "the global pool never shuts down";
