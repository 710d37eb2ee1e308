-- hogsend base schema, version 3: a change queue that does not bloat.
--
-- `changed_keys` was one table drained by `delete` every tick: each drained row became a
-- dead tuple, and until (auto)vacuum caught up every later tick scanned them (after a bulk
-- load: millions of dead rows, quiet ticks 4-5x slower). Now it is partitioned in two
-- *slots*. Writers (the triggers, `merge_contacts`) insert through the parent, and a row's
-- slot defaults to the current one: the parity of the sequence `queue_epoch`, which is not
-- transactional, so a tick's switch is seen by every writer at once. A tick switches the
-- slot, then drains the previous one whole — copy, then `truncate` (no dead tuples, the
-- file starts empty) — under an ACCESS EXCLUSIVE lock that waits for the writers already
-- inside it. New writers go to the new slot and never wait; only a writer that read the slot
-- just before the switch and inserts after it waits for the tick, and its rows stay in the
-- old slot for the tick after next (never lost: every tick drains the slot it left, and
-- entries left behind in the other one are drained when it is left in turn). The real-time
-- pass deletes its keys' entries from both slots (dead tuples bounded by one tick period:
-- the next drain of that slot truncates them).

create sequence {{ s }}.queue_epoch minvalue 0 start with 0;
-- Called once, so that every later nextval moves last_value (and so the slot).
select nextval('{{ s }}.queue_epoch');

create function {{ s }}._queue_slot() returns smallint
language sql volatile as $hs$
  select (last_value % 2)::smallint from {{ s }}.queue_epoch
$hs$;

alter table {{ s }}.changed_keys rename to changed_keys_v2;
drop index {{ s }}.changed_keys_user_key;

create table {{ s }}.changed_keys (
  user_key text not null,
  kind     "char" not null,
  event    text,
  slot     smallint not null default {{ s }}._queue_slot()
) partition by list (slot);
create table {{ s }}.changed_keys_0 partition of {{ s }}.changed_keys for values in (0);
create table {{ s }}.changed_keys_1 partition of {{ s }}.changed_keys for values in (1);
create index changed_keys_user_key on {{ s }}.changed_keys (user_key);

insert into {{ s }}.changed_keys (user_key, kind, event)
select user_key, kind, event from {{ s }}.changed_keys_v2;
drop table {{ s }}.changed_keys_v2;

-- The tick's start: as in version 1, with the drain by slot switch and truncate.
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
    select distinct user_key, kind, event from {{ s }}.changed_keys_0;
    get diagnostics n = row_count;
    truncate {{ s }}.changed_keys_0;
  else
    lock table {{ s }}.changed_keys_1 in access exclusive mode;
    insert into _hs_changed (user_key, kind, event)
    select distinct user_key, kind, event from {{ s }}.changed_keys_1;
    get diagnostics n = row_count;
    truncate {{ s }}.changed_keys_1;
  end if;
  if n > 0 then
    analyze _hs_changed;
  end if;
  return coalesce(t0, p_now);
end $hs$;
