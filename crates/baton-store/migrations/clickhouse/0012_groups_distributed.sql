CREATE TABLE IF NOT EXISTS {db}.groups{on_cluster} AS {db}.groups{local}
ENGINE = Distributed({cluster}, {db}, groups{local}, cityHash64(name))
