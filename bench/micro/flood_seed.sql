-- Seeds a migrated flood.hog database as `hogsend-bench flood` seeds it (triggers off, then
-- the summaries rebuilt when the schema has them, one backfill tick). psql -v n=CONTACTS.
set search_path = hogsend;
set session_replication_role = replica;
insert into contacts (external_id, properties)
select 'c' || g, jsonb_build_object('plan', case when g % 5 = 0 then 'pro' else 'free' end)
  from generate_series(1, :n) g;
insert into events (user_key, event, occurred_at)
select 'c' || (1 + g % :n),
       (array['app_opened', 'app_opened', 'app_opened', 'search', 'export'])[1 + (g * 7) % 5],
       now() - (g % 2592000) * interval '1 second'
  from generate_series(1, :n * 10) g;
set session_replication_role = origin;
select case when to_regclass('hogsend.event_summaries') is not null then hogsend.rebuild_event_summaries() end;
analyze contacts; analyze events;
select hogsend.tick(now()) is not null as ticked;
vacuum analyze memberships;
