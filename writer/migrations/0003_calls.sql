-- 0003_calls: one communications row per RingCentral telephony session (SPEC "Matching
-- and mapping", Calls).
--
-- RingCentral sends many partial events per call (Setup, Proceeding, Answered, Hold,
-- VoiceMail, Disconnected ...), retried, duplicated and out of order. The writer never
-- merges an event into the row, which would make the row depend on the arrival order.
-- It records each party state once in call_party_events (keyed by session, party and
-- RingCentral's per-session sequence number) and derives the whole row again from every
-- state stored for the session (sb_call_derive). The row is therefore a function of the
-- SET of events: the same for every order, duplication and split across batches.
--
-- Two writers at once: sb_call_event takes a transaction-scoped advisory lock per
-- session before it derives the row, and a VOLATILE plpgsql function takes a fresh
-- snapshot for each statement (READ COMMITTED), so the second writer waits for the
-- first one's COMMIT and then sees its states. The first call event of a batch locks
-- every call session of the batch in one sorted pass (sb_call_lock), so two writers
-- whose batches hold the same sessions in opposite orders cannot deadlock.
-- Only CREATE ... IF NOT EXISTS and OR REPLACE: running this file twice is harmless.

CREATE TABLE IF NOT EXISTS call_party_events (
    telephony_session_id text NOT NULL,
    party_id text NOT NULL,
    sequence bigint NOT NULL,             -- RingCentral's order of events in the session
    event_time timestamptz NOT NULL,      -- body.eventTime
    status_code text NOT NULL,            -- parties[].status.code as sent ("Answered" ...)
    direction text NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    ours boolean NOT NULL,                -- the party is one of our extensions
    from_address text,                    -- E.164 when a phone number, else the raw text
    to_address text,
    missed boolean NOT NULL DEFAULT false, -- parties[].missedCall
    event_id text,                        -- the webhook event that first carried it
    stored_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (telephony_session_id, party_id, sequence)
);

-- Lock the sessions of a batch in one sorted pass (keys: a constant class, "SB" 0003,
-- and hashtext of the session; a collision only serialises two calls a little more).
-- Locks taken in the same global order cannot form a cycle.
CREATE OR REPLACE FUNCTION sb_call_lock(p_sessions jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    h integer;
BEGIN
    FOR h IN SELECT DISTINCT hashtext(s) FROM jsonb_array_elements_text(
                 CASE WHEN jsonb_typeof(p_sessions) = 'array' THEN p_sessions
                      ELSE '[]'::jsonb END) AS s
             ORDER BY 1 LOOP
        PERFORM pg_advisory_xact_lock(1396834307, h);
    END LOOP;
END
$$;

-- Derive the call's communications row from every stored state of the session, insert
-- or update it (only when a value differs, so a duplicate event changes nothing and
-- notifies nobody) and return its id.
--   started_at   earliest event of any party
--   answered_at  earliest Answered state of our parties
--   ended_at     when every party of ours has reached a final state (Disconnected,
--                Gone, or flagged missedCall): the latest of those final states
--   duration     answered to ended in seconds; 0 if never answered; NULL while talking
--   missed       inbound, never answered, and over (or gone to voicemail)
--   status       voicemail (never answered, a VoiceMail state), missed, completed,
--                in_progress (answered, not over) or ringing
--   from/to      the first numbers seen (lowest sequence), as RingCentral reports them
--                for our party: inbound from = the caller, outbound to = the callee
--   customer     the lowest id whose phone matches the caller (inbound) or callee
-- "Our parties" are those with an extensionId; a session where none has one (an
-- account-level event shape) is derived from all of its parties.
CREATE OR REPLACE FUNCTION sb_call_derive(p_session text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
BEGIN
    WITH ev AS (
        SELECT * FROM call_party_events WHERE telephony_session_id = p_session
    ), mine AS (
        SELECT * FROM ev WHERE ours OR NOT EXISTS (SELECT 1 FROM ev WHERE ours)
    ), latest AS (
        SELECT DISTINCT ON (party_id) party_id, event_time,
               status_code IN ('Disconnected', 'Gone') OR missed AS final
        FROM mine ORDER BY party_id, sequence DESC
    ), facts AS (
        SELECT
            (SELECT min(event_time) FROM ev) AS started_at,
            (SELECT min(event_time) FROM mine WHERE status_code = 'Answered') AS answered_at,
            (SELECT CASE WHEN bool_and(final) THEN max(event_time) END FROM latest) AS ended_at,
            (SELECT bool_or(status_code IN ('VoiceMail', 'VoiceMailScreening')) FROM mine)
                AS voicemail,
            (SELECT direction FROM mine ORDER BY sequence, party_id LIMIT 1) AS direction,
            (SELECT from_address FROM mine WHERE from_address IS NOT NULL
              ORDER BY sequence, party_id LIMIT 1) AS from_address,
            (SELECT to_address FROM mine WHERE to_address IS NOT NULL
              ORDER BY sequence, party_id LIMIT 1) AS to_address
    ), derived AS (
        SELECT f.*,
            f.direction = 'inbound' AND f.answered_at IS NULL
                AND (f.ended_at IS NOT NULL OR f.voicemail) AS missed,
            CASE
                WHEN f.answered_at IS NULL AND f.voicemail THEN 'voicemail'
                WHEN f.ended_at IS NOT NULL AND f.answered_at IS NULL
                     AND f.direction = 'inbound' THEN 'missed'
                WHEN f.ended_at IS NOT NULL THEN 'completed'
                WHEN f.answered_at IS NOT NULL THEN 'in_progress'
                ELSE 'ringing'
            END AS status,
            CASE
                WHEN f.answered_at IS NULL THEN 0
                WHEN f.ended_at IS NULL THEN NULL
                ELSE round(GREATEST(0, extract(epoch FROM f.ended_at - f.answered_at)), 3)
            END AS duration_seconds,
            (SELECT min(c.id) FROM customers c
              WHERE c.phone_e164 = CASE WHEN f.direction = 'inbound' THEN f.from_address
                                        ELSE f.to_address END) AS customer_id
        FROM facts f
        WHERE f.direction IS NOT NULL
    )
    INSERT INTO communications AS c (customer_id, channel, direction, provider, external_id,
        from_address, to_address, status, occurred_at, started_at, answered_at, ended_at,
        duration_seconds, missed)
    SELECT r.customer_id, 'call', r.direction, 'ringcentral', p_session, r.from_address,
        r.to_address, r.status, r.started_at, r.started_at, r.answered_at, r.ended_at,
        r.duration_seconds, r.missed
    FROM derived r
    ON CONFLICT (provider, channel, external_id) DO UPDATE SET
        customer_id = EXCLUDED.customer_id, direction = EXCLUDED.direction,
        from_address = EXCLUDED.from_address, to_address = EXCLUDED.to_address,
        status = EXCLUDED.status, occurred_at = EXCLUDED.occurred_at,
        started_at = EXCLUDED.started_at, answered_at = EXCLUDED.answered_at,
        ended_at = EXCLUDED.ended_at, duration_seconds = EXCLUDED.duration_seconds,
        missed = EXCLUDED.missed
    WHERE (c.customer_id, c.direction, c.from_address, c.to_address, c.status,
           c.occurred_at, c.started_at, c.answered_at, c.ended_at, c.duration_seconds,
           c.missed)
          IS DISTINCT FROM
          (EXCLUDED.customer_id, EXCLUDED.direction, EXCLUDED.from_address,
           EXCLUDED.to_address, EXCLUDED.status, EXCLUDED.occurred_at, EXCLUDED.started_at,
           EXCLUDED.answered_at, EXCLUDED.ended_at, EXCLUDED.duration_seconds,
           EXCLUDED.missed)
    RETURNING c.id INTO v_id;
    IF v_id IS NULL THEN -- nothing changed: the row is there as it should be
        SELECT id INTO v_id FROM communications
        WHERE provider = 'ringcentral' AND channel = 'call' AND external_id = p_session;
    END IF;
    RETURN v_id;
END
$$;

-- One telephony-session event: its webhook_events row plus its party states, and the
-- call row derived again. p_call is what writer/map_call.c made of the body:
--   {"session": "s-...", "parties": [{"party_id", "sequence", "event_time",
--    "status_code", "direction", "ours", "from_address", "to_address", "missed"}]}
-- p_lock_sessions: every call session of the batch (the first call statement of a
-- batch gets it, the others NULL). Returns the stored outcome, 'stored' when a party
-- state was new and 'duplicate' when all were known; no row when the event id is
-- already in webhook_events (a redelivery, which stores nothing again).
CREATE OR REPLACE FUNCTION sb_call_event(p_event_id text, p_source text,
    p_received_ms bigint, p_headers jsonb, p_body bytea, p_call jsonb,
    p_lock_sessions jsonb)
RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    v_session text := p_call->>'session';
    v_new bigint;
    v_comm bigint;
BEGIN
    IF EXISTS (SELECT 1 FROM webhook_events w WHERE w.event_id = p_event_id) THEN
        RETURN;
    END IF;
    IF p_lock_sessions IS NOT NULL THEN
        PERFORM sb_call_lock(p_lock_sessions);
    END IF;
    PERFORM pg_advisory_xact_lock(1396834307, hashtext(v_session)); -- held already, or new
    INSERT INTO call_party_events (telephony_session_id, party_id, sequence, event_time,
        status_code, direction, ours, from_address, to_address, missed, event_id)
    SELECT v_session, p.party_id, p.sequence, p.event_time, p.status_code, p.direction,
        COALESCE(p.ours, false), p.from_address, p.to_address, COALESCE(p.missed, false),
        p_event_id
    FROM jsonb_to_recordset(p_call->'parties') AS p(party_id text, sequence bigint,
        event_time timestamptz, status_code text, direction text, ours boolean,
        from_address text, to_address text, missed boolean)
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS v_new = ROW_COUNT;
    -- A new statement, so a new snapshot: states another writer committed while we
    -- waited for the lock are part of the derivation.
    v_comm := sb_call_derive(v_session);
    RETURN QUERY
    INSERT INTO webhook_events AS w (event_id, source, received_at, outcome,
        communication_id, headers, body)
    VALUES (p_event_id, p_source, to_timestamp(p_received_ms / 1000.0),
        CASE WHEN v_new > 0 THEN 'stored' ELSE 'duplicate' END, v_comm, p_headers, p_body)
    ON CONFLICT (event_id) DO NOTHING
    RETURNING w.outcome;
END
$$;
