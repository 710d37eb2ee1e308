-- hogsend engine: the journey pass (docs/language.md, "Runs and how they move";
-- ARCHITECTURE.md, "The journey engine"). Journey-independent; what depends on a journey's
-- conditions and triggers is generated per project (`_journey_conditions`,
-- `_journey_candidates` and the per-journey functions they call). Re-applied by every
-- `migrate`. `{{ s }}` is the validated schema name, `{{ lock_key }}` the pass lock key.

------------------------------------------------------------------------------------------
-- Session work tables (emptied at every commit).
------------------------------------------------------------------------------------------
create or replace function {{ s }}._journey_work_tables() returns void language plpgsql as $hs$
begin
  if to_regclass('pg_temp._hs_jrun') is null then
    -- the contacts whose waiting runs this pass re-tests (changed, or touched by the caller)
    create temp table _hs_jkeys (user_key text primary key) on commit delete rows;
    -- the runs that may move in the current iteration
    create temp table _hs_jrun (
      run_id bigint primary key, user_key text not null, journey_id text not null,
      step_id text, status text not null, entered_at timestamptz not null,
      arrived_at timestamptz not null, wake_at timestamptz, trigger_event_id bigint,
      trigger_properties jsonb not null, entry_count integer,
      done boolean not null default false
    ) on commit delete rows;
    -- filled by the generated _journey_conditions: exit when holds / wait until holds /
    -- the branch an `if` takes
    create temp table _hs_jexit (run_id bigint primary key) on commit delete rows;
    create temp table _hs_jtrue (run_id bigint primary key) on commit delete rows;
    create temp table _hs_jbranch (run_id bigint primary key, branch text not null, next_step text)
      on commit delete rows;
    -- what each moving run does in this iteration
    create temp table _hs_jadv (
      run_id bigint primary key, user_key text not null, journey_id text not null,
      step_id text not null, kind text not null, action text not null, outcome text,
      next_step text, wake_at timestamptz, record boolean not null,
      template text, category text, target text, event text
    ) on commit delete rows;
    -- the trigger events this pass considers, and the enrolments they (and `start`) ask for
    create temp table _hs_jinbox (
      user_key text not null, event_id bigint not null, event text not null,
      occurred_at timestamptz not null, properties jsonb not null, exempt boolean not null
    ) on commit delete rows;
    create temp table _hs_jcand (
      seq bigint generated always as identity, user_key text not null, journey_id text not null,
      trigger_kind text not null, event_id bigint, occurred_at timestamptz not null,
      properties jsonb not null, entry_count integer, filter_ok boolean not null,
      exempt boolean not null, parent_run_id bigint
    ) on commit delete rows;
    create temp table _hs_jpick (
      seq bigint, user_key text not null, journey_id text not null,
      trigger_kind text not null, event_id bigint, occurred_at timestamptz not null,
      properties jsonb not null, entry_count integer, filter_ok boolean not null,
      exempt boolean not null, parent_run_id bigint, rank bigint, reason text
    ) on commit delete rows;
    -- Per (contact, journey) lookups of the two request sets above (the rank of a request
    -- among its contact's and journey's, the earliest request left): without these indexes a
    -- pass enrolling 100,000 runs compares every request with every other (quadratic).
    create index on _hs_jcand (user_key, journey_id);
    create index on _hs_jpick (user_key, journey_id);
    create temp table _hs_jstat (
      enrolled bigint not null, skipped bigint not null, steps bigint not null,
      messages bigint not null, ended bigint not null
    ) on commit delete rows;
    -- Postgres' zone names, read once per session (pg_timezone_names reads the zone files)
    create temp table _hs_zones (name text primary key);
    insert into _hs_zones select distinct name from pg_timezone_names;
  end if;
end $hs$;

------------------------------------------------------------------------------------------
-- Time-of-day waits.
------------------------------------------------------------------------------------------

