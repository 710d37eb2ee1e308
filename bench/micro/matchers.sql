-- The six flood.hog matchers alone over 2,000 candidates (each the mean of 5 runs after a
-- warm-up, rolled back). psql -v kind=c: 2,000 of the contacts flood_seed.sql made.
set search_path = hogsend;
begin;
select hogsend._work_tables();
insert into _hs_cand select :'kind' || (g * 7 + 3) from generate_series(1, 2000) g;
analyze _hs_cand;
do $$
declare t timestamptz; b text; total interval := '0'; d interval;
begin
  foreach b in array array['active_user','power_user','went_dormant','searchers','exporters','pro_active'] loop
    delete from _hs_match;
    execute format('select hogsend.b_%s_match(now())', b);  -- warm
    t := clock_timestamp();
    for i in 1..5 loop
      delete from _hs_match;
      execute format('select hogsend.b_%s_match(now())', b);
    end loop;
    d := (clock_timestamp() - t) / 5;
    total := total + d;
    raise notice '% % ms', rpad(b, 14), round(extract(epoch from d)::numeric * 1000, 1);
  end loop;
  raise notice 'all six: % ms', round(extract(epoch from total)::numeric * 1000, 1);
end $$;
rollback;
