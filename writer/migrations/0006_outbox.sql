-- 0006_outbox: staff replies and the conversation history (issue 10, docs/SENDER.md).
--   1. outbox: the replies the CRM application queues; sb-sender sends them through
--      RingCentral (SMS) or Gmail and records each sent message in communications.
--   2. communications.message_id / email_references: the RFC 5322 threading headers of
--      an e-mail, so that a reply carries In-Reply-To and References.
--   3. conversation(customer_id): every SMS, call and e-mail of a customer in time order.
--   4. Back-fill: a customer added (or given a new phone or e-mail) gets the earlier
--      unmatched communications of that phone or address, and the application hears it.
-- Idempotent (IF NOT EXISTS, OR REPLACE); no BEGIN/COMMIT (sb_migrate runs each file in
-- its own transaction). Needs 0002 (customers, communications) only.

-- ---- 2. threading headers of e-mails -------------------------------------------------------
-- Filled by the enricher for every e-mail it fetches and by sb-sender for every e-mail it
-- sends. email_references is the message's References header, or its In-Reply-To when it
-- has no References: what a reply puts before message_id in its own References.
ALTER TABLE communications ADD COLUMN IF NOT EXISTS message_id text;
ALTER TABLE communications ADD COLUMN IF NOT EXISTS email_references text;

-- ---- 1. outbox ------------------------------------------------------------------------------
-- The application inserts (channel, body and a recipient: customer_id, to_address or
-- in_reply_to); everything else has a default or is sb-sender's to fill. Rules of the
-- columns sb-sender writes (docs/SENDER.md "Exactly once"):
--   status      queued -> sending -> sent | failed; sending -> queued again after a
--               transient failure (next_attempt_at in the future)
--   to_address, from_address, subject, thread_id, message_id: when NULL, filled in
--               (from the customer, the replied-to communication, the configuration) by
--               the transaction that moves the row to 'sending', before any provider call;
--               a later attempt sends exactly what was recorded then
--   verify      set when an attempt may have reached the provider without us knowing its
--               outcome (a crash: 'after_crash'; a 5xx or a lost answer: 'after_error'):
--               the next attempt first looks for the message at the provider
--   sender_id, attempt_id: who sends this row now (a sender holds a session advisory lock
--               on its sender_id while it lives, so a dead sender's rows are recognised)
CREATE TABLE IF NOT EXISTS outbox (
    id bigserial PRIMARY KEY,
    idempotency_key text NOT NULL DEFAULT gen_random_uuid()::text,
    channel text NOT NULL CHECK (channel IN ('sms', 'email')),
    customer_id bigint,
    to_address text,
    from_address text,
    subject text,
    body text NOT NULL,
    in_reply_to bigint, -- communications.id this answers
    status text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'sending', 'sent', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    last_error text,
    external_id text,       -- the provider's message id once sent
    communication_id bigint, -- the communications row of the sent message
    thread_id text,
    message_id text,        -- e-mail: our Message-ID, the same for every attempt
    verify text CHECK (verify IN ('after_crash', 'after_error')),
    sender_id text,
    attempt_id text,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    first_sending_at timestamptz,
    sending_at timestamptz,
    sent_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT outbox_idempotency_key_key UNIQUE (idempotency_key),
    CONSTRAINT outbox_recipient
        CHECK (customer_id IS NOT NULL OR to_address IS NOT NULL OR in_reply_to IS NOT NULL)
);
CREATE INDEX IF NOT EXISTS outbox_queued_idx ON outbox (next_attempt_at, id)
    WHERE status = 'queued';
CREATE INDEX IF NOT EXISTS outbox_sending_idx ON outbox (sending_at) WHERE status = 'sending';
CREATE INDEX IF NOT EXISTS outbox_failed_idx ON outbox (id) WHERE status = 'failed';
CREATE INDEX IF NOT EXISTS outbox_external_id_idx ON outbox (channel, external_id)
    WHERE external_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS outbox_communication_idx ON outbox (communication_id)
    WHERE communication_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS outbox_customer_idx ON outbox (customer_id, created_at);

-- updated_at, and the application's "send it again": failed -> queued starts afresh
-- (attempts from 0, due now). A row that failed because its fate was unknown keeps a
-- look at the provider first (verify 'after_error': found there means sent, not twice).
CREATE OR REPLACE FUNCTION sb_outbox_touch() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    IF OLD.status = 'failed' AND NEW.status = 'queued' THEN
        NEW.attempts := 0;
        NEW.next_attempt_at := now();
        NEW.verify := CASE WHEN OLD.verify IS NOT NULL THEN 'after_error' END;
    END IF;
    RETURN NEW;
END
$$;
DROP TRIGGER IF EXISTS outbox_touch ON outbox;
CREATE TRIGGER outbox_touch BEFORE UPDATE ON outbox
    FOR EACH ROW EXECUTE FUNCTION sb_outbox_touch();

-- sb-sender LISTENs on "outbox": a queued row wakes it at once (it also polls, so a
-- NOTIFY lost while it was disconnected only costs the poll interval). Delivered at
-- COMMIT, like every NOTIFY, so the sender never sees a row that is not there.
CREATE OR REPLACE FUNCTION sb_outbox_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outbox', NEW.id::text);
    RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS outbox_notify_insert ON outbox;
CREATE TRIGGER outbox_notify_insert AFTER INSERT ON outbox
    FOR EACH ROW WHEN (NEW.status = 'queued') EXECUTE FUNCTION sb_outbox_notify();
DROP TRIGGER IF EXISTS outbox_notify_requeue ON outbox;
CREATE TRIGGER outbox_notify_requeue AFTER UPDATE OF status ON outbox
    FOR EACH ROW WHEN (NEW.status = 'queued' AND OLD.status <> 'queued')
    EXECUTE FUNCTION sb_outbox_notify();

-- The application LISTENs on "outbox_status" to show a reply as sent or failed.
CREATE OR REPLACE FUNCTION sb_outbox_status_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outbox_status', json_build_object(
        'id', NEW.id, 'status', NEW.status, 'channel', NEW.channel,
        'customer_id', NEW.customer_id, 'communication_id', NEW.communication_id,
        'attempts', NEW.attempts)::text);
    RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS outbox_status_notify ON outbox;
