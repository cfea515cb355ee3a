//! The conformance suite every backend runs.
