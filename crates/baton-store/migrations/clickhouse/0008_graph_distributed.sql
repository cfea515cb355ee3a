CREATE TABLE IF NOT EXISTS {db}.graph{on_cluster} AS {db}.graph{local}
ENGINE = Distributed({cluster}, {db}, graph{local}, cityHash64(element))
