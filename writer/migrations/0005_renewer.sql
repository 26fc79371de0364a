-- 0005_renewer: what sb-renewer and sbctl need beyond 0002 (issue 6): the renewal state of
-- each Gmail watch and RingCentral subscription, kept in the rows themselves so that any
-- renewer replica can pick the work up. Idempotent; no BEGIN/COMMIT (sb_migrate runs each
-- file in its own transaction).

-- Gmail: when the last users.watch succeeded, how often it has failed since, and when the
-- next attempt is due (exponential backoff with jitter, computed by the renewer).
ALTER TABLE mailboxes ADD COLUMN IF NOT EXISTS watch_renewed_at timestamptz;
ALTER TABLE mailboxes ADD COLUMN IF NOT EXISTS renew_failures integer NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN IF NOT EXISTS renew_after timestamptz;
ALTER TABLE mailboxes ADD COLUMN IF NOT EXISTS last_error text;
COMMENT ON COLUMN mailboxes.refresh_token IS
    'OAuth refresh token: sealed ("v1:...", common/sb_secretbox.h, context '
    '"mailboxes.refresh_token:<email>") when SWITCHBOARD_SECRET_KEY is set';
COMMENT ON COLUMN mailboxes.watch_expires_at IS
    'expiration of the Gmail watch (users.watch); sb-renewer renews it RENEW_BEFORE ahead';

-- RingCentral. status is RingCentral's ('Active', 'Suspended', 'Blacklisted') or 'Retired'
-- once the renewer replaced the subscription by a new one (replaced_by). event_filters are
-- the filters we asked for (with "~"), so a re-created subscription asks for the same.
--
-- The verification token is a secret (SPEC: secrets never reach the database in clear).
-- verification_token holds it only sealed with SWITCHBOARD_SECRET_KEY ("v1:...", context
-- "ringcentral_subscriptions.verification_token:<id>"), so that a re-created subscription
-- gets the very same token; without a key it stays NULL and the renewer re-creates with
-- its own RINGCENTRAL_VERIFICATION_TOKEN (the value the verifier checks anyway).
-- verification_token_sha256 (hex SHA-256 of the token) lets both sides check that the
-- configured token is the one the subscription was made with, without storing it.
ALTER TABLE ringcentral_subscriptions ADD COLUMN IF NOT EXISTS verification_token text;
ALTER TABLE ringcentral_subscriptions ADD COLUMN IF NOT EXISTS verification_token_sha256 text;
ALTER TABLE ringcentral_subscriptions ADD COLUMN IF NOT EXISTS renewed_at timestamptz;
ALTER TABLE ringcentral_subscriptions ADD COLUMN IF NOT EXISTS checked_at timestamptz;
ALTER TABLE ringcentral_subscriptions ADD COLUMN IF NOT EXISTS renew_failures integer
    NOT NULL DEFAULT 0;
ALTER TABLE ringcentral_subscriptions ADD COLUMN IF NOT EXISTS renew_after timestamptz;
ALTER TABLE ringcentral_subscriptions ADD COLUMN IF NOT EXISTS last_error text;
ALTER TABLE ringcentral_subscriptions ADD COLUMN IF NOT EXISTS replaced_by text;
ALTER TABLE ringcentral_subscriptions ADD COLUMN IF NOT EXISTS retired_at timestamptz;

-- A token in clear cannot be written by mistake: only sealed values (or nothing).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                   WHERE conname = 'ringcentral_subscriptions_token_sealed') THEN
        ALTER TABLE ringcentral_subscriptions ADD CONSTRAINT
            ringcentral_subscriptions_token_sealed
            CHECK (verification_token IS NULL OR verification_token ~ '^v[0-9]+:');
    END IF;
END
$$;

COMMENT ON COLUMN ringcentral_subscriptions.status IS
    'RingCentral''s status (Active, Suspended, Blacklisted), or Retired: replaced by replaced_by';
