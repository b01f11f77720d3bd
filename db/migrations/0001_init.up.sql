-- Curated characters: exactly those admitted by the ingest filter in the
-- latest successful crawl.
CREATE TABLE characters (
    id            integer     PRIMARY KEY,
    name          text        NOT NULL,
    status        text        NOT NULL,
    species       text        NOT NULL,
    type          text        NOT NULL,
    gender        text        NOT NULL,
    origin_name   text        NOT NULL,
    origin_url    text        NOT NULL,
    location_name text        NOT NULL,
    location_url  text        NOT NULL,
    image         text        NOT NULL,
    episode       text[]      NOT NULL,
    url           text        NOT NULL,
    created       timestamptz NOT NULL,
    -- when the ingester last inserted or changed this row
    synced_at     timestamptz NOT NULL DEFAULT now()
);

-- The API sorts by these with id as the tie breaker.
CREATE INDEX characters_name_id_idx ON characters (name, id);
CREATE INDEX characters_created_id_idx ON characters (created, id);

-- One row per ingest attempt that got the lock.
CREATE TABLE ingest_runs (
    id           bigserial   PRIMARY KEY,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    result       text        NOT NULL DEFAULT 'running'
                 CHECK (result IN ('running', 'success', 'failed', 'abandoned')),
    pages        integer     NOT NULL DEFAULT 0,
    fetched      integer     NOT NULL DEFAULT 0,
    kept         integer     NOT NULL DEFAULT 0,
    inserted     integer     NOT NULL DEFAULT 0,
    updated      integer     NOT NULL DEFAULT 0,
    deleted      integer     NOT NULL DEFAULT 0,
    data_version bigint,
    error        text
);

CREATE INDEX ingest_runs_success_idx ON ingest_runs (finished_at DESC) WHERE result = 'success';

-- A single row whose version increases with every successful ingest; API
-- caches and ETags are keyed by it.
CREATE TABLE data_version (
    singleton  boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    version    bigint      NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

INSERT INTO data_version (version) VALUES (0);
