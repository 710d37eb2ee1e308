-- hogsend schema migration 11: per-contact, per-event-name summaries. FROZEN once
-- committed, like every migration.
--
-- One row per (contact key, event name) with at least one event: how many there are and the
-- first and last `occurred_at`. Kept exactly equal to
--   select user_key, event, count(*), min(occurred_at), max(occurred_at)
--     from events where event not like 'bucket:%' and event not like 'hogsend:%'
--    group by 1, 2
-- by the events triggers (engine/capture.sql), so the matchers answer `did E`,
-- `did E within D` and `count E …` for the contacts a pass evaluates without reading their
-- events when the summary decides the atom (see compiler/src/plan/summary.rs). The engine's
-- own `bucket:`/`hogsend:` events are left out: criteria may not name them. The primary key
-- starts with the contact key, like every per-contact table.
create table {{ s }}.event_summaries (
  user_key text not null,
  event    text not null,
  n        bigint not null check (n > 0),
  first_at timestamptz not null,
  last_at  timestamptz not null,
  primary key (user_key, event)
);

-- The events already stored. Writers are held off until this migration's transaction
-- commits (the engine files that maintain the table are applied in the same transaction),
-- so no event is stored in between without being counted.
lock table {{ s }}.events in share mode;
insert into {{ s }}.event_summaries (user_key, event, n, first_at, last_at)
select user_key, event, count(*), min(occurred_at), max(occurred_at)
  from {{ s }}.events
 where event not like 'bucket:%' and event not like 'hogsend:%'
 group by user_key, event;
