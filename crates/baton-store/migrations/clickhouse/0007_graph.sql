-- Service-graph rollups: per graph element (postcard bytes) and minute,
-- hour or day (`span` seconds, `bucket` = start / span) of the traces'
-- starts, the sums of their contributions. Each write adds the new
-- summaries' contributions and subtracts the previous ones'; merges sum
-- rows of one key, the histograms (`...Map` nested columns) by bucket.
CREATE TABLE IF NOT EXISTS {db}.graph{local}{on_cluster} (
    day Date,
    span UInt32,
    bucket Int64,
    element String,
    total Int64,
    ok Int64,
    error Int64,
    throttle Int64,
    fault Int64,
    total_response_time Float64,
    responseTimesMap Nested(bucket UInt16, count Int64),
    durationsMap Nested(bucket UInt16, count Int64)
) ENGINE = SummingMergeTree
PARTITION BY day
ORDER BY (span, bucket, element)
