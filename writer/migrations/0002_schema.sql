-- 0002_schema: the tables of SPEC "What is stored".
-- Idempotent on its own (IF NOT EXISTS, OR REPLACE), and safe on a database where the
-- CRM created customers first with only id, name, phone and email: we add columns and
-- a trigger to it, never change what is there. No BEGIN/COMMIT here: sb_migrate runs
-- each file in its own transaction. Needs sb_e164() and sb_email_norm() from 0001.

-- Settings the database needs to know, written by sb_migrate at start
-- (default_country_code: DEFAULT_COUNTRY_CODE, used to normalise customers.phone).
CREATE TABLE IF NOT EXISTS sb_settings (
    key text PRIMARY KEY,
    value text
);

-- customers: the CRM's table; the pipeline only reads it. phone_e164 and email_norm are
-- derived by the trigger below so a match is one index probe whatever people typed.
CREATE TABLE IF NOT EXISTS customers (
    id bigserial PRIMARY KEY,
    name text,
    phone text,
    email text,
    created_at timestamptz DEFAULT now()
);
ALTER TABLE customers ADD COLUMN IF NOT EXISTS name text;
ALTER TABLE customers ADD COLUMN IF NOT EXISTS phone text;
ALTER TABLE customers ADD COLUMN IF NOT EXISTS email text;
ALTER TABLE customers ADD COLUMN IF NOT EXISTS created_at timestamptz DEFAULT now();
ALTER TABLE customers ADD COLUMN IF NOT EXISTS phone_e164 text;
ALTER TABLE customers ADD COLUMN IF NOT EXISTS email_norm text;
CREATE INDEX IF NOT EXISTS customers_phone_e164_idx ON customers (phone_e164);
CREATE INDEX IF NOT EXISTS customers_email_norm_idx ON customers (email_norm);

-- The CRM's own sessions fire this trigger, with their own search_path: pin ours, so
-- sb_e164 is found whatever they set. sb_e164 returns NULL for what is not a phone
-- number, so a CRM insert never fails because of us.
CREATE OR REPLACE FUNCTION sb_customers_normalise() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    NEW.phone_e164 := sb_e164(NEW.phone, COALESCE(
        (SELECT value FROM sb_settings WHERE key = 'default_country_code'), '1'));
    NEW.email_norm := sb_email_norm(NEW.email);
    RETURN NEW;
END
$$;
-- UPDATE OF phone, email: renaming a customer costs nothing; "UPDATE customers SET
-- phone = phone" (sb_migrate, when DEFAULT_COUNTRY_CODE changes) still fires it.
DROP TRIGGER IF EXISTS customers_normalise ON customers;
CREATE TRIGGER customers_normalise BEFORE INSERT OR UPDATE OF phone, email ON customers
    FOR EACH ROW EXECUTE FUNCTION sb_customers_normalise();

-- communications: one row per SMS, call or email, once (the unique key is the
-- provider's id, so redelivery and provider retries find the row that is there).
-- customer_id has no foreign key on purpose: customers belongs to the CRM, which must
-- stay free to delete a customer or to have created the table without a primary key.
CREATE TABLE IF NOT EXISTS communications (
    id bigserial PRIMARY KEY,
    customer_id bigint,
    channel text NOT NULL CHECK (channel IN ('sms', 'call', 'email')),
    direction text NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    provider text NOT NULL CHECK (provider IN ('ringcentral', 'gmail')),
    external_id text NOT NULL,
    thread_id text,
    from_address text,
    to_address text,
    subject text,
    body text,
    status text,
    occurred_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    answered_at timestamptz,
    ended_at timestamptz,
    duration_seconds numeric,
    missed boolean,
    CONSTRAINT communications_provider_channel_external_id_key
        UNIQUE (provider, channel, external_id)
);
CREATE INDEX IF NOT EXISTS communications_customer_occurred_idx
    ON communications (customer_id, occurred_at);

CREATE OR REPLACE FUNCTION sb_communications_touch() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;
DROP TRIGGER IF EXISTS communications_touch ON communications;
CREATE TRIGGER communications_touch BEFORE UPDATE ON communications
    FOR EACH ROW EXECUTE FUNCTION sb_communications_touch();

-- An application LISTENs on "communications" to see new SMS, calls and emails live.
-- PostgreSQL delivers a NOTIFY only when the transaction commits, so a listener never
-- hears of a row that is rolled back (SPEC: "after each commit").
CREATE OR REPLACE FUNCTION sb_communications_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('communications', json_build_object(
        'id', NEW.id, 'channel', NEW.channel, 'direction', NEW.direction,
        'customer_id', NEW.customer_id, 'op', TG_OP)::text);
    RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS communications_notify ON communications;
CREATE TRIGGER communications_notify AFTER INSERT OR UPDATE ON communications
    FOR EACH ROW EXECUTE FUNCTION sb_communications_notify();

-- webhook_events: exactly one row per acknowledged request. event_id is the ingress's
-- id (DESIGN "The event envelope") and the idempotency key of redelivery. headers are
-- redacted before they get here; body is the raw request, byte for byte.
CREATE TABLE IF NOT EXISTS webhook_events (
    id bigserial PRIMARY KEY,
    event_id text NOT NULL UNIQUE,
    source text NOT NULL
        CHECK (source IN ('ringcentral_sms', 'ringcentral_call', 'gmail_push')),
    received_at timestamptz NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now(),
    outcome text NOT NULL
        CHECK (outcome IN ('stored', 'duplicate', 'rejected', 'ignored', 'failed')),
    reason text,
    communication_id bigint,
    headers jsonb NOT NULL DEFAULT '{}',
    body bytea NOT NULL DEFAULT ''
);

-- mailboxes: connected Gmail mailboxes (used by the enricher and the renewer).
CREATE TABLE IF NOT EXISTS mailboxes (
    id bigserial PRIMARY KEY,
    email text NOT NULL UNIQUE,
    refresh_token text,
    history_id bigint,
    watch_expires_at timestamptz,
    status text NOT NULL DEFAULT 'active',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- ringcentral_subscriptions: webhook subscriptions the renewer keeps alive.
CREATE TABLE IF NOT EXISTS ringcentral_subscriptions (
    id text PRIMARY KEY,
    event_filters jsonb,
    address text,
    expires_at timestamptz,
    status text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
