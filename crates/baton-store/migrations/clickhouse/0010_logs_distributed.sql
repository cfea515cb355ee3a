CREATE TABLE IF NOT EXISTS {db}.logs{on_cluster} AS {db}.logs{local}
ENGINE = Distributed({cluster}, {db}, logs{local}, cityHash64(trace))
