-- hogsend schema migration 7: what email delivery needs beyond the shared outbox — the
-- deployed templates, the delivery lease's index, and the daemon's link-signing secret for
-- development. FROZEN once committed, like every migration.

-- The project's templates as `migrate` deployed them (front matter and Jinja bodies, the
-- JSON of `hogsend_mail::DeployedTemplate`): delivery renders these, so what is sent is what
-- was deployed, whatever the files on the daemon's disk say.
create table {{ s }}.templates (
  id          text primary key,
  -- a declared list id or 'transactional'
  category    text not null,
  definition  jsonb not null,
  deployed_at timestamptz not null default now()
);

-- Delivery claims a message by setting status 'sending' and `next_attempt_at` to the end of
-- its lease; a claim whose lease ran out (its worker died) is claimed again through this.
create index messages_sending_lease on {{ s }}.messages (next_attempt_at) where status = 'sending';
-- Retries wait in 'queued' with a future `next_attempt_at`.
create index messages_queued_due on {{ s }}.messages (next_attempt_at, id)
  where status = 'queued' and next_attempt_at is not null;

-- The secret that signs unsubscribe and preferences links when HOGSEND_SECRET is not set
-- (the `log` provider only: mail that leaves the machine needs HOGSEND_SECRET). One row,
-- created by the daemon on first use.
create table {{ s }}.link_secret (
  singleton  boolean primary key default true check (singleton),
  secret     text not null,
  created_at timestamptz not null default now()
);
