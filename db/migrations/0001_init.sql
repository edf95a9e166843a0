-- whipcast initial schema. Forward-only: never edit an applied migration, add a new file.

CREATE TABLE users (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  username      text NOT NULL CHECK (length(username) BETWEEN 3 AND 32),
  password_hash text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_username_lower_key ON users (lower(username));

-- Session tokens are random 256-bit secrets; only their SHA-256 is stored.
CREATE TABLE sessions (
  token_hash  bytea PRIMARY KEY,
  user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);

-- One channel per user.
CREATE TABLE streams (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  owner_id    uuid NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
  title       text NOT NULL DEFAULT '' CHECK (length(title) <= 140),
  description text NOT NULL DEFAULT '' CHECK (length(description) <= 2000),
  status      text NOT NULL DEFAULT 'offline' CHECK (status IN ('live', 'offline')),
  started_at  timestamptz,
  ended_at    timestamptz,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX streams_live_idx ON streams (started_at DESC) WHERE status = 'live';

-- The active stream key of a channel. The key itself is never stored: only its
-- SHA-256 (for lookup) and the salt the server derives it from with its secret.
-- Rotation replaces the row, so the old key stops matching at once.
CREATE TABLE stream_keys (
  stream_id   uuid PRIMARY KEY REFERENCES streams (id) ON DELETE CASCADE,
  key_hash    bytea NOT NULL UNIQUE,
  salt        bytea NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- One chat room per channel; the room id is the stream id.
CREATE TABLE rooms (
  id                uuid PRIMARY KEY REFERENCES streams (id) ON DELETE CASCADE,
  is_public         boolean NOT NULL DEFAULT true,
  slow_mode_seconds integer NOT NULL DEFAULT 0 CHECK (slow_mode_seconds BETWEEN 0 AND 3600),
  created_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE chat_messages (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  room_id     uuid NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
  user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  body        text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  deleted_at  timestamptz,
  deleted_by  uuid REFERENCES users (id) ON DELETE SET NULL
);
CREATE INDEX chat_messages_room_id_idx ON chat_messages (room_id, id DESC);

-- A ban has no expiry; a timeout is a ban with one.
CREATE TABLE room_bans (
  room_id     uuid NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
  user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  expires_at  timestamptz,
  reason      text NOT NULL DEFAULT '',
  created_by  uuid REFERENCES users (id) ON DELETE SET NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (room_id, user_id)
);
