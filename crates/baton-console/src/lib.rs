//! Baton's web console, rendered on the server: pages are HTML strings made
//! from domain values (graph statistics, trace summaries, a trace's
//! documents), with one stylesheet and one script embedded in the binary.
//! No I/O: the server fetches the data and serves the pages.
//!
//! Every page has a URL holding all of its state (time window, filter,
//! selection), so a view can be shared: `/` (service map), `/traces`
//! (search), `/traces/{id}` (one trace).

mod html;
mod map;
mod page;
mod trace;
mod traces;
mod window;

pub use html::escape;
pub use map::map_page;
pub use page::{SCRIPT, STYLESHEET};
pub use trace::trace_page;
pub use traces::{TracesView, traces_page};
pub use window::{TimeWindow, WindowError};
