-- hogsend engine: change capture.
--
-- Statement-level triggers with transition tables queue the keys every write touches in
-- `changed_keys`; TRUNCATE unsettles every bucket. Engine files are re-applied by every
-- `migrate` (`create or replace`), so a database always runs the binary's engine code.
-- `{{ s }}` is the validated schema name.

-- One pass over the statement's rows: the distinct (key, event) pairs are queued, and keys
-- without a contact get one (keyed as external_id). An entry is ready (`ready_at`, see
-- migration 4) at the instant of its events: no pass at an earlier instant can see them.
-- Events at or before the last tick's instant are ready for every later pass (none
-- evaluates earlier), so they share one entry per (key, event) with `ready_at` NULL; a
-- later event gets an entry per distinct instant, so that the first pass reaching each one
-- evaluates it. The engine's own `bucket:`/`hogsend:` events change no criteria (criteria
-- may not name them) and are skipped.
create or replace function {{ s }}._events_inserted() returns trigger language plpgsql as $hs$
begin
  -- The summaries (migration 11): additions commute, so an upsert per (key, event) is exact
  -- whatever order concurrent writers commit in; rows are taken in key order, so two
  -- inserting statements never wait for each other in a cycle.
  insert into {{ s }}.event_summaries as s (user_key, event, n, first_at, last_at)
  select n.user_key, n.event, count(*), min(n.occurred_at), max(n.occurred_at)
    from new_rows n
   where n.event not like 'bucket:%' and n.event not like 'hogsend:%'
   group by n.user_key, n.event
   order by n.user_key, n.event
  on conflict (user_key, event) do update
     set n        = s.n + excluded.n,
         first_at = least(s.first_at, excluded.first_at),
         last_at  = greatest(s.last_at, excluded.last_at);
  with touched as materialized (
    select distinct n.user_key, n.event,
           case when n.occurred_at > coalesce((select t.last_tick_at from {{ s }}.tick_state t limit 1),
                                              '-infinity')
                then n.occurred_at end as ready_at
      from new_rows n
     where n.event not like 'bucket:%' and n.event not like 'hogsend:%'
  ), created as (
    insert into {{ s }}.contacts (external_id)
    select distinct t.user_key from touched t
     where not exists (select 1 from {{ s }}.contacts c where c.user_key = t.user_key)
    on conflict (user_key) do nothing
  )
  insert into {{ s }}.changed_keys (user_key, kind, event, ready_at)
  select user_key, 'e', event, ready_at from touched;
  -- The journey inbox: every event some journey triggers on (bucket events included),
  -- considered exactly once by the first pass at or after its occurred_at.
  insert into {{ s }}.journey_inbox (user_key, event_id, event, occurred_at)
  select n.user_key, n.id, n.event, n.occurred_at from new_rows n
   where n.event in (select t.event from {{ s }}.journey_trigger_events t)
  on conflict do nothing;
  return null;
end $hs$;
create or replace trigger events_inserted after insert on {{ s }}.events
  referencing new table as new_rows for each statement execute function {{ s }}._events_inserted();

-- The summaries of the (key, event) pairs whose events a statement changed or removed
-- (`_hs_sum_gone`, filled by the update and delete triggers), plus the pairs it added to
-- (`_hs_sum_new`). A minimum or maximum cannot be un-merged, so the pairs that lost events
-- are recomputed from `events`; the pairs that only gained are upserted like inserts.
-- Exact under concurrency: the existing rows of every pair are locked first, in key order;
-- the recount is a later statement, so its snapshot already holds every writer that
-- updated one of those rows before us, and a writer that updates one after us adds its own
-- events (which the recount could not see) on top.
create or replace function {{ s }}._summaries_fix() returns void language plpgsql as $hs$
begin
  perform 1 from {{ s }}.event_summaries s
   where (s.user_key, s.event) in (select g.user_key, g.event from _hs_sum_gone g
                                    union select a.user_key, a.event from _hs_sum_new a)
   order by s.user_key, s.event
     for update;
  insert into {{ s }}.event_summaries as s (user_key, event, n, first_at, last_at)
  select a.user_key, a.event, a.n, a.first_at, a.last_at
    from _hs_sum_new a
   where not exists (select 1 from _hs_sum_gone g
                      where g.user_key = a.user_key and g.event = a.event)
   order by a.user_key, a.event
  on conflict (user_key, event) do update
     set n        = s.n + excluded.n,
         first_at = least(s.first_at, excluded.first_at),
         last_at  = greatest(s.last_at, excluded.last_at);
  insert into {{ s }}.event_summaries as s (user_key, event, n, first_at, last_at)
  select g.user_key, g.event, x.n, x.first_at, x.last_at
    from _hs_sum_gone g
   cross join lateral (
         select count(*) as n, min(e.occurred_at) as first_at, max(e.occurred_at) as last_at
           from {{ s }}.events e
          where e.user_key = g.user_key and e.event = g.event) x
   where x.n > 0
   order by g.user_key, g.event
  on conflict (user_key, event) do update
     set n = excluded.n, first_at = excluded.first_at, last_at = excluded.last_at;
  delete from {{ s }}.event_summaries s
   using _hs_sum_gone g
   where s.user_key = g.user_key and s.event = g.event
     and not exists (select 1 from {{ s }}.events e
                      where e.user_key = g.user_key and e.event = g.event);
  delete from _hs_sum_gone;
  delete from _hs_sum_new;
