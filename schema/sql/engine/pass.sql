-- hogsend engine: the generic, bucket-independent half of a pass (the tick clock, the
-- session work tables, `_apply`, dwell firings). Everything bucket-specific is generated per
-- project (see the files `hogsend compile` writes). Re-applied by every `migrate`; changing a
-- function's arguments or result type needs a `drop function` before its new definition.
-- `{{ s }}` is the validated schema name, `{{ lock_key }}` the schema's pass lock key.

------------------------------------------------------------------------------------------
-- The generic half of a pass. Generated per-bucket functions fill the session's work
-- tables (_hs_cand: who to look at; _hs_match: who matches now) and call _apply.
------------------------------------------------------------------------------------------

-- Session-local work tables, created on first use in a session.
create or replace function {{ s }}._work_tables() returns void language plpgsql as $hs$
begin
  if to_regclass('pg_temp._hs_changed') is null then
    create temp table _hs_changed (user_key text not null, kind "char" not null, event text)
      on commit delete rows;
    create temp table _hs_cand (user_key text primary key) on commit delete rows;
    create temp table _hs_match (user_key text primary key, anchor timestamptz) on commit delete rows;
    create temp table _hs_diff (
      user_key text primary key, action text not null, reason text,
      entry_count integer, anchor timestamptz, left_at timestamptz
    ) on commit delete rows;
    create temp table _hs_due (user_key text, entry_count integer, label text, ordinal bigint)
      on commit delete rows;
  end if;
end $hs$;

-- The change queue's current slot: the parity of `queue_epoch` (see migration 1). Also
-- created by migration 1, which needs it for `changed_keys.slot`'s default.
create or replace function {{ s }}._queue_slot() returns smallint
language sql volatile as $hs$
  select (last_value % 2)::smallint from {{ s }}.queue_epoch
$hs$;

