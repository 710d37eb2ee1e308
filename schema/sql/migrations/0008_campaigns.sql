-- hogsend schema migration 8: campaigns (broadcasts). The table `broadcasts` holds one row
-- per campaign (the engine's view `campaigns` adds each one's progress), whether a
-- `campaign` block deployed it (`source = 'code'`) or `POST /v1/campaigns` created it
-- (`source = 'api'`). A campaign's recipients are its rows in `messages` (`campaign_id`,
-- one per contact by the unique index `messages_campaign_contact`): the audience is frozen
-- by the one insert that creates them. The campaign pass is in the engine file
-- campaigns.sql. FROZEN once committed, like every migration.
create table {{ s }}.broadcasts (
  -- the `campaign` block's id, or a uuid (text) for a campaign created through the API
  id              text primary key,
  name            text not null,
  source          text not null check (source in ('code', 'api')),
  audience_kind   text not null check (audience_kind in ('bucket', 'list')),
  audience_id     text not null,
  template        text not null,
  -- when it is due: an instant, or a wall-clock time in each contact's zone (the zone named
  -- by the contact property at `zone_path`; the project's zone when missing or invalid)
  send_at         timestamptz,
  send_at_local   timestamp,
  zone_path       text[],
  -- false: held, started only by `POST /v1/campaigns/{id}/start` (a code campaign with no
  -- `send_at`, or whose `send_at` was already past when it was first deployed)
  auto_start      boolean not null default true,
  status          text not null default 'scheduled'
                  check (status in ('scheduled', 'sending', 'sent', 'cancelled', 'failed')),
  idempotency_key text unique,
  -- failed attempts to start (freeze the audience and queue its messages), the last error,
  -- and when the pass may try again; at 5 the campaign ends `failed`
  attempts        integer not null default 0,
  last_error      text,
  retry_at        timestamptz,
  -- the code definition as last deployed (what `_sync_campaigns` compares)
  definition      jsonb,
  created_at      timestamptz not null default now(),
  updated_at      timestamptz not null default now(),
  started_at      timestamptz,
  completed_at    timestamptz,
  check ((send_at is null) or (send_at_local is null))
);
-- The campaign pass looks at the campaigns that are not finished.
create index broadcasts_open on {{ s }}.broadcasts (status) where status in ('scheduled', 'sending');
