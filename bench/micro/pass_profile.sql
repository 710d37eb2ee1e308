-- One apply_changes over 2,000 new contacts that just opened the app, with the time of
-- every function of the pass. psql -v r=<a fresh number per run>.
set search_path = hogsend;
set track_functions = 'all';
insert into events (user_key, event, occurred_at)
select 'm' || :r || '-' || g, 'app_opened', now() from generate_series(1, 2000) g;
begin;
select hogsend.apply_changes((select array_agg('m' || :r || '-' || g) from generate_series(1, 2000) g), now())->'ms';
select funcname, calls, round(total_time::numeric,1) total, round(self_time::numeric,1) self from pg_stat_xact_user_functions order by total_time desc limit 25;
commit;
