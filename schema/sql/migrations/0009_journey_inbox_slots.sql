-- hogsend schema migration 9: the journey inbox rotates through two slots, like the change
-- queue, instead of being emptied by DELETE (which left a dead tuple per trigger event for
-- autovacuum to reclaim). FROZEN once committed.
--
-- `journey_inbox` (migration 3) becomes a table partitioned in two slots by `slot`, whose
-- default is the inbox's current slot (`_journey_inbox_slot()`, the parity of the
-- non-transactional sequence `journey_inbox_epoch`: a switch is seen by every writer at
-- once). A tick's journey pass switches the slot — after the tick's buckets have recorded
-- their transitions, whose `bucket:` events this pass must consider — then drains the slot
-- it left whole, under an ACCESS EXCLUSIVE lock that waits for every writer already inside
-- it: the rows ready at its instant become the pass's triggers, the others (events after
-- its instant) are copied into the current slot, and the slot is truncated (no dead
-- tuples). The real-time pass deletes its keys' rows from both slots; those dead tuples are
-- gone at that slot's next truncate. Why this is exactly-once: ARCHITECTURE.md, "Hot tables
-- and bloat". The inbox has its own sequence, not the change queue's, so that switching
-- twice in a tick never delays a change.
--
-- The rows waiting in the old table move into the new one (into the current slot).

create sequence {{ s }}.journey_inbox_epoch minvalue 0 start with 0;
-- Called once, so that every later nextval moves last_value (and so the slot).
select nextval('{{ s }}.journey_inbox_epoch');
-- The slot a new row goes to; needed here by the column default (the engine file
-- journeys.sql re-creates it with every migrate, like every function).
create function {{ s }}._journey_inbox_slot() returns smallint
language sql volatile as $hs$
  select (last_value % 2)::smallint from {{ s }}.journey_inbox_epoch
$hs$;

alter table {{ s }}.journey_inbox rename to journey_inbox_unslotted;
alter index {{ s }}.journey_inbox_time rename to journey_inbox_unslotted_time;
alter table {{ s }}.journey_inbox_unslotted
  rename constraint journey_inbox_pkey to journey_inbox_unslotted_pkey;

create table {{ s }}.journey_inbox (
  user_key    text not null,
  event_id    bigint not null,
  event       text not null,
  occurred_at timestamptz not null,
  slot        smallint not null default {{ s }}._journey_inbox_slot(),
  primary key (user_key, event_id, slot)
) partition by list (slot);
create table {{ s }}.journey_inbox_0 partition of {{ s }}.journey_inbox for values in (0);
create table {{ s }}.journey_inbox_1 partition of {{ s }}.journey_inbox for values in (1);

insert into {{ s }}.journey_inbox (user_key, event_id, event, occurred_at)
select user_key, event_id, event, occurred_at from {{ s }}.journey_inbox_unslotted;
drop table {{ s }}.journey_inbox_unslotted;
