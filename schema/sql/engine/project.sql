-- hogsend engine: the deploy step, `_sync_project` (called by the generated project.sql).
-- Re-applied by every `migrate`.

-- Bring the bucket registry in line with the compiled project (called by `migrate`).
--   p_buckets: [{"id", "fingerprint", "enabled", "entry_kind", "entry_period", "min_dwell",
--                "max_dwell" (seconds or null), "dwell_rules", "definition"}]
-- New buckets and changed criteria are left unsettled (the next tick backfills them);
-- removed buckets end their memberships silently (reason `removed`) and lose their functions;
-- disabled ones end them with reason `disabled`; policy changes re-arm every member's timer.
create or replace function {{ s }}._sync_project(p_buckets jsonb) returns jsonb
language plpgsql as $hs$
declare
  v_now   timestamptz;
  v_ended timestamptz;
  r       record;
  added   text[] := '{}';
  changed text[] := '{}';
  removed text[] := '{}';
begin
  perform pg_advisory_xact_lock({{ lock_key }});
  select greatest(now(), last_tick_at) into v_now from {{ s }}.tick_state;
  -- Memberships a deploy ends (removed, disabled) end at the last tick's instant: they must
  -- live on the ticks' clock, which need not be the database's (`tick --now`, a scheduler's
  -- own clock). With now() they could end "after" the next tick, and the backfill of a
  -- re-enabled or re-added bucket would then not let them re-join (no re-join in the tick
  -- a contact left) until the tick clock passed the deploy's wall-clock time. Before any
  -- tick there is no membership to end.
  select coalesce(last_tick_at, now()) into v_ended from {{ s }}.tick_state;

  create temp table _hs_declared on commit drop as
  select d.id, d.fingerprint, d.enabled, d.entry_kind,
         make_interval(secs => d.entry_period) as entry_period,
         make_interval(secs => d.min_dwell) as min_dwell,
         make_interval(secs => d.max_dwell) as max_dwell,
         coalesce(d.dwell_rules, '[]') as dwell_rules, coalesce(d.definition, '{}') as definition
    from jsonb_to_recordset(p_buckets) as d(id text, fingerprint text, enabled boolean,
         entry_kind text, entry_period bigint, min_dwell bigint, max_dwell bigint,
         dwell_rules jsonb, definition jsonb);

  for r in select b.id from {{ s }}.buckets b
            where not exists (select 1 from _hs_declared d where d.id = b.id) order by b.id loop
    perform {{ s }}._end_memberships(r.id, 'removed', v_ended);
    execute format('drop function if exists {{ s }}.%I(timestamptz)', 'b_' || r.id || '_match');
    execute format('drop function if exists {{ s }}.%I(timestamptz)', 'b_' || r.id || '_match_all');
    execute format('drop function if exists {{ s }}.%I(timestamptz, timestamptz)', 'b_' || r.id || '_run');
    execute format('drop function if exists {{ s }}.%I(timestamptz, boolean)', 'b_' || r.id || '_keys');
    delete from {{ s }}.buckets where id = r.id;
    removed := removed || r.id;
  end loop;

  for r in select b.id from {{ s }}.buckets b join _hs_declared d on d.id = b.id
            where b.enabled and not d.enabled order by b.id loop
    perform {{ s }}._end_memberships(r.id, 'disabled', v_ended);
  end loop;

  -- Policy changes: every active member's timer is re-derived at the next tick.
  update {{ s }}.memberships m set next_check_at = '-infinity'
    from {{ s }}.buckets b join _hs_declared d on d.id = b.id
   where m.bucket_id = b.id and m.active
     and (b.min_dwell is distinct from d.min_dwell or b.max_dwell is distinct from d.max_dwell
          or b.dwell_rules <> d.dwell_rules);
  -- Entry policy changes: a former member blocked by the old policy (or cooling down for
  -- the old period) may be eligible under the new one, with no new data to make it a
  -- candidate: every former member is reconsidered by the next tick.
  update {{ s }}.memberships m set next_check_at = '-infinity'
    from {{ s }}.buckets b join _hs_declared d on d.id = b.id
   where m.bucket_id = b.id and not m.active
     and (b.entry_kind <> d.entry_kind or b.entry_period is distinct from d.entry_period);

  select coalesce(array_agg(d.id order by d.id), '{}') into added
    from _hs_declared d where not exists (select 1 from {{ s }}.buckets b where b.id = d.id);
  select coalesce(array_agg(d.id order by d.id), '{}') into changed
    from _hs_declared d join {{ s }}.buckets b on b.id = d.id
   where b.fingerprint <> d.fingerprint or (not b.enabled and d.enabled)
      or b.entry_kind <> d.entry_kind or b.entry_period is distinct from d.entry_period
      or b.min_dwell is distinct from d.min_dwell or b.max_dwell is distinct from d.max_dwell
      or b.dwell_rules <> d.dwell_rules;

  insert into {{ s }}.buckets as b (id, fingerprint, settled_fingerprint, enabled, entry_kind,
         entry_period, min_dwell, max_dwell, dwell_rules, definition, deployed_at)
  select d.id, d.fingerprint, null, d.enabled, d.entry_kind, d.entry_period, d.min_dwell,
         d.max_dwell, d.dwell_rules, d.definition, v_now
    from _hs_declared d
  on conflict (id) do update
     set fingerprint = excluded.fingerprint,
         -- re-enabling re-derives the membership from scratch
         settled_fingerprint = case when not b.enabled and excluded.enabled then null
                                    else b.settled_fingerprint end,
         enabled = excluded.enabled, entry_kind = excluded.entry_kind,
         entry_period = excluded.entry_period, min_dwell = excluded.min_dwell,
         max_dwell = excluded.max_dwell, dwell_rules = excluded.dwell_rules,
         definition = excluded.definition,
         deployed_at = case when b.fingerprint is distinct from excluded.fingerprint
                             or b.definition is distinct from excluded.definition
                            then v_now else b.deployed_at end;

  drop table _hs_declared;
  return jsonb_build_object('added', to_jsonb(added), 'changed', to_jsonb(changed),
                            'removed', to_jsonb(removed));
end $hs$;
