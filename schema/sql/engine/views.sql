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
