-- Past broadcasts (issue #14): one recording per live session, clips cut from
-- the DVR buffer, and the owner's "Save past broadcasts" switch. Files live
-- under RECORDINGS_DIR, named by these ids only; paths are never stored.

ALTER TABLE streams ADD COLUMN save_recordings boolean NOT NULL DEFAULT true;

CREATE TABLE recordings (
  id          uuid PRIMARY KEY,
  stream_id   uuid NOT NULL REFERENCES streams (id) ON DELETE CASCADE,
  -- the channel's title when the session went live
  title       text NOT NULL DEFAULT '',
  -- container of the live file: 'mp4' (H.264) or 'webm' (VP8)
  container   text NOT NULL CHECK (container IN ('mp4', 'webm')),
  started_at  timestamptz NOT NULL DEFAULT now(),
  -- NULL while being written (or until startup recovery repairs it)
  ended_at    timestamptz,
  duration_ms integer NOT NULL DEFAULT 0 CHECK (duration_ms >= 0),
  -- bytes on disk (live file + download file + poster), for the quota
  bytes       bigint NOT NULL DEFAULT 0 CHECK (bytes >= 0),
  -- the progressive download file has been built
  download_ready boolean NOT NULL DEFAULT false,
  has_poster  boolean NOT NULL DEFAULT false
);

CREATE INDEX recordings_stream_idx ON recordings (stream_id, started_at DESC);
CREATE INDEX recordings_started_idx ON recordings (started_at);

CREATE TABLE clips (
  id          uuid PRIMARY KEY,
  stream_id   uuid NOT NULL REFERENCES streams (id) ON DELETE CASCADE,
  -- who cut it; the clip stays when its creator's account goes
  creator_id  uuid REFERENCES users (id) ON DELETE SET NULL,
  container   text NOT NULL CHECK (container IN ('mp4', 'webm')),
  duration_ms integer NOT NULL CHECK (duration_ms >= 0),
  bytes       bigint NOT NULL DEFAULT 0 CHECK (bytes >= 0),
  has_poster  boolean NOT NULL DEFAULT false,
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX clips_stream_idx ON clips (stream_id, created_at DESC);
CREATE INDEX clips_creator_idx ON clips (creator_id, created_at DESC);
CREATE INDEX clips_created_idx ON clips (created_at);
