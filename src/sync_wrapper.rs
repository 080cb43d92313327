//! `SyncWrapper<T>`: a box that is `Sync` whatever `T` is, because it never
//! lets anyone look at its content through a shared reference.
//!
//! The error types hold a value that is `Send` but not necessarily `Sync`:
//! a refused closure (`SubmitError<F>` and friends) or a panic payload
//! (`Box<dyn Any + Send>` in `JoinError`). Holding it in a `SyncWrapper`
//! makes the error `Send + Sync` for any `F: Send`, so it converts into
//! `Box<dyn Error + Send + Sync>` with `?`. The value only ever leaves by
//! value (`into_inner`), never as `&T`.

/// See the module documentation. Deliberately has no `&self` method and
/// implements no trait that takes `&self` (no `Debug`, `Clone`,
/// `PartialEq`, `Deref`, `AsRef`, ...): any such method would hand out (or
/// use) a `&T` and break the argument for `Sync` below.
pub(crate) struct SyncWrapper<T>(T);

// SAFETY: `Sync` promises that `&SyncWrapper<T>` may be used from several
// threads at once. A shared reference to a `SyncWrapper` gives access to
// nothing: the field is private, and this module defines no method and no
// trait impl that takes `&self`, so no `&T` can ever be obtained from a
// `&SyncWrapper<T>`. The only way to the content is `into_inner(self)`,
// which takes ownership, so no other reference to the wrapper exists at
// that moment. Sharing `&SyncWrapper<T>` therefore never lets two threads
// touch the `T`, whatever `T` is. Moving a `SyncWrapper<T>` to another
// thread still needs `T: Send`: `Send` is the auto impl, which follows `T`.
unsafe impl<T> Sync for SyncWrapper<T> {}

impl<T> SyncWrapper<T> {
    /// Wraps `value`.
    pub(crate) fn new(value: T) -> Self {
        SyncWrapper(value)
    }

    /// Gives the value back; needs ownership of the wrapper.
    pub(crate) fn into_inner(self) -> T {
        self.0
    }
}
