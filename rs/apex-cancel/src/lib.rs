//! Cooperative cancellation of long computations: one process-wide flag that the Python binding raises when the
//! user interrupts (Ctrl-C, SIGTERM) and that the library loops poll at coarse intervals.
//!
//! A loop calls [`checkpoint`] every few thousand iterations. When cancellation was requested, `checkpoint`
//! unwinds with a [`Cancelled`] payload (through `std::panic::resume_unwind`, so no panic message is printed and
//! rayon carries it to the caller like any panic); the binding catches it and reports the interruption. Unwinding
//! rather than an error value keeps the library functions' signatures untouched: a computation that is cancelled
//! has no result to return, and the caller only needs to know that it stopped.
//!
//! Only the binding requests cancellation; code that never calls [`request`] (the live engine, the tests) never
//! unwinds from a checkpoint.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// The payload a cancelled computation unwinds with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cancelled;

/// Asks every running computation to stop at its next checkpoint. Returns whether it was already requested.
pub fn request() -> bool {
    REQUESTED.swap(true, Ordering::SeqCst)
}

/// Withdraws the request, so later computations run normally.
pub fn clear() {
    REQUESTED.store(false, Ordering::SeqCst);
}

/// Whether cancellation is requested.
pub fn is_requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}

/// Stops the computation (unwinds with [`Cancelled`]) when cancellation is requested; otherwise returns at once
/// (one relaxed atomic load).
///
/// # Panics
/// Unwinds with the [`Cancelled`] payload when cancellation was requested; catch it with
/// `std::panic::catch_unwind` and test it with [`is_cancelled`].
pub fn checkpoint() {
    if is_requested() {
        std::panic::resume_unwind(Box::new(Cancelled));
    }
}

/// Whether an unwind payload caught by `catch_unwind` is a cancellation (rather than a panic).
pub fn is_cancelled(payload: &(dyn std::any::Any + Send)) -> bool {
    payload.is::<Cancelled>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::panic::catch_unwind;

    // One test: the flag is process-wide, so tests that set it must not run in parallel with each other.
    #[test]
    fn checkpoint_unwinds_only_when_requested_and_the_payload_is_recognized() {
        clear();
        assert!(catch_unwind(checkpoint).is_ok());
        assert!(!request());
        assert!(request(), "a second request reports the first");
        let caught = catch_unwind(|| {
            for _ in 0..10 {
                checkpoint();
            }
        })
        .expect_err("a requested cancellation unwinds");
        assert!(is_cancelled(caught.as_ref()));
        let panic = catch_unwind(|| std::panic::resume_unwind(Box::new("another payload"))).expect_err("unwinds");
        assert!(!is_cancelled(panic.as_ref()));
        clear();
        assert!(!is_requested());
        assert!(catch_unwind(checkpoint).is_ok());
    }
}
