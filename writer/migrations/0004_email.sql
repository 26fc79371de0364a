-- 0004_email: what the Gmail path needs beyond 0002 (docs/topology.md "With the enricher").
-- Idempotent; no BEGIN/COMMIT (sb_migrate runs each file in its own transaction).

-- The enricher looks a push's emailAddress up, and the writer advances the checkpoint,
-- by lower(email): Gmail reports the address in whatever case the mailbox was connected
-- with. Not UNIQUE: a CRM may already hold two spellings of one address, and a failing
-- migration would stop the writer.
CREATE INDEX IF NOT EXISTS mailboxes_email_lower_idx ON mailboxes (lower(email));

-- 'active', or 'reauth_required' once Google refused the refresh token (invalid_grant):
-- the mailbox must be connected again. Whoever stores a new refresh token sets it back.
COMMENT ON COLUMN mailboxes.status IS
    'active | reauth_required (the enricher got invalid_grant; reconnect the mailbox)';
COMMENT ON COLUMN mailboxes.history_id IS
    'Gmail history checkpoint: the enricher reads history.list from here; the writer only '
    'moves it forward (GREATEST) in the transaction that stores the e-mails';