-- Planner statistics for the engine's big tables, refreshed by the tick itself: at its start
-- for what bulk loads and real-time passes wrote since the last tick, at its end for what the
-- tick wrote (a backfill's memberships, transitions and dwell events, its journeys' runs). A
-- table of at least 64 pages (512 kB) is analyzed when it has no statistics (never analyzed
-- with rows in it), or when it or one of its indexes has more than doubled in pages since
-- its `relpages` was last set (by ANALYZE, VACUUM or the index's build). Without this, the
-- ticks after a bulk load that autovacuum has not caught up with (or never will: it may be
-- off) are planned for tables of unknown or outdated shape: a whole bucket's memberships
-- hashed to join two matches, a bitmap scan over 50,000 dead `runs_active` entries every
-- tick, a partial index built empty (`events_message_id_key`) taken for empty while it holds
-- every dwell event (see ARCHITECTURE.md, "Hot tables and bloat"). The check reads only the
-- catalog and the files' sizes: not the cumulative statistics, which a crash or a reset
-- clears and which count a tick's own writes again after it analyzed them. ANALYZE samples
-- at most 30,000 rows (`default_statistics_target` 100) and takes a SHARE UPDATE EXCLUSIVE
-- lock, held to the end of the tick: writers do not wait, a VACUUM or another ANALYZE of the
-- same table does. A role that does not own the table only gets a warning.
-- Returns {tables: [the tables analyzed], ms}.
create or replace function {{ s }}._refresh_stats() returns jsonb
language plpgsql as $hs$
declare
  started timestamptz := clock_timestamp();
  bs      bigint := current_setting('block_size')::bigint;
  t       text;
  done    text[] := '{}';
begin
  for t in
    select c.relname::text
      from pg_class c
     where c.relnamespace = '{{ s }}'::regnamespace and c.relkind = 'r'
       and c.relname in ('contacts', 'events', 'memberships', 'transitions', 'runs',
                         'run_steps', 'messages')
       and pg_relation_size(c.oid) >= 64 * bs
       and (pg_relation_size(c.oid) > 2 * bs * c.relpages
            or exists (select 1 from pg_index i join pg_class x on x.oid = i.indexrelid
                        where i.indrelid = c.oid
                          and pg_relation_size(x.oid) >= 64 * bs
                          and pg_relation_size(x.oid) > 2 * bs * x.relpages)
            or not exists (select 1 from pg_stats st
                            where st.schemaname = '{{ s }}' and st.tablename = c.relname))
     order by c.relname
  loop
    execute format('analyze {{ s }}.%I', t);
    done := done || t;
  end loop;
  return jsonb_build_object('tables', to_jsonb(done),
    'ms', round(extract(epoch from clock_timestamp() - started)::numeric * 1000, 3));
end $hs$;

-- Serialize passes on this schema; returns the previous tick instant (or p_now on the first).
-- Drains the change queue by slot switch and truncate (see `changed_keys` in migration 1):
-- the entries ready at p_now (`ready_at`, migration 4) go to `_hs_changed`; the others
-- (events after p_now, e.g. committed after this tick began) go back into the current slot,
-- for the real-time pass or the tick whose instant reaches them. So the tick never drains
-- a change it evaluates too early to see.
create or replace function {{ s }}._tick_begin(p_now timestamptz) returns timestamptz
language plpgsql as $hs$
declare
  t0   timestamptz;
  n    bigint;
  v_slot smallint;
begin
  if p_now is null then
    raise exception 'hogsend: tick needs a non-null now' using errcode = '22004';
  end if;
  perform pg_advisory_xact_lock({{ lock_key }});
  select last_tick_at into t0 from {{ s }}.tick_state;
  if t0 is not null and p_now < t0 then
    raise exception 'hogsend: refusing to tick at %, earlier than the last tick at %', p_now, t0
      using errcode = '22023', hint = 'tick instants must not go backwards';
  end if;
  perform {{ s }}._work_tables();
  delete from _hs_changed;
  -- Switch: from here on writers fill the other slot.
  v_slot := {{ s }}._queue_slot();
  perform nextval('{{ s }}.queue_epoch');
  if v_slot = 0 then
    lock table {{ s }}.changed_keys_0 in access exclusive mode;
    insert into _hs_changed (user_key, kind, event)
    select distinct user_key, kind, event from {{ s }}.changed_keys_0
     where ready_at is null or ready_at <= p_now;
    get diagnostics n = row_count;
    insert into {{ s }}.changed_keys (user_key, kind, event, ready_at)
    select user_key, kind, event, ready_at from {{ s }}.changed_keys_0
     where ready_at > p_now;
    truncate {{ s }}.changed_keys_0;
  else
    lock table {{ s }}.changed_keys_1 in access exclusive mode;
    insert into _hs_changed (user_key, kind, event)
    select distinct user_key, kind, event from {{ s }}.changed_keys_1
     where ready_at is null or ready_at <= p_now;
    get diagnostics n = row_count;
    insert into {{ s }}.changed_keys (user_key, kind, event, ready_at)
    select user_key, kind, event, ready_at from {{ s }}.changed_keys_1
     where ready_at > p_now;
    truncate {{ s }}.changed_keys_1;
  end if;
  if n > 0 then
    analyze _hs_changed;
  end if;
  -- Statistics for what was bulk-written since the last tick (reported by _tick_end).
  perform set_config('hogsend.analyzed_at_begin', {{ s }}._refresh_stats()::text, true);
  return coalesce(t0, p_now);
end $hs$;

-- Record the tick and sum the per-bucket summaries into per-pass totals.
create or replace function {{ s }}._tick_end(p_now timestamptz, p_t0 timestamptz, p_started timestamptz, p_buckets jsonb)
returns jsonb language plpgsql as $hs$
declare
  passes   jsonb;
  previous timestamptz;
  at_begin jsonb := coalesce(nullif(current_setting('hogsend.analyzed_at_begin', true), '')::jsonb,
                             '{"tables": [], "ms": 0}');
  at_end   jsonb;
begin
  -- Statistics for what this tick wrote (a backfill's memberships, its journeys' runs), so
  -- the next ticks are planned for them.
  at_end := {{ s }}._refresh_stats();
  select last_tick_at into previous from {{ s }}.tick_state;
  update {{ s }}.tick_state set last_tick_at = p_now, ticks = ticks + 1;
  select jsonb_build_object(
    'backfill', jsonb_build_object(
      'buckets', count(*) filter (where v->>'mode' = 'backfill'),
      'candidates', coalesce(sum((v->>'candidates')::bigint) filter (where v->>'mode' = 'backfill'), 0),
      'joins', coalesce(sum((v->>'joins')::bigint) filter (where v->>'mode' = 'backfill'), 0),
      'leaves', coalesce(sum((v->>'leaves')::bigint) filter (where v->>'mode' = 'backfill'), 0),
      'ms', coalesce(round(sum((v->>'ms')::numeric) filter (where v->>'mode' = 'backfill'), 3), 0)),
    'reconcile', jsonb_build_object(
      'buckets', count(*) filter (where v->>'mode' = 'reconcile'),
      'candidates', coalesce(sum((v->>'candidates')::bigint) filter (where v->>'mode' = 'reconcile'), 0),
      'joins', coalesce(sum((v->>'joins')::bigint) filter (where v->>'mode' = 'reconcile'), 0),
      'leaves', coalesce(sum((v->>'leaves')::bigint) filter (where v->>'mode' = 'reconcile'), 0),
      'ms', coalesce(round(sum((v->>'ms')::numeric) filter (where v->>'mode' = 'reconcile'), 3), 0)),
    'dwell', jsonb_build_object(
      'fires', coalesce(sum((v->>'dwell_fires')::bigint), 0),
      'ms', coalesce(round(sum((v->>'dwell_ms')::numeric), 3), 0)))
    into passes
    from jsonb_each(p_buckets) as b(k, v);
  return jsonb_build_object(
    'now', p_now,
    'previous', previous,
    'ms', round(extract(epoch from clock_timestamp() - p_started)::numeric * 1000, 3),
    'passes', passes,
    'analyzed', jsonb_build_object(
      'tables', (at_begin->'tables') || (at_end->'tables'),
      'ms', (at_begin->>'ms')::numeric + (at_end->>'ms')::numeric),
    'buckets', p_buckets);
end $hs$;

-- End every open membership of a bucket without firing anything (removal, disabling).
create or replace function {{ s }}._end_memberships(p_bucket text, p_reason text, p_now timestamptz)
returns bigint language plpgsql as $hs$
declare
  n bigint;
begin
  with ended as (
    update {{ s }}.memberships
       set active = false, left_at = p_now, leave_reason = p_reason, next_check_at = null
     where bucket_id = p_bucket and active
    returning user_key, entry_count)
  insert into {{ s }}.transitions (bucket_id, user_key, entry_count, kind, reason, source, occurred_at)
  select p_bucket, user_key, entry_count, 'left', p_reason, 'migrate', p_now from ended
  on conflict do nothing;
  get diagnostics n = row_count;
  return n;
end $hs$;

-- Record the dwell firings in _hs_due: one `dwell` transition each (a retried firing is a
-- conflict and records nothing) and its `bucket:dwell:<id>:<label>` event, idempotent by
-- message id. Returns how many transitions were recorded.
create or replace function {{ s }}._record_dwell(p_bucket text, p_now timestamptz, p_source text)
returns bigint language plpgsql as $hs$
declare
  n bigint;
begin
  insert into {{ s }}.transitions
         (bucket_id, user_key, entry_count, kind, label, ordinal, source, occurred_at)
  select p_bucket, d.user_key, d.entry_count, 'dwell', d.label, d.ordinal, p_source, p_now
    from _hs_due d
  on conflict do nothing;
  get diagnostics n = row_count;
  insert into {{ s }}.events (user_key, event, properties, occurred_at, received_at, message_id)
  select d.user_key, 'bucket:dwell:' || p_bucket || ':' || d.label,
         jsonb_build_object('bucket_id', p_bucket, 'entry_count', d.entry_count,
                            'label', d.label, 'ordinal', d.ordinal),
         p_now, p_now,
         'bucket:' || p_bucket || ':' || d.user_key || ':' || d.entry_count
           || ':dwell:' || d.label || ':' || d.ordinal
    from _hs_due d
  on conflict (message_id) where message_id is not null do nothing;
  return n;
end $hs$;

-- Apply what the generated matcher found. Compares _hs_match (who matches at p_now) with
-- the bucket's memberships for the contacts in _hs_cand (every contact when p_all), applies
-- the policies in the language's order (leaves: criteria then max_dwell; joins; dwell), records
-- each transition once, and re-arms the timers it visited.
--   p_source: 'backfill' (joins are silent, dwell clocks start at the match's anchor),
--             'tick' or 'event' (the real-time pass; it fires no dwell).
create or replace function {{ s }}._apply(p_bucket text, p_now timestamptz, p_source text, p_all boolean)
returns jsonb language plpgsql
set plan_cache_mode = force_custom_plan
as $hs$
declare
  b           {{ s }}.buckets;
  silent      boolean := p_source = 'backfill';
  n_leaves    bigint := 0;
  n_joins     bigint := 0;
  n_deferred  bigint := 0;
  n_blocked   bigint := 0;
  n_fires     bigint := 0;
  dwell_start timestamptz;
  dwell_ms    numeric := 0;
begin
  select * into strict b from {{ s }}.buckets where id = p_bucket;
  delete from _hs_diff;

  -- 0. The first backfill of a bucket that never had a member nor a transition: every
  --    match is a silent join (epoch 1), nobody leaves, nothing can conflict, and the dwell
  --    firings already due at p_now are recorded with the joins, so each membership is
  --    written once with its final timer. Same rows as steps 1-4 would write, without the
  --    diff, the conflict checks and the re-arm pass (a third of a cold backfill's time;
  --    see BENCHMARKS.md).
  if p_all and silent
     and not exists (select 1 from {{ s }}.memberships m where m.bucket_id = p_bucket)
     and not exists (select 1 from {{ s }}.transitions t where t.bucket_id = p_bucket) then
    insert into {{ s }}.memberships
           (bucket_id, user_key, active, entry_count, entered_at, dwell_anchor, source, next_check_at)
    select p_bucket, x.user_key, true, 1, p_now, a.anchor, p_source,
           least(p_now + b.max_dwell,
                 (select min(case when a.anchor + r.period * interval '1 second' > p_now
                                  then a.anchor + r.period * interval '1 second'
                                  when r.kind = 'every' then p_now + r.period * interval '1 second' end)
                    from jsonb_to_recordset(b.dwell_rules) as r(label text, kind text, period bigint)))
      from _hs_match x
     cross join lateral (select least(coalesce(x.anchor, p_now), p_now) as anchor) a;
    get diagnostics n_joins = row_count;
    insert into {{ s }}.transitions (bucket_id, user_key, entry_count, kind, source, occurred_at)
    select p_bucket, x.user_key, 1, 'entered', p_source, p_now from _hs_match x;
    if b.dwell_rules <> '[]'::jsonb then
      dwell_start := clock_timestamp();
      delete from _hs_due;
      insert into _hs_due (user_key, entry_count, label, ordinal)
      select x.user_key, 1, r.label,
             case when r.kind = 'after' then 1
                  else floor(extract(epoch from p_now - a.anchor) / r.period)::bigint end
        from _hs_match x
       cross join lateral (select least(coalesce(x.anchor, p_now), p_now) as anchor) a
       cross join jsonb_to_recordset(b.dwell_rules) as r(label text, kind text, period bigint)
       where a.anchor + r.period * interval '1 second' <= p_now;
      n_fires := {{ s }}._record_dwell(p_bucket, p_now, p_source);
      dwell_ms := extract(epoch from clock_timestamp() - dwell_start)::numeric * 1000;
    end if;
    return jsonb_build_object('joins', n_joins, 'leaves', 0, 'deferred', 0, 'blocked', 0,
                              'dwell_fires', n_fires, 'dwell_ms', round(dwell_ms, 3));
  end if;

  -- 1. Members who no longer match (or whose contact is gone): leave, or wait out min_dwell.
  --    Two statements, not `p_all or user_key in (candidates)`: under the OR the candidates
  --    become a filter over every member of the bucket instead of the join that drives
  --    the incremental pass (see BENCHMARKS.md).
  if p_all then
    insert into _hs_diff (user_key, action, reason, entry_count)
    select m.user_key,
           case when c.id is not null and c.deleted_at is null and b.min_dwell is not null
                     and m.entered_at + b.min_dwell > p_now
                then 'defer' else 'leave' end,
           case when c.id is null or c.deleted_at is not null then 'deleted' else 'criteria' end,
           m.entry_count
      from {{ s }}.memberships m
      left join {{ s }}.contacts c on c.user_key = m.user_key
     where m.bucket_id = p_bucket and m.active
       and not exists (select 1 from _hs_match x where x.user_key = m.user_key);
  else
    insert into _hs_diff (user_key, action, reason, entry_count)
    select m.user_key,
           case when c.id is not null and c.deleted_at is null and b.min_dwell is not null
                     and m.entered_at + b.min_dwell > p_now
                then 'defer' else 'leave' end,
           case when c.id is null or c.deleted_at is not null then 'deleted' else 'criteria' end,
           m.entry_count
      from _hs_cand k
      join {{ s }}.memberships m on m.bucket_id = p_bucket and m.user_key = k.user_key
      left join {{ s }}.contacts c on c.user_key = m.user_key
     where m.active
       and not exists (select 1 from _hs_match x where x.user_key = m.user_key);
  end if;

  -- 2. max_dwell: expired members leave whatever the criteria say (their timer is due, so
  --    they are candidates).
  if b.max_dwell is not null then
    insert into _hs_diff (user_key, action, reason, entry_count)
    select m.user_key, 'leave', 'max_dwell', m.entry_count
      from {{ s }}.memberships m
     where m.bucket_id = p_bucket and m.active
       and m.next_check_at <= p_now and m.entered_at + b.max_dwell <= p_now
       and (p_all or m.user_key in (select k.user_key from _hs_cand k))
    on conflict (user_key) do update set action = 'leave', reason = excluded.reason
     where _hs_diff.action = 'defer';
  end if;

  -- 3. Joins, as the entry policy allows. A contact that left at this instant (at an earlier
  --    pass at the same `now`: a retried tick, a real-time pass) stays out for now: 'later'
  --    arms its timer so that the next tick reconsiders it, whether or not its data changes
  --    again (its changed key is drained by this tick).
  insert into _hs_diff (user_key, action, entry_count, anchor, left_at)
  select x.user_key,
         case when m.user_key is null then 'join'
              when m.left_at >= p_now then 'later'
              when b.entry_kind = 'once' then 'block'
              when b.entry_kind = 'once_per' and m.left_at + b.entry_period > p_now then 'block'
              else 'join' end,
         coalesce(m.entry_count, 0) + 1,
         case when silent then least(coalesce(x.anchor, p_now), p_now) else p_now end,
         m.left_at
    from _hs_match x
    left join {{ s }}.memberships m on m.bucket_id = p_bucket and m.user_key = x.user_key
   where m.user_key is null or not m.active;

  -- Nothing to apply (the common case for a bucket with a few candidates): skip the
  -- writes, each of which would otherwise be planned and run for nothing.
  if exists (select 1 from _hs_diff) then
    analyze _hs_diff;

    -- Apply the leaves. After a max_dwell leave the contact may re-join at a later tick.
    update {{ s }}.memberships m
       set active = false, left_at = p_now, leave_reason = d.reason,
           next_check_at = case
             when d.reason <> 'max_dwell' then null
             when b.entry_kind = 'unlimited' then p_now + interval '1 microsecond'
             when b.entry_kind = 'once_per' then p_now + b.entry_period
           end
      from _hs_diff d
     where d.action = 'leave' and m.bucket_id = p_bucket and m.user_key = d.user_key;
    get diagnostics n_leaves = row_count;

    -- Apply the joins: a new epoch, its dwell clock and its first timer.
    insert into {{ s }}.memberships as m
           (bucket_id, user_key, active, entry_count, entered_at, dwell_anchor, source, next_check_at)
    select p_bucket, d.user_key, true, d.entry_count, p_now, d.anchor, p_source,
           least(p_now + b.max_dwell,
                 d.anchor + (select min((r->>'period')::bigint) * interval '1 second'
                               from jsonb_array_elements(b.dwell_rules) r))
      from _hs_diff d
     where d.action = 'join'
    on conflict (bucket_id, user_key) do update
       set active = true, entry_count = excluded.entry_count, entered_at = excluded.entered_at,
           dwell_anchor = excluded.dwell_anchor, left_at = null, leave_reason = null,
           source = excluded.source, next_check_at = excluded.next_check_at;
    get diagnostics n_joins = row_count;

    -- Deferred leaves wake when the floor ends; blocked re-joins when the cool-down ends;
    -- postponed ones at the next tick.
    update {{ s }}.memberships m
       set next_check_at = case when d.action = 'defer'
                                then least(m.next_check_at, m.entered_at + b.min_dwell)
                                when d.action = 'later' then p_now + interval '1 microsecond'
                                else d.left_at + b.entry_period end
      from _hs_diff d
     where m.bucket_id = p_bucket and m.user_key = d.user_key
       and (d.action in ('defer', 'later') or (d.action = 'block' and b.entry_kind = 'once_per'));
    select count(*) filter (where action = 'defer'), count(*) filter (where action = 'block')
      into n_deferred, n_blocked from _hs_diff;

    insert into {{ s }}.transitions (bucket_id, user_key, entry_count, kind, reason, source, occurred_at)
    select p_bucket, d.user_key, d.entry_count,
           case when d.action = 'join' then 'entered' else 'left' end,
           d.reason, p_source, p_now
      from _hs_diff d
     where d.action in ('join', 'leave')
    on conflict do nothing;

    -- The events journeys trigger on. Silent (backfill) joins and deletions record none.
    insert into {{ s }}.events (user_key, event, properties, occurred_at, received_at, message_id)
    select d.user_key,
           'bucket:' || case when d.action = 'join' then 'entered' else 'left' end || ':' || p_bucket,
           jsonb_strip_nulls(jsonb_build_object(
             'bucket_id', p_bucket, 'entry_count', d.entry_count, 'reason', d.reason, 'source', p_source)),
           p_now, p_now,
           'bucket:' || p_bucket || ':' || d.user_key || ':' || d.entry_count || ':'
             || case when d.action = 'join' then 'entered' else 'left' end
      from _hs_diff d
     where (d.action = 'join' and not silent)
        or (d.action = 'leave' and d.reason in ('criteria', 'max_dwell'))
    on conflict (message_id) where message_id is not null do nothing;
  end if;

  -- 4. Dwell: fire every rule now due for the members whose timer is due, then re-arm the
  --    timers visited. The real-time pass leaves timers to the tick. Only when a timer
  --    is due at all.
  if p_source <> 'event' and exists (select 1 from {{ s }}.memberships m
                                      where m.bucket_id = p_bucket and m.next_check_at <= p_now) then
    dwell_start := clock_timestamp();
    delete from _hs_due;
    if b.dwell_rules <> '[]'::jsonb then
      insert into _hs_due (user_key, entry_count, label, ordinal)
      select m.user_key, m.entry_count, r.label,
             case when r.kind = 'after' then 1
                  else floor(extract(epoch from p_now - m.dwell_anchor) / r.period)::bigint end
        from {{ s }}.memberships m
       cross join jsonb_to_recordset(b.dwell_rules) as r(label text, kind text, period bigint)
        left join lateral (
          select max(t.occurred_at) as last_at
            from {{ s }}.transitions t
           where t.user_key = m.user_key and t.bucket_id = p_bucket
             and t.entry_count = m.entry_count and t.kind = 'dwell' and t.label = r.label) l on true
       where m.bucket_id = p_bucket and m.active and m.next_check_at <= p_now
         and case when r.kind = 'after'
                  then l.last_at is null and m.dwell_anchor + r.period * interval '1 second' <= p_now
                  else coalesce(l.last_at, m.dwell_anchor) + r.period * interval '1 second' <= p_now
             end;

      n_fires := {{ s }}._record_dwell(p_bucket, p_now, p_source);
    end if;

    -- Re-arm: active members get their next dwell/max_dwell/deferred-leave instant;
    -- others had nothing left to wait for.
    update {{ s }}.memberships m
       set next_check_at = case when not m.active then null else least(
             m.entered_at + b.max_dwell,
             case when exists (select 1 from _hs_diff d where d.user_key = m.user_key and d.action = 'defer')
                  then m.entered_at + b.min_dwell end,
             (select min(case when r.kind = 'after'
                              then case when l.last_at is null then m.dwell_anchor + r.period * interval '1 second' end
                              else coalesce(l.last_at, m.dwell_anchor) + r.period * interval '1 second' end)
                from jsonb_to_recordset(b.dwell_rules) as r(label text, kind text, period bigint)
                left join lateral (
                  select max(t.occurred_at) as last_at
                    from {{ s }}.transitions t
                   where t.user_key = m.user_key and t.bucket_id = p_bucket
                     and t.entry_count = m.entry_count and t.kind = 'dwell' and t.label = r.label) l on true))
           end
     where m.bucket_id = p_bucket and m.next_check_at <= p_now;
    dwell_ms := extract(epoch from clock_timestamp() - dwell_start)::numeric * 1000;
  end if;

  return jsonb_build_object('joins', n_joins, 'leaves', n_leaves, 'deferred', n_deferred,
                            'blocked', n_blocked, 'dwell_fires', n_fires,
                            'dwell_ms', round(dwell_ms, 3));
end $hs$;
