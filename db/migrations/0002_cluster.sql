-- Several whipcast nodes sharing this database: who is alive, and which node
-- holds each live channel's publisher (its origin).

CREATE TABLE nodes (
  id           text PRIMARY KEY,
  -- base URL other nodes reach this node's HTTP port at (relay control)
  url          text NOT NULL,
  started_at   timestamptz NOT NULL DEFAULT now(),
  heartbeat_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE channel_origins (
  stream_id uuid PRIMARY KEY REFERENCES streams (id) ON DELETE CASCADE,
  node_id   text NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
  since     timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX channel_origins_node_idx ON channel_origins (node_id);
