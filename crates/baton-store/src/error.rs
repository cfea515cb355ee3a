/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The embedded database failed (disk full, I/O error, corruption).
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// ClickHouse refused a statement or could not be reached.
    #[error("clickhouse: {0}")]
    ClickHouse(String),
    /// Stored data could not be read back.
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    /// The writer has shut down and takes no more documents.
    #[error("the store writer has stopped")]
    Stopped,
    /// The writer's queue is full; the documents were not taken.
    #[error("the store writer's queue is full")]
    Full,
    /// Writing the batch failed; the message says why.
    #[error("writing the batch failed: {0}")]
    WriteFailed(String),
}
