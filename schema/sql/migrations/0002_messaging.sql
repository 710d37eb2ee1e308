-- hogsend schema migration 2: what messaging shares — the outbox's columns, lists,
-- subscriptions and suppressions.
--
-- Journeys and campaigns write `messages` (the outbox); delivery moves them through
-- `queued → sending → sent | failed | bounced`. Who may receive a message is decided when
-- the row is created (docs/language.md, "Who receives a message"):
-- an email, not suppressed, not unsubscribed from everything, subscribed to the category's
-- list (explicitly or by the list's default). FROZEN once committed, like every migration.
-- Every per-contact table carries `user_key`, so it can be distributed by it.

------------------------------------------------------------------------------------------
-- The outbox: the columns the contract's `messages` view names.
------------------------------------------------------------------------------------------
alter table {{ s }}.messages
  add column campaign_id     text,
  -- the journey step that created it (stable step id), null for campaigns
  add column step_id         text,
  -- a declared list id or 'transactional'
  add column category        text,
  -- why a `skipped` message was not sent: no_email, suppressed, unsubscribed_all,
  -- unsubscribed:<list>, not_subscribed:<list>
  add column skip_reason     text,
  -- the rendered subject (filled by delivery)
  add column subject         text,
  -- the provider's message id (SMTP Message-ID or the HTTP provider's id)
  add column provider_id     text,
  add column attempts        integer not null default 0,
  -- the earliest instant delivery may try again (null: now)
  add column next_attempt_at timestamptz,
  add column last_error      text,
  add column updated_at      timestamptz not null default now();
alter table {{ s }}.messages
  add constraint messages_status_known
  check (status in ('queued', 'sending', 'sent', 'skipped', 'failed', 'bounced', 'complained', 'cancelled'));
-- Exactly one message per (run, step) and per (campaign, contact), however often a pass runs.
create unique index messages_run_step on {{ s }}.messages (run_id, step_id)
  where run_id is not null;
create unique index messages_campaign_contact on {{ s }}.messages (campaign_id, user_key)
  where campaign_id is not null;
-- Delivery's queue: the queued messages in order.
create index messages_queued on {{ s }}.messages (id) where status = 'queued';

------------------------------------------------------------------------------------------
-- Lists (subscription categories), maintained by `migrate` from the project's `list` blocks.
------------------------------------------------------------------------------------------
create table {{ s }}.lists (
  id                 text primary key check (id ~ '^[a-z][a-z0-9_]{0,47}$'),
  name               text,
  description        text,
  -- `default subscribed` (opt-out) when true, `default unsubscribed` (opt-in) when false
  default_subscribed boolean not null default true,
  deployed_at        timestamptz not null default now()
);

-- A contact's explicit choice per list; no row means the list's default. The row with
-- list_id '*' and status 'unsubscribed' is "unsubscribed from everything non-transactional".
-- Writable by users (imports, their own preference centres).
create table {{ s }}.subscriptions (
  user_key   text not null,
  list_id    text not null,
  status     text not null check (status in ('subscribed', 'unsubscribed')),
  changed_at timestamptz not null default now(),
  -- who changed it: api, unsubscribe_link, one_click, preferences, import, sql, …
  source     text not null default 'sql',
  primary key (user_key, list_id)
);
create index subscriptions_list on {{ s }}.subscriptions (list_id, status, user_key);

-- Addresses never mailed (non-transactional and transactional alike). `email` is stored
-- lower-cased and trimmed; compare with lower(btrim(contacts.email)).
create table {{ s }}.suppressions (
  email      text primary key check (email = lower(btrim(email)) and email <> ''),
  reason     text not null check (reason in ('bounce', 'complaint', 'manual')),
  created_at timestamptz not null default now()
);
