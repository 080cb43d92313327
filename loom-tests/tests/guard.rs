//! The library under test really is the loom build of corepool.
#![cfg(corepool_loom)]

#[test]
fn corepool_is_built_against_loom() {
    // loom's primitives refuse to be created outside `loom::model`, std's
    // do not: a pool that builds here was built against std, and every
    // model would silently run on the real primitives.
    let built = std::panic::catch_unwind(|| {
        corepool::Pool::builder()
            .workers(1)
            .pin_workers(false)
            .build()
    });
    assert!(
        built.is_err(),
        "run the models with RUSTFLAGS=\"--cfg corepool_loom\": corepool was built against std"
    );
}
