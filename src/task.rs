//! The unit of work that travels through the queues.

/// A boxed closure plus one bit of bookkeeping: whether it holds a slot of
/// the bound. Three words, moved by value through the deques: boxing the
/// closure is the only allocation a submission makes.
pub(crate) struct Task {
    run: Box<dyn FnOnce() + Send + 'static>,
    /// Submitted from outside the pool, so counted by
    /// [`Admission`](crate::admission::Admission) until it starts.
    admitted: bool,
}

impl Task {
    pub(crate) fn new(run: Box<dyn FnOnce() + Send + 'static>, admitted: bool) -> Self {
        Task { run, admitted }
    }

    pub(crate) fn is_admitted(&self) -> bool {
        self.admitted
    }

    pub(crate) fn into_closure(self) -> Box<dyn FnOnce() + Send + 'static> {
        self.run
    }
}
