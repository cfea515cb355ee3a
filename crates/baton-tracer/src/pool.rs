//! Nodes handed back by the sender once their documents are sent, so that
//! a new subsegment reuses one instead of allocating. The handler thread
//! allocates a node and the sender thread frees it; with the system
//! allocator that cross-thread round trip was a quarter of a subsegment.

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::entity::Node;

/// The most sent nodes kept for reuse (about 600 KB); the rest are freed.
const POOL_NODES: usize = 2048;
/// How many nodes a thread takes from the pool at a time, so that it locks
/// the pool once every so many subsegments.
const SPARE_NODES: usize = 64;

static POOL: Mutex<Vec<Arc<Node>>> = Mutex::new(Vec::new());
/// How many nodes [`POOL`] holds, read without its lock so that an empty
/// pool costs a new subsegment no lock.
static POOLED: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static SPARE: RefCell<Vec<Arc<Node>>> = const { RefCell::new(Vec::new()) };
}

/// A sent node, cleared, for this thread to fill in; `None` when there is none to reuse.
pub(crate) fn take() -> Option<Arc<Node>> {
    SPARE
        .try_with(|spare| {
            let mut spare = spare.borrow_mut();
            if spare.is_empty() && POOLED.load(Ordering::Relaxed) > 0 {
                let mut pool = POOL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                let from = pool.len().saturating_sub(SPARE_NODES);
                spare.extend(pool.drain(from..));
                POOLED.store(pool.len(), Ordering::Relaxed);
            }
            spare.pop()
        })
        .ok()
        .flatten()
}

/// Keeps sent entities, and the children embedded in them, for reuse, up to [`POOL_NODES`].
pub(crate) fn give_back(entities: impl Iterator<Item = Arc<Node>>) {
    let cleared = clear(entities);
    let mut pool = POOL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let room = POOL_NODES.saturating_sub(pool.len());
    pool.extend(cleared.into_iter().take(room));
    POOLED.store(pool.len(), Ordering::Relaxed);
}

/// The nodes of sent entities' trees that no one else holds any more,
/// cleared; a node whose handle is still held elsewhere is left to it.
pub(crate) fn clear(entities: impl Iterator<Item = Arc<Node>>) -> Vec<Arc<Node>> {
    let mut cleared = Vec::new();
    let mut pending: Vec<Arc<Node>> = entities.collect();
    while let Some(mut node) = pending.pop() {
        if let Some(unique) = Arc::get_mut(&mut node) {
            pending.extend(unique.state.get_mut().clear());
            cleared.push(node);
        }
    }
    cleared
}
