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
  return null;
end $hs$;
create or replace trigger events_updated after update on {{ s }}.events
  referencing old table as old_rows new table as new_rows
  for each statement execute function {{ s }}._events_updated();

create or replace function {{ s }}._events_deleted() returns trigger language plpgsql as $hs$
begin
  insert into {{ s }}.changed_keys (user_key, kind, event)
  select distinct user_key, 'e', event from old_rows;
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

create or replace trigger events_truncated after truncate on {{ s }}.events
  for each statement execute function {{ s }}._truncated();
create or replace trigger contacts_truncated after truncate on {{ s }}.contacts
  for each statement execute function {{ s }}._truncated();
create or replace trigger messages_truncated after truncate on {{ s }}.messages
  for each statement execute function {{ s }}._truncated();
