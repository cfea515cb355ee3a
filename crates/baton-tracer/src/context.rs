//! The current subsegment: a thread-local slot, set for the duration of a
//! closure ([`Subsegment::in_scope`]) or of every poll of a future
//! ([`Instrumented`]), so context follows `.await` points and, on request,
//! spawned tasks.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::entity::Subsegment;

thread_local! {
    static CURRENT: RefCell<Subsegment> = const { RefCell::new(Subsegment::off()) };
}

/// The subsegment code running on this thread records into (a no-op handle when there is none).
pub fn current_subsegment() -> Subsegment {
    CURRENT.with(|current| current.borrow().clone())
}

/// Runs `f` on the current subsegment without cloning its handle.
pub(crate) fn with_current<R>(f: impl FnOnce(&Subsegment) -> R) -> R {
    CURRENT.with(|current| f(&current.borrow()))
}

/// Restores the previous current subsegment when dropped, even on unwind.
pub(crate) struct Entered {
    previous: Option<Subsegment>,
}

/// Makes `subsegment` current until the returned guard is dropped.
pub(crate) fn enter(subsegment: &Subsegment) -> Entered {
    if !subsegment.is_active() {
        return Entered { previous: None };
    }
    let previous = CURRENT.with(|current| current.replace(subsegment.clone()));
    Entered { previous: Some(previous) }
}

impl Drop for Entered {
    fn drop(&mut self) {
        if let Some(previous) = self.previous.take() {
            CURRENT.with(|current| *current.borrow_mut() = previous);
        }
    }
}

pin_project_lite::pin_project! {
    /// A future that runs with a subsegment current during every poll.
    pub struct Instrumented<F> {
        #[pin]
        future: F,
        subsegment: Subsegment,
    }
}

impl<F> Instrumented<F> {
    pub(crate) fn new(future: F, subsegment: Subsegment) -> Instrumented<F> {
        Instrumented { future, subsegment }
    }
}

impl<F: Future> Future for Instrumented<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _entered = enter(this.subsegment);
        this.future.poll(cx)
    }
}

/// Carries the current subsegment into a future that runs elsewhere, such as a spawned task.
pub trait FutureExt: Future + Sized {
    /// Runs this future with the subsegment that is current now:
    /// `tokio::spawn(work().in_current_subsegment())`.
    fn in_current_subsegment(self) -> Instrumented<Self> {
        Instrumented::new(self, current_subsegment())
    }
}

impl<F: Future> FutureExt for F {}