end $hs$;

-- The session's work tables of `_summaries_fix`.
create or replace function {{ s }}._summaries_work() returns void language plpgsql as $hs$
begin
  if to_regclass('pg_temp._hs_sum_gone') is null then
    create temp table _hs_sum_gone (user_key text, event text) on commit delete rows;
    create temp table _hs_sum_new (user_key text, event text, n bigint,
      first_at timestamptz, last_at timestamptz) on commit delete rows;
  end if;
end $hs$;

-- Rebuilds every summary from `events`: after a load that bypassed the triggers
-- (`session_replication_role = replica`, `disable trigger user`). Holds writers off while it
-- counts. Returns the number of summary rows.
create or replace function {{ s }}.rebuild_event_summaries() returns bigint
language plpgsql as $hs$
declare
  rows bigint;
begin
  lock table {{ s }}.events in share mode;
  truncate {{ s }}.event_summaries;
  insert into {{ s }}.event_summaries (user_key, event, n, first_at, last_at)
  select user_key, event, count(*), min(occurred_at), max(occurred_at)
    from {{ s }}.events
   where event not like 'bucket:%' and event not like 'hogsend:%'
   group by user_key, event;
  get diagnostics rows = row_count;
  return rows;
end $hs$;

-- The new versions are ready at their `occurred_at` (as inserted events are); the old ones
-- at once (an event that is gone or moved is gone at every instant).
create or replace function {{ s }}._events_updated() returns trigger language plpgsql as $hs$
begin
  insert into {{ s }}.changed_keys (user_key, kind, event, ready_at)
  select user_key, 'e', event,
         case when occurred_at > coalesce((select t.last_tick_at from {{ s }}.tick_state t limit 1),
                                          '-infinity')
              then occurred_at end
    from new_rows
  union select user_key, 'e', event, null from old_rows;
  -- Summaries: only rows whose key, name or instant changed matter (a merge's re-key).
  perform {{ s }}._summaries_work();
  with gone as (
    select o.id, o.user_key, o.event, o.occurred_at from old_rows o
    except all
    select n.id, n.user_key, n.event, n.occurred_at from new_rows n
  )
  insert into _hs_sum_gone (user_key, event)
  select distinct g.user_key, g.event from gone g
   where g.event not like 'bucket:%' and g.event not like 'hogsend:%';
  with added as (
    select n.id, n.user_key, n.event, n.occurred_at from new_rows n
    except all
    select o.id, o.user_key, o.event, o.occurred_at from old_rows o
  )
  insert into _hs_sum_new (user_key, event, n, first_at, last_at)
  select a.user_key, a.event, count(*), min(a.occurred_at), max(a.occurred_at) from added a
   where a.event not like 'bucket:%' and a.event not like 'hogsend:%'
   group by a.user_key, a.event;
  perform {{ s }}._summaries_fix();
  return null;
end $hs$;
create or replace trigger events_updated after update on {{ s }}.events
  referencing old table as old_rows new table as new_rows
  for each statement execute function {{ s }}._events_updated();

create or replace function {{ s }}._events_deleted() returns trigger language plpgsql as $hs$
begin
  insert into {{ s }}.changed_keys (user_key, kind, event)
  select distinct user_key, 'e', event from old_rows;
  perform {{ s }}._summaries_work();
  insert into _hs_sum_gone (user_key, event)
  select distinct o.user_key, o.event from old_rows o
   where o.event not like 'bucket:%' and o.event not like 'hogsend:%';
  perform {{ s }}._summaries_fix();
  return null;
end $hs$;
create or replace trigger events_deleted after delete on {{ s }}.events
  referencing old table as old_rows for each statement execute function {{ s }}._events_deleted();

create or replace function {{ s }}._contacts_inserted() returns trigger language plpgsql as $hs$
begin
  insert into {{ s }}.changed_keys (user_key, kind) select user_key, 'x' from new_rows;
  return null;
end $hs$;
create or replace trigger contacts_inserted after insert on {{ s }}.contacts
  referencing new table as new_rows for each statement execute function {{ s }}._contacts_inserted();

create or replace function {{ s }}._contacts_updated() returns trigger language plpgsql as $hs$
begin
  insert into {{ s }}.changed_keys (user_key, kind)
  select n.user_key,
         case when n.deleted_at is distinct from o.deleted_at
                or n.user_key is distinct from o.user_key then 'x' else 'p' end
    from new_rows n join old_rows o on o.id = n.id
   where n.properties is distinct from o.properties
      or n.deleted_at is distinct from o.deleted_at
      or n.user_key is distinct from o.user_key
  union
  select o.user_key, 'x' from new_rows n join old_rows o on o.id = n.id
   where n.user_key is distinct from o.user_key;
  return null;
end $hs$;
create or replace trigger contacts_updated after update on {{ s }}.contacts
  referencing old table as old_rows new table as new_rows
  for each statement execute function {{ s }}._contacts_updated();

create or replace function {{ s }}._contacts_deleted() returns trigger language plpgsql as $hs$
begin
  insert into {{ s }}.changed_keys (user_key, kind) select distinct user_key, 'x' from old_rows;
  return null;
end $hs$;
create or replace trigger contacts_deleted after delete on {{ s }}.contacts
  referencing old table as old_rows for each statement execute function {{ s }}._contacts_deleted();

-- `opened T` / `clicked T` read the engaged (opened or clicked) messages: queue the keys of
-- the engaged rows a statement adds, and of those it changes or removes (an open that is
-- reset, a message purged by retention), whose old rows may be what made an atom true.
create or replace function {{ s }}._messages_changed() returns trigger language plpgsql as $hs$
begin
  insert into {{ s }}.changed_keys (user_key, kind)
  select distinct n.user_key, 'm' from new_rows n
   where n.opened_at is not null or n.clicked_at is not null;
  return null;
end $hs$;
create or replace function {{ s }}._messages_updated() returns trigger language plpgsql as $hs$
begin
  insert into {{ s }}.changed_keys (user_key, kind)
  select n.user_key, 'm' from new_rows n where n.opened_at is not null or n.clicked_at is not null
  union
  select o.user_key, 'm' from old_rows o where o.opened_at is not null or o.clicked_at is not null;
  return null;
end $hs$;
create or replace function {{ s }}._messages_deleted() returns trigger language plpgsql as $hs$
begin
  insert into {{ s }}.changed_keys (user_key, kind)
  select distinct o.user_key, 'm' from old_rows o
   where o.opened_at is not null or o.clicked_at is not null;
  return null;
end $hs$;
create or replace trigger messages_inserted after insert on {{ s }}.messages
  referencing new table as new_rows for each statement execute function {{ s }}._messages_changed();
create or replace trigger messages_updated after update on {{ s }}.messages
  referencing old table as old_rows new table as new_rows
  for each statement execute function {{ s }}._messages_updated();
create or replace trigger messages_deleted after delete on {{ s }}.messages
  referencing old table as old_rows for each statement execute function {{ s }}._messages_deleted();

-- TRUNCATE leaves no rows to queue: every bucket is re-derived from scratch instead.
create or replace function {{ s }}._truncated() returns trigger language plpgsql as $hs$
begin
  update {{ s }}.buckets set settled_fingerprint = null;
  return null;
end $hs$;

-- Truncating the events empties their summaries too.
create or replace function {{ s }}._events_truncated() returns trigger language plpgsql as $hs$
begin
  truncate {{ s }}.event_summaries;
  update {{ s }}.buckets set settled_fingerprint = null;
  return null;
end $hs$;

create or replace trigger events_truncated after truncate on {{ s }}.events
  for each statement execute function {{ s }}._events_truncated();
create or replace trigger contacts_truncated after truncate on {{ s }}.contacts
  for each statement execute function {{ s }}._truncated();
create or replace trigger messages_truncated after truncate on {{ s }}.messages
  for each statement execute function {{ s }}._truncated();