CREATE TRIGGER outbox_status_notify AFTER UPDATE OF status ON outbox
    FOR EACH ROW WHEN (NEW.status IN ('sent', 'failed') AND OLD.status <> NEW.status)
    EXECUTE FUNCTION sb_outbox_status_notify();

-- ---- 3. the timeline -------------------------------------------------------------------------
-- Every SMS, call and e-mail of a customer, oldest first (ties by id), with its direction
-- and status (and outbox_id when it was a reply sent from the outbox). Plain SQL
-- functions: the planner inlines them, so conditions and LIMIT reach the index below and
-- "SELECT * FROM conversation(42) LIMIT 50" or "conversation_page(42, before, 50)" read
-- 50 index entries, whatever the size of the table or of the customer's history.
-- (customer_id, occurred_at, id) gives the exact order, so no sort is needed; it
-- supersedes 0002's (customer_id, occurred_at), which is its prefix.
CREATE INDEX IF NOT EXISTS communications_customer_timeline_idx
    ON communications (customer_id, occurred_at, id);
DROP INDEX IF EXISTS communications_customer_occurred_idx;

CREATE OR REPLACE FUNCTION conversation(p_customer_id bigint)
RETURNS TABLE (id bigint, occurred_at timestamptz, channel text, direction text,
               status text, provider text, external_id text, thread_id text,
               from_address text, to_address text, subject text, body text,
               duration_seconds numeric, missed boolean, outbox_id bigint)
LANGUAGE sql STABLE AS $$
    SELECT c.id, c.occurred_at, c.channel, c.direction, c.status, c.provider,
           c.external_id, c.thread_id, c.from_address, c.to_address, c.subject, c.body,
           c.duration_seconds, c.missed,
           (SELECT min(o.id) FROM outbox o WHERE o.communication_id = c.id)
    FROM communications c
    WHERE c.customer_id = p_customer_id
    ORDER BY c.occurred_at, c.id
$$;

-- A page of the timeline for a UI, newest first: the p_limit communications before
-- p_before (NULL: the latest). The next page starts before the last row's occurred_at
-- (rows at the very same instant: ask again with p_before just after it and skip the ids
-- already shown, or page by conversation() with a WHERE on (occurred_at, id)).
CREATE OR REPLACE FUNCTION conversation_page(p_customer_id bigint,
                                             p_before timestamptz DEFAULT NULL,
                                             p_limit integer DEFAULT 50)
RETURNS TABLE (id bigint, occurred_at timestamptz, channel text, direction text,
               status text, provider text, external_id text, thread_id text,
               from_address text, to_address text, subject text, body text,
               duration_seconds numeric, missed boolean, outbox_id bigint)
