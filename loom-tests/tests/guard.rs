//! The library under test really is the loom build of corepool.
#![cfg(loom)]

#[test]
fn corepool_is_built_against_loom() {
    // At run time, on purpose: this is the test that says so in the report.
    assert!(
        std::hint::black_box(corepool::BUILT_WITH_LOOM),
        "run the models with RUSTFLAGS=\"--cfg loom\": corepool was built against std"
    );
}
