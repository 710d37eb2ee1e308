-- hogsend engine: the read-only views over memberships and transitions.
-- Re-applied by every `migrate`; a view may only gain columns at the end here (changing or
-- removing one needs a `drop view` first).

create or replace view {{ s }}.bucket_members as
  select bucket_id, user_key, entered_at, entry_count
    from {{ s }}.memberships where active;

create or replace view {{ s }}.bucket_transitions as
  select id, bucket_id, user_key, kind, reason, nullif(label, '') as label,
         case when kind = 'dwell' then ordinal end as ordinal, entry_count, source, occurred_at
    from {{ s }}.transitions;

-- One row per journey run (CONTRACT: `journey_runs`): `step` is the step the run is at (the
-- last one once it ended); `wake_at` when time alone may move a waiting run.
create or replace view {{ s }}.journey_runs as
  select id, journey_id, user_key, status, step_id as step, entered_at, wake_at, ended_at,
         exit_reason
    from {{ s }}.runs;