LANGUAGE sql STABLE AS $$
    SELECT c.id, c.occurred_at, c.channel, c.direction, c.status, c.provider,
           c.external_id, c.thread_id, c.from_address, c.to_address, c.subject, c.body,
           c.duration_seconds, c.missed,
           (SELECT min(o.id) FROM outbox o WHERE o.communication_id = c.id)
    FROM communications c
    WHERE c.customer_id = p_customer_id
      AND c.occurred_at < COALESCE(p_before, 'infinity'::timestamptz)
    ORDER BY c.occurred_at DESC, c.id DESC
    LIMIT p_limit
$$;

-- ---- 4. back-fill ------------------------------------------------------------------------------
-- The first address of a to_address list ("a@x, b@y" -> "a@x"): outbound mail matches on
-- its first recipient (SPEC "Matching and mapping").
CREATE OR REPLACE FUNCTION sb_first_address(list text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT NULLIF(btrim(split_part(list, ',', 1)), '')
$$;

-- Unmatched rows by the address they match on, so a back-fill is an index probe, not a
-- scan of the whole history (partial: matched rows, the vast majority, are not in them).
CREATE INDEX IF NOT EXISTS communications_unmatched_from_idx ON communications (from_address)
    WHERE customer_id IS NULL;
CREATE INDEX IF NOT EXISTS communications_unmatched_to_idx
    ON communications (sb_first_address(to_address)) WHERE customer_id IS NULL;

-- Give customer p_id the unmatched communications of its phone and e-mail, with the
-- writer's rules: SMS and calls by E.164, e-mails by normalised address; inbound on the
-- sender, outbound on the (first) recipient. Only unmatched rows move: a row that
-- already has a customer keeps it. NOTIFY customers_backfill with the customer, the
-- number of rows and (up to 100 of) their ids; each row also sends its own
-- "communications" notification (op UPDATE). Returns the number of rows.
-- The trigger below calls it; an application may call it too, e.g. after a bulk import
-- or to close the race of a customer and their first message committed at once (each
-- transaction then misses the other's row).
CREATE OR REPLACE FUNCTION sb_backfill_customer(p_id bigint) RETURNS bigint
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_phone text;
    v_email text;
    v_n bigint;
    v_ids bigint[];
BEGIN
    SELECT phone_e164, email_norm INTO v_phone, v_email FROM customers WHERE id = p_id;
    IF v_phone IS NULL AND v_email IS NULL THEN
        RETURN 0;
    END IF;
    WITH m AS (
        SELECT c.id FROM communications c
        WHERE c.customer_id IS NULL AND v_phone IS NOT NULL AND c.from_address = v_phone
          AND c.channel IN ('sms', 'call') AND c.direction = 'inbound'
        UNION
        SELECT c.id FROM communications c
        WHERE c.customer_id IS NULL AND v_phone IS NOT NULL
          AND sb_first_address(c.to_address) = v_phone
          AND c.channel IN ('sms', 'call') AND c.direction = 'outbound'
        UNION
        SELECT c.id FROM communications c
        WHERE c.customer_id IS NULL AND v_email IS NOT NULL AND c.from_address = v_email
          AND c.channel = 'email' AND c.direction = 'inbound'
        UNION
        SELECT c.id FROM communications c
        WHERE c.customer_id IS NULL AND v_email IS NOT NULL
          AND sb_first_address(c.to_address) = v_email
          AND c.channel = 'email' AND c.direction = 'outbound'
    ), u AS (
        UPDATE communications c SET customer_id = p_id
        FROM m WHERE c.id = m.id AND c.customer_id IS NULL
        RETURNING c.id
    )
    SELECT count(*), (array_agg(u.id ORDER BY u.id))[1:100] INTO v_n, v_ids FROM u;
    IF v_n > 0 THEN
        PERFORM pg_notify('customers_backfill', json_build_object(
            'customer_id', p_id, 'count', v_n, 'communication_ids', v_ids)::text);
    END IF;
    RETURN v_n;
END
$$;

-- After sb_customers_normalise (a BEFORE trigger) has set phone_e164 and email_norm.
-- An update that leaves both normalised values as they were (a new spelling of the same
-- number, a renamed customer) moves nothing.
CREATE OR REPLACE FUNCTION sb_customers_backfill() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.phone_e164 IS NOT DISTINCT FROM OLD.phone_e164
       AND NEW.email_norm IS NOT DISTINCT FROM OLD.email_norm THEN
        RETURN NULL;
    END IF;
    PERFORM sb_backfill_customer(NEW.id);
    RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS customers_backfill ON customers;
CREATE TRIGGER customers_backfill AFTER INSERT OR UPDATE OF phone, email ON customers
    FOR EACH ROW EXECUTE FUNCTION sb_customers_backfill();
