-- The application's OLTP schema (the CDC source). Idempotent; applied by
-- platform_assets.cdc.source.migrate (the stack on `up`, the simulator and the tests).
-- Every table has a primary key: MaterializedPostgreSQL needs one (or REPLICA IDENTITY FULL).

CREATE TABLE IF NOT EXISTS users (
    user_id     bigint PRIMARY KEY,
    email       text        NOT NULL,
    name        text        NOT NULL,
    country     text        NOT NULL,
    plan        text        NOT NULL DEFAULT 'free',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- An order is an immutable fact (amount, currency, user); only its status changes.
CREATE TABLE IF NOT EXISTS orders (
    order_id      bigint PRIMARY KEY,
    user_id       bigint      NOT NULL,
    amount_cents  bigint      NOT NULL CHECK (amount_cents >= 0),
    currency      text        NOT NULL DEFAULT 'USD',
    status        text        NOT NULL CHECK (status IN ('paid', 'refunded')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS orders_user_id ON orders (user_id);

-- A subscription starts on a plan; plan changes and cancellation update it in place.
CREATE TABLE IF NOT EXISTS subscriptions (
    subscription_id  bigint PRIMARY KEY,
    user_id          bigint      NOT NULL,
    plan             text        NOT NULL,
    mrr_cents        bigint      NOT NULL CHECK (mrr_cents >= 0),
    status           text        NOT NULL CHECK (status IN ('active', 'cancelled')),
    started_at       timestamptz NOT NULL DEFAULT now(),
    cancelled_at     timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS subscriptions_user_id ON subscriptions (user_id);

CREATE TABLE IF NOT EXISTS events (
    event_id     uuid PRIMARY KEY,
    user_id      bigint,
    occurred_at  timestamptz NOT NULL,
    event_name   text        NOT NULL,
    properties   jsonb       NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS events_occurred_at ON events (occurred_at);

-- One row, updated every minute by the heartbeat schedule: keeps the replication slot
-- moving on an idle source and lets lag be stated in seconds.
CREATE TABLE IF NOT EXISTS cdc_heartbeat (
    id       smallint PRIMARY KEY,
    beat_at  timestamptz NOT NULL
);
