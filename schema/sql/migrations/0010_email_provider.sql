-- hogsend schema migration 10: what the `http` email provider and its webhooks need — an id
-- of this installation (the provider's idempotency keys must not collide between two
-- databases sending through one provider account), what the provider reported after
-- accepting a message (delivered, bounced, complained), and the lookup of a message by the
-- provider's id. FROZEN once committed, like every migration.

-- One row: a random id made when the schema is created. `Idempotency-Key` of the `http`
-- provider is `hogsend:<this id>:<message id>`.
create table {{ s }}.installation (
  singleton  boolean primary key default true check (singleton),
  id         uuid not null default gen_random_uuid(),
  created_at timestamptz not null default now()
);
insert into {{ s }}.installation default values;

-- What the provider's webhooks reported (docs/api.md, "Provider webhooks"). A bounce sets
-- status 'bounced' and a complaint 'complained' (never backwards: see the engine's
-- `record_provider_event`); a hard bounce or a complaint also suppresses the address.
alter table {{ s }}.messages
  add column delivered_at  timestamptz,
  add column bounced_at    timestamptz,
  -- 'hard' (the address does not exist: suppressed) or 'soft' (mailbox full, …: not)
  add column bounce_type   text check (bounce_type in ('hard', 'soft')),
  add column bounce_reason text,
  add column complained_at timestamptz;

-- Webhook events name a message by the provider's id.
create index messages_provider_id on {{ s }}.messages (provider_id) where provider_id is not null;
