CREATE TABLE IF NOT EXISTS {db}.summaries{on_cluster} AS {db}.summaries{local}
ENGINE = Distributed({cluster}, {db}, summaries{local}, cityHash64(trace))
