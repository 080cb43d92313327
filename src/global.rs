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

/// `Builder::build_global`.
pub(crate) fn init(builder: Builder) -> Result<(), BuildError> {
    if GLOBAL.get().is_some() {
        return Err(BuildError::GlobalPoolAlreadyInitialized);
    }
    let pool = builder.build()?;
    // Two racing calls may both build: the loser's pool shuts down here.
    GLOBAL
        .set(pool)
        .map_err(|_pool| BuildError::GlobalPoolAlreadyInitialized)
}

/// The message of the submissions to the global pool that cannot fail.
pub(crate) const NEVER_SHUTS_DOWN: &str = "the global pool never shuts down";