-- The zone named by the contact property at `p_path` when it is a valid IANA zone name,
-- else `p_default` (the project's zone) when valid, else UTC. Reads the session's zone list.
create or replace function {{ s }}._journey_zone(p_properties jsonb, p_path text[], p_default text)
returns text language plpgsql stable as $hs$
begin
  -- (plpgsql, not sql: the session table it reads does not exist when this is created)
  return coalesce(
    (select z.name from _hs_zones z where p_path is not null and z.name = p_properties #>> p_path),
    (select z.name from _hs_zones z where z.name = p_default),
    'UTC');
end $hs$;

-- The instant of the local time `p_local` in `p_zone`: a local time skipped by a DST change
-- is the first instant after the gap; a repeated one is its first occurrence.
create or replace function {{ s }}._journey_local_instant(p_local timestamp, p_zone text)
returns timestamptz language plpgsql stable as $hs$
declare
  x timestamptz := p_local at time zone p_zone;
  m integer := 0;
  k interval;
begin
  if (x at time zone p_zone) <> p_local then
    -- In a gap: the first minute whose local time exists is the gap's end.
    loop
      m := m + 1;
      x := (p_local + make_interval(mins => m)) at time zone p_zone;
      exit when (x at time zone p_zone) = p_local + make_interval(mins => m) or m > 1500;
    end loop;
    return x;
  end if;
  -- Repeated: Postgres picks the later occurrence; take the earliest that shows this time.
  foreach k in array array[interval '3 hours', interval '2 hours', interval '1 hour',
                           interval '30 minutes'] loop
    if ((x - k) at time zone p_zone) = p_local then
      return x - k;
    end if;
  end loop;
  return x;
end $hs$;

-- The first instant at or after `p_from` whose local time in `p_zone` is `p_hour:p_minute`
-- on one of the ISO weekdays `p_days` (1 = Monday; empty or null: any day).
create or replace function {{ s }}._journey_next_local(p_from timestamptz, p_hour integer,
  p_minute integer, p_days smallint[], p_zone text)
returns timestamptz language plpgsql stable as $hs$
declare
  d0 date := (p_from at time zone p_zone)::date;
  d  date;
  x  timestamptz;
begin
  for i in -1..8 loop
    d := d0 + i;
    if coalesce(cardinality(p_days), 0) = 0 or extract(isodow from d)::smallint = any(p_days) then
      x := {{ s }}._journey_local_instant(d + make_time(p_hour, p_minute, 0), p_zone);
      if x >= p_from then
        return x;
      end if;
    end if;
  end loop;
  return null;
end $hs$;

------------------------------------------------------------------------------------------
-- Enrolment: the guards of docs/language.md in order, over the requests in _hs_jpick.
------------------------------------------------------------------------------------------
create or replace function {{ s }}._journey_admit(p_now timestamptz, p_max_age interval)
returns void language plpgsql as $hs$
declare
  n bigint;
begin
  -- Several requests of one contact for one `once`/`once per` journey in the same set (two
  -- runs starting it in the same step): the first in trigger order is considered, the others
  -- are skipped as the first's run would skip them.
  update _hs_jpick p set rank = 1 + (
    select count(*) from _hs_jpick q
     where q.user_key = p.user_key and q.journey_id = p.journey_id
       and (q.occurred_at, coalesce(q.event_id, 0), coalesce(q.parent_run_id, 0))
         < (p.occurred_at, coalesce(p.event_id, 0), coalesce(p.parent_run_id, 0)));
  update _hs_jpick p set reason = case
      when not p.exempt and p.occurred_at < p_now - p_max_age then 'too_old'
      when not j.enabled or j.paused then 'disabled'
      when not p.filter_ok then 'filter'
      when j.entry_kind = 'once' and (p.rank > 1 or exists (
             select 1 from {{ s }}.runs r where r.user_key = p.user_key and r.journey_id = p.journey_id))
        then 'entry_once'
      when j.entry_kind = 'once_per' and exists (
             select 1 from {{ s }}.runs r
              where r.user_key = p.user_key and r.journey_id = p.journey_id
                and r.entered_at + j.entry_period > p.occurred_at)
        then 'entry_period'
      when j.entry_kind <> 'unlimited' and (p.rank > 1 or exists (
             select 1 from {{ s }}.runs r
              where r.user_key = p.user_key and r.journey_id = p.journey_id
                and r.status in ('active', 'waiting')))
        then 'in_flight'
    end
    from {{ s }}.journeys j
   where j.id = p.journey_id;
  -- a journey removed since the request was made
  update _hs_jpick p set reason = 'removed'
   where not exists (select 1 from {{ s }}.journeys j where j.id = p.journey_id);

  insert into {{ s }}.journey_skips as k (journey_id, reason, count)
  select journey_id, reason, count(*) from _hs_jpick
   where reason is not null and reason <> 'removed'
   group by journey_id, reason
  on conflict (journey_id, reason) do update set count = k.count + excluded.count;
  select count(*) into n from _hs_jpick where reason is not null;
  update _hs_jstat set skipped = skipped + n;

  -- New runs, in trigger order: at their first step, or completed at once when empty.
  insert into {{ s }}.runs (journey_id, user_key, status, step_id, entered_at, arrived_at,
         ended_at, trigger_kind, trigger_event_id, trigger_properties, entry_count,
         parent_run_id, exclusive, created_at, updated_at)
  select p.journey_id, p.user_key,
         case when f.step_id is null then 'completed' else 'active' end,
         f.step_id, p.occurred_at, p_now,
         case when f.step_id is null then p_now end,
         p.trigger_kind, p.event_id, p.properties, p.entry_count, p.parent_run_id,
         j.entry_kind <> 'unlimited', p_now, p_now
    from _hs_jpick p
    join {{ s }}.journeys j on j.id = p.journey_id
    left join {{ s }}.journey_steps f on f.journey_id = p.journey_id and f.step_id = 's1'
   where p.reason is null
   order by p.occurred_at, p.event_id, p.parent_run_id;
  get diagnostics n = row_count;
  update _hs_jstat set enrolled = enrolled + n;
end $hs$;

------------------------------------------------------------------------------------------
-- Moving runs: every run that can move executes steps, one step per iteration, each step
-- kind one set-based statement, until nothing can move or the bound is reached (a run
-- still moving then stays `active`, and the next pass continues it).
------------------------------------------------------------------------------------------
create or replace function {{ s }}._journey_move(p_now timestamptz, p_max_age interval,
  p_zone text, p_waiting boolean, p_poll boolean)
returns void language plpgsql
set plan_cache_mode = force_custom_plan
as $hs$
declare
  i integer := 0;
  n bigint;
begin
  loop
    i := i + 1;
    exit when i > 100;
    delete from _hs_jrun;
    delete from _hs_jexit;
    delete from _hs_jtrue;
    delete from _hs_jbranch;
    delete from _hs_jadv;

    -- Runs about to execute a step (all of them: a run is active only inside a pass, or
    -- when the previous pass stopped it at the bound).
    insert into _hs_jrun (run_id, user_key, journey_id, step_id, status, entered_at,
           arrived_at, wake_at, trigger_event_id, trigger_properties, entry_count)
    select r.id, r.user_key, r.journey_id, r.step_id, r.status, r.entered_at, r.arrived_at,
           r.wake_at, r.trigger_event_id, r.trigger_properties, r.entry_count
      from {{ s }}.runs r
     where r.status = 'active';
    if i = 1 and p_waiting then
      -- Waiting runs that may move: due by the clock; of a contact that changed; of a
      -- journey whose waiting conditions the clock alone can change (tick only).
      insert into _hs_jrun (run_id, user_key, journey_id, step_id, status, entered_at,
             arrived_at, wake_at, trigger_event_id, trigger_properties, entry_count)
      select r.id, r.user_key, r.journey_id, r.step_id, r.status, r.entered_at, r.arrived_at,
             r.wake_at, r.trigger_event_id, r.trigger_properties, r.entry_count
        from {{ s }}.runs r
       where r.status = 'waiting' and r.wake_at <= p_now
      on conflict do nothing;
      insert into _hs_jrun (run_id, user_key, journey_id, step_id, status, entered_at,
             arrived_at, wake_at, trigger_event_id, trigger_properties, entry_count)
      select r.id, r.user_key, r.journey_id, r.step_id, r.status, r.entered_at, r.arrived_at,
             r.wake_at, r.trigger_event_id, r.trigger_properties, r.entry_count
        from _hs_jkeys k
        join {{ s }}.runs r on r.user_key = k.user_key
       where r.status = 'waiting'
      on conflict do nothing;
      if p_poll then
        insert into _hs_jrun (run_id, user_key, journey_id, step_id, status, entered_at,
               arrived_at, wake_at, trigger_event_id, trigger_properties, entry_count)
        select r.id, r.user_key, r.journey_id, r.step_id, r.status, r.entered_at, r.arrived_at,
               r.wake_at, r.trigger_event_id, r.trigger_properties, r.entry_count
          from {{ s }}.journeys j
          join {{ s }}.runs r on r.journey_id = j.id and r.status = 'waiting'
         where j.polls
        on conflict do nothing;
      end if;
    end if;
    exit when not exists (select 1 from _hs_jrun);

    -- Ends that need no condition: the contact is gone; an `on enter` reaction's
    -- membership ended.
    with ended as (
      update {{ s }}.runs r
         set status = 'exited',
             exit_reason = case when c.id is null or c.deleted_at is not null
                                then 'contact_deleted' else 'membership_ended' end,
             ended_at = p_now, wake_at = null, updated_at = p_now
        from _hs_jrun x
        join {{ s }}.journeys j on j.id = x.journey_id
        left join {{ s }}.contacts c on c.user_key = x.user_key
       where r.user_key = x.user_key and r.id = x.run_id
         and (c.id is null or c.deleted_at is not null
              or (j.bucket_id is not null and r.trigger_kind = 'enter'
                  and not exists (select 1 from {{ s }}.memberships m
                                   where m.bucket_id = j.bucket_id and m.user_key = x.user_key
                                     and m.active and m.entry_count = x.entry_count)))
      returning r.id)
    delete from _hs_jrun x using ended e where x.run_id = e.id;
    get diagnostics n = row_count;
    update _hs_jstat set ended = ended + n;

    -- The conditions (generated): exit when, wait until, if.
    perform {{ s }}._journey_conditions(p_now);

    with ended as (
      update {{ s }}.runs r
         set status = 'exited', exit_reason = 'exit_when', ended_at = p_now, wake_at = null,
             updated_at = p_now
        from _hs_jexit e
        join _hs_jrun x on x.run_id = e.run_id
       where r.user_key = x.user_key and r.id = x.run_id
      returning r.id)
    delete from _hs_jrun x using ended e where x.run_id = e.id;
    get diagnostics n = row_count;
    update _hs_jstat set ended = ended + n;

    -- A run at a step it already executed (a deploy moved steps around) moves on without
    -- executing it again.
    update _hs_jrun x set done = true
     where exists (select 1 from {{ s }}.run_steps s
                    where s.user_key = x.user_key and s.run_id = x.run_id and s.step_id = x.step_id);

    -- A run waiting at a time-of-day wait follows its contact's zone: its wake-up is
    -- recomputed from its arrival with the zone the contact has now (a `timezone` change,
    -- or the project's zone changed by a deploy), so the pass that sees the change moves
    -- it (docs/language.md, "Runs and how they move"). Unchanged zones give the same instant.
    with rezoned as (
      update {{ s }}.runs r
         set wake_at = w.wake, updated_at = p_now
        from _hs_jrun x
        join {{ s }}.journey_steps s on s.journey_id = x.journey_id and s.step_id = x.step_id
        left join {{ s }}.contacts c on c.user_key = x.user_key
       cross join lateral (
         select {{ s }}._journey_next_local(x.arrived_at, s.hour, s.minute, s.days,
                {{ s }}._journey_zone(c.properties, s.zone_path, p_zone)) as wake) w
       where r.user_key = x.user_key and r.id = x.run_id
         and x.status = 'waiting' and s.kind = 'wait_time' and not x.done
         and r.wake_at is distinct from w.wake
      returning r.id, r.wake_at)
    update _hs_jrun x set wake_at = z.wake_at from rezoned z where x.run_id = z.id;

    -- What each run does now.
    insert into _hs_jadv (run_id, user_key, journey_id, step_id, kind, action, outcome,
           next_step, wake_at, record, template, category, target, event)
    select x.run_id, x.user_key, x.journey_id, x.step_id, s.kind, a.action, a.outcome,
           case when s.kind = 'if' then b.next_step else s.next_step end,
           w.wake, not x.done, s.template, s.category, s.target, s.event
      from _hs_jrun x
      join {{ s }}.journey_steps s on s.journey_id = x.journey_id and s.step_id = x.step_id
      left join _hs_jtrue t on t.run_id = x.run_id
      left join _hs_jbranch b on b.run_id = x.run_id
      left join {{ s }}.contacts c on c.user_key = x.user_key
     cross join lateral (
       select case
         when x.status = 'waiting' then x.wake_at
         when s.kind in ('wait', 'wait_until') then x.arrived_at + make_interval(secs => s.seconds)
         when s.kind = 'wait_time' then {{ s }}._journey_next_local(x.arrived_at, s.hour, s.minute,
              s.days, {{ s }}._journey_zone(c.properties, s.zone_path, p_zone))
       end as wake) w
     cross join lateral (
       select case
         when x.done then 'next'
         when s.kind in ('wait', 'wait_until', 'wait_time') then
           case when s.kind = 'wait_until' and t.run_id is not null then 'next'
                when w.wake <= p_now then 'next'
                when x.status = 'waiting' then 'stay'
                else 'park' end
         when s.kind = 'exit' then 'exit'
         else 'next' end as action,
         case s.kind
           when 'send' then s.template
           when 'wait' then 'elapsed'
           when 'wait_until' then case when t.run_id is not null then 'condition' else 'timeout' end
           when 'wait_time' then 'time'
           when 'if' then b.branch
           when 'start' then s.target
           when 'emit' then s.event
         end as outcome) a
     where a.action <> 'stay';

    -- Runs whose step is unknown (cannot happen after a deploy, which ends them) fail
    -- rather than loop.
    with failed as (
      update {{ s }}.runs r
         set status = 'failed', error = 'unknown step ' || coalesce(x.step_id, 'null'),
             ended_at = p_now, wake_at = null, updated_at = p_now
        from _hs_jrun x
       where r.user_key = x.user_key and r.id = x.run_id and r.status = 'active'
         and not exists (select 1 from {{ s }}.journey_steps s
                          where s.journey_id = x.journey_id and s.step_id = x.step_id)
      returning r.id)
    select count(*) into n from failed;
    update _hs_jstat set ended = ended + n;

    exit when not exists (select 1 from _hs_jadv);

    -- Every executed step, once.
    insert into {{ s }}.run_steps (user_key, run_id, step_id, kind, outcome, executed_at)
    select a.user_key, a.run_id, a.step_id, a.kind, a.outcome, p_now
      from _hs_jadv a
     where a.record and a.action <> 'park'
    on conflict do nothing;
    get diagnostics n = row_count;
    update _hs_jstat set steps = steps + n;

    -- send: exactly one message per (run, step).
    insert into {{ s }}.messages (journey_id, run_id, user_key, template, to_email, status,
           step_id, category, skip_reason, created_at, updated_at)
    select a.journey_id, a.run_id, a.user_key, a.template, c.email,
           case when v.reason is null then 'queued' else 'skipped' end,
           a.step_id, a.category, v.reason, p_now, p_now
      from _hs_jadv a
      left join {{ s }}.contacts c on c.user_key = a.user_key
     cross join lateral (
       select {{ s }}.message_skip_reason(c.email, a.user_key, a.category) as reason) v
     where a.kind = 'send' and a.record
    on conflict (run_id, step_id) where run_id is not null do nothing;
    get diagnostics n = row_count;
    update _hs_jstat set messages = messages + n;

    -- emit: an ordinary event at the pass instant (the next pass sees it as a trigger).
    insert into {{ s }}.events (user_key, event, properties, occurred_at, received_at, message_id)
    select a.user_key, a.event, jsonb_build_object('journey', a.journey_id, 'run', a.run_id),
           p_now, p_now, 'journey:' || a.run_id || ':' || a.step_id
      from _hs_jadv a
     where a.kind = 'emit' and a.record
    on conflict (message_id) where message_id is not null do nothing;

    -- Move: park at a wait, exit, or go to the next step (completed past the last one).
    with moved as (
      update {{ s }}.runs r
         set status = case when a.action = 'park' then 'waiting'
                           when a.action = 'exit' then 'exited'
                           when a.next_step is null then 'completed'
                           else 'active' end,
             step_id = case when a.action = 'next' and a.next_step is not null
                            then a.next_step else r.step_id end,
             arrived_at = case when a.action = 'next' then p_now else r.arrived_at end,
             wake_at = case when a.action = 'park' then a.wake_at end,
             ended_at = case when a.action = 'exit' or (a.action = 'next' and a.next_step is null)
                             then p_now end,
             exit_reason = case when a.action = 'exit' then 'exit_step' end,
             updated_at = p_now
        from _hs_jadv a
       where r.user_key = a.user_key and r.id = a.run_id
      returning r.status)
    select count(*) into n from moved where status in ('completed', 'exited');
    update _hs_jstat set ended = ended + n;

    -- start: enrol at this instant (the target's guards apply); new runs move next.
    delete from _hs_jpick;
    insert into _hs_jpick (user_key, journey_id, trigger_kind, event_id, occurred_at,
           properties, entry_count, filter_ok, exempt, parent_run_id)
    select a.user_key, a.target, 'start', null, p_now, '{}', null, true, true, a.run_id
      from _hs_jadv a
     where a.kind = 'start' and a.record;
    if found then
      perform {{ s }}._journey_admit(p_now, p_max_age);
    end if;
  end loop;
end $hs$;

------------------------------------------------------------------------------------------
-- The journey inbox's current slot: the parity of `journey_inbox_epoch` (migration 9, which
-- also creates this function, needed by `journey_inbox.slot`'s default).
------------------------------------------------------------------------------------------
create or replace function {{ s }}._journey_inbox_slot() returns smallint
language sql volatile as $hs$
  select (last_value % 2)::smallint from {{ s }}.journey_inbox_epoch
$hs$;

------------------------------------------------------------------------------------------
-- A tick's trigger events, by slot switch and truncate (migration 9): switch the inbox's
-- slot (after the tick's buckets recorded their transitions, so their `bucket:` events are
-- in the slot left), then drain the slot left whole under an ACCESS EXCLUSIVE lock that
-- waits for the writers still inside it: its rows ready at `p_now` go to `_hs_jinbox`, the
-- others (events after `p_now`) into the current slot, then it is truncated. Exactly once
-- (ARCHITECTURE.md, "Hot tables and bloat"): every consumer holds the pass lock; a row
-- leaves the inbox in the transaction that consumes it; and a writer that read the old slot
-- before the switch but inserts after the lock blocks until this commits, its row staying
-- in that slot until the slot is drained again (or a real-time pass takes it).
------------------------------------------------------------------------------------------
create or replace function {{ s }}._journey_inbox_drain(p_now timestamptz)
returns void language plpgsql as $hs$
declare
  v_slot smallint;
begin
  -- Switch: from here on writers fill the other slot.
  v_slot := {{ s }}._journey_inbox_slot();
  perform nextval('{{ s }}.journey_inbox_epoch');
  if v_slot = 0 then
    lock table {{ s }}.journey_inbox_0 in access exclusive mode;
    insert into _hs_jinbox (user_key, event_id, event, occurred_at, properties, exempt)
    select e.user_key, e.id, e.event, e.occurred_at, e.properties,
           coalesce(e.message_id like 'journey:%', false)
      from {{ s }}.journey_inbox_0 i join {{ s }}.events e on e.id = i.event_id
     where i.occurred_at <= p_now;
    insert into {{ s }}.journey_inbox (user_key, event_id, event, occurred_at)
    select user_key, event_id, event, occurred_at from {{ s }}.journey_inbox_0
     where occurred_at > p_now;
    truncate {{ s }}.journey_inbox_0;
  else
    lock table {{ s }}.journey_inbox_1 in access exclusive mode;
    insert into _hs_jinbox (user_key, event_id, event, occurred_at, properties, exempt)
    select e.user_key, e.id, e.event, e.occurred_at, e.properties,
           coalesce(e.message_id like 'journey:%', false)
      from {{ s }}.journey_inbox_1 i join {{ s }}.events e on e.id = i.event_id
     where i.occurred_at <= p_now;
    insert into {{ s }}.journey_inbox (user_key, event_id, event, occurred_at)
    select user_key, event_id, event, occurred_at from {{ s }}.journey_inbox_1
     where occurred_at > p_now;
    truncate {{ s }}.journey_inbox_1;
  end if;
end $hs$;

------------------------------------------------------------------------------------------
-- The journey pass at `p_now`: called by tick (after the buckets, so this tick's
-- transitions enrol in it) and by the real-time pass (for the keys it was given).
--   p_keys: the real-time pass's keys; null for a tick (the keys of the drained change
--     queue, of the transitions recorded since `p_transitions_after`, and of the events that
--     waiting conditions read which became visible since the previous tick `p_t0`).
-- Returns {enrolled, skipped, steps, messages, ended}.
------------------------------------------------------------------------------------------
create or replace function {{ s }}._journey_pass(p_now timestamptz, p_keys text[],
  p_max_age interval, p_zone text, p_transitions_after bigint, p_t0 timestamptz)
returns jsonb language plpgsql
set plan_cache_mode = force_custom_plan
as $hs$
declare
  result jsonb;
begin
  perform {{ s }}._journey_work_tables();
  delete from _hs_jstat;
  insert into _hs_jstat values (0, 0, 0, 0, 0);
  delete from _hs_jkeys;
  if p_keys is null then
    insert into _hs_jkeys select distinct user_key from _hs_changed;
    insert into _hs_jkeys
    select distinct t.user_key from {{ s }}.transitions t where t.id > p_transitions_after
    on conflict do nothing;
    -- Events recorded earlier with an occurred_at in (previous tick, now]: they happen now.
    insert into _hs_jkeys
    select distinct e.user_key from {{ s }}.events e
     where e.event = any({{ s }}._journey_condition_events())
       and e.occurred_at > p_t0 and e.occurred_at <= p_now
    on conflict do nothing;
  else
    insert into _hs_jkeys select distinct k from unnest(p_keys) as k where k is not null;
  end if;

  -- The trigger events this pass considers, taken before any run moves: an event recorded
  -- during the pass (`emit`) waits for the next one.
  delete from _hs_jinbox;
  if p_keys is null then
    perform {{ s }}._journey_inbox_drain(p_now);
  else
    with taken as (
      delete from {{ s }}.journey_inbox i using _hs_jkeys k
       where i.user_key = k.user_key and i.occurred_at <= p_now returning i.event_id)
    insert into _hs_jinbox (user_key, event_id, event, occurred_at, properties, exempt)
    select e.user_key, e.id, e.event, e.occurred_at, e.properties,
           coalesce(e.message_id like 'journey:%', false)
      from taken t join {{ s }}.events e on e.id = t.event_id;
  end if;

  -- 1. The runs in flight move (exits included).
  perform {{ s }}._journey_move(p_now, p_max_age, p_zone, true, p_keys is null);

  -- 2. The pass's triggers, in (occurred_at, id) order: each round takes, per contact and
  --    journey, the earliest request left (every one for `entry unlimited`), admits it and
  --    moves the new runs at once, so each enrolment sees the runs created before it.
  if exists (select 1 from _hs_jinbox) then
    delete from _hs_jcand;
    perform {{ s }}._journey_candidates();
    loop
      delete from _hs_jpick;
      insert into _hs_jpick (seq, user_key, journey_id, trigger_kind, event_id, occurred_at,
             properties, entry_count, filter_ok, exempt, parent_run_id)
      select c.seq, c.user_key, c.journey_id, c.trigger_kind, c.event_id, c.occurred_at,
             c.properties, c.entry_count, c.filter_ok, c.exempt, c.parent_run_id
        from _hs_jcand c
        left join {{ s }}.journeys j on j.id = c.journey_id
       where j.entry_kind is not distinct from 'unlimited'
          or not exists (select 1 from _hs_jcand d
                          where d.user_key = c.user_key and d.journey_id = c.journey_id
                            and (d.occurred_at, d.event_id) < (c.occurred_at, c.event_id));
      exit when not found;
      delete from _hs_jcand c using _hs_jpick p where c.seq = p.seq;
      perform {{ s }}._journey_admit(p_now, p_max_age);
      perform {{ s }}._journey_move(p_now, p_max_age, p_zone, false, false);
    end loop;
  end if;

  select jsonb_build_object('enrolled', t.enrolled, 'skipped', t.skipped, 'steps', t.steps,
                            'messages', t.messages, 'ended', t.ended)
    into result from _hs_jstat t;
  return result;
end $hs$;

------------------------------------------------------------------------------------------
-- Deploy: bring the journeys (and reactions) in line with the compiled project.
--   p_journeys: [{"id", "kind", "bucket_id", "enabled", "entry_kind", "entry_period"
--     (seconds or null), "polls", "definition", "triggers": [event names], "steps": [{
--     "step_id", "kind", "next_step", "template", "category", "target", "event", "seconds",
--     "hour", "minute", "days", "zone_path"}]}]
-- Runs of a removed journey, and runs parked at a step id that no longer exists, end
-- `exited` (`step_removed`) at the last tick's instant; other runs stay where they are.
------------------------------------------------------------------------------------------
create or replace function {{ s }}._sync_journeys(p_journeys jsonb) returns jsonb
language plpgsql as $hs$
declare
  v_ended timestamptz;
  r       record;
  n       bigint;
  ended   bigint := 0;
  ended_by jsonb := '{}';
  added   text[];
  changed text[];
  removed text[] := '{}';
begin
  perform pg_advisory_xact_lock({{ lock_key }});
  select coalesce(last_tick_at, now()) into v_ended from {{ s }}.tick_state;

  create temp table _hs_jdeclared on commit drop as
  select d.id, d.kind, d.bucket_id, d.enabled, d.entry_kind,
         make_interval(secs => d.entry_period) as entry_period, d.polls,
         coalesce(d.definition, '{}') as definition, coalesce(d.triggers, '[]') as triggers,
         coalesce(d.steps, '[]') as steps,
         md5(coalesce(d.definition, '{}')::text || coalesce(d.steps, '[]')::text) as fingerprint
    from jsonb_to_recordset(p_journeys) as d(id text, kind text, bucket_id text,
         enabled boolean, entry_kind text, entry_period bigint, polls boolean,
         definition jsonb, triggers jsonb, steps jsonb);

  for r in select j.id from {{ s }}.journeys j
            where not exists (select 1 from _hs_jdeclared d where d.id = j.id) order by j.id loop
    update {{ s }}.runs set status = 'exited', exit_reason = 'step_removed', ended_at = v_ended,
           wake_at = null, updated_at = v_ended
     where journey_id = r.id and status in ('active', 'waiting');
    get diagnostics n = row_count;
    ended := ended + n;
    if n > 0 then
      ended_by := ended_by || jsonb_build_object(r.id, n);
    end if;
    delete from {{ s }}.journey_steps where journey_id = r.id;
    delete from {{ s }}.journeys where id = r.id;
    removed := removed || r.id;
  end loop;

  select coalesce(array_agg(d.id order by d.id), '{}') into added
    from _hs_jdeclared d where not exists (select 1 from {{ s }}.journeys j where j.id = d.id);
  select coalesce(array_agg(d.id order by d.id), '{}') into changed
    from _hs_jdeclared d join {{ s }}.journeys j on j.id = d.id
   where j.fingerprint <> d.fingerprint;

  insert into {{ s }}.journeys as j (id, fingerprint, enabled, kind, entry_kind, entry_period,
         definition, deployed_at, bucket_id, polls)
  select d.id, d.fingerprint, d.enabled, d.kind, d.entry_kind, d.entry_period, d.definition,
         v_ended, d.bucket_id, d.polls
    from _hs_jdeclared d
  on conflict (id) do update
     set fingerprint = excluded.fingerprint, enabled = excluded.enabled, kind = excluded.kind,
         entry_kind = excluded.entry_kind, entry_period = excluded.entry_period,
         definition = excluded.definition, bucket_id = excluded.bucket_id,
         polls = excluded.polls,
         deployed_at = case when j.fingerprint <> excluded.fingerprint
                            then excluded.deployed_at else j.deployed_at end;

  delete from {{ s }}.journey_steps s where s.journey_id = any(added || changed);
  insert into {{ s }}.journey_steps (journey_id, step_id, kind, next_step, template, category,
         target, event, seconds, hour, minute, days, zone_path)
  select d.id, x.step_id, x.kind, x.next_step, x.template, x.category, x.target, x.event,
         x.seconds, x.hour, x.minute,
         (select array_agg(v::smallint) from jsonb_array_elements_text(x.days) v),
         (select array_agg(v) from jsonb_array_elements_text(x.zone_path) v)
    from _hs_jdeclared d
   cross join jsonb_to_recordset(d.steps) as x(step_id text, kind text, next_step text,
         template text, category text, target text, event text, seconds bigint,
         hour smallint, minute smallint, days jsonb, zone_path jsonb)
   where d.id = any(added || changed);

  -- Runs at a step id the new program no longer has.
  for r in select unnest(changed) as id loop
    update {{ s }}.runs u set status = 'exited', exit_reason = 'step_removed',
           ended_at = v_ended, wake_at = null, updated_at = v_ended
     where u.journey_id = r.id and u.status in ('active', 'waiting')
       and not exists (select 1 from {{ s }}.journey_steps s
                        where s.journey_id = u.journey_id and s.step_id = u.step_id);
    get diagnostics n = row_count;
    ended := ended + n;
    if n > 0 then
      ended_by := ended_by || jsonb_build_object(r.id, n);
    end if;
  end loop;

  delete from {{ s }}.journey_trigger_events t
   where not exists (select 1 from _hs_jdeclared d, jsonb_array_elements_text(d.triggers) e
                      where e = t.event);
  insert into {{ s }}.journey_trigger_events (event)
  select distinct e from _hs_jdeclared d, jsonb_array_elements_text(d.triggers) e
  on conflict do nothing;

  drop table _hs_jdeclared;
  return jsonb_build_object('added', to_jsonb(added), 'changed', to_jsonb(changed),
                            'removed', to_jsonb(removed), 'runs_ended', ended,
                            'runs_ended_by_journey', ended_by);
end $hs$;
