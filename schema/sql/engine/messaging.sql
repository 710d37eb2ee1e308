-- hogsend engine: deploying lists and templates (called by the generated messaging.sql)
-- and delivery's claim on the outbox. Re-applied by every `migrate`.
--
-- Also: who may receive a message (one rule: journeys and campaigns apply it when they
-- create a message, delivery again right before sending).

-- Why a message of `p_category` to the contact `p_user_key` (whose address is `p_email`)
-- must be skipped, or null when it may go out. The first reason that applies, in order:
-- `no_email`, `suppressed`, then — unless the category is `transactional` —
-- `unsubscribed_all`, `unsubscribed:<list>`, `not_subscribed:<list>` (an opt-in list the
-- contact never subscribed to). A category with no `lists` row counts as a list whose
-- default is subscribed; a null category as a non-transactional message of no list. A plain
-- SQL function (inlined by the planner), so journeys and campaigns call it per row of one
-- set-based statement.
create or replace function {{ s }}.message_skip_reason(p_email text, p_user_key text, p_category text)
returns text language sql stable as $hs$
  select case
    when p_email is null or btrim(p_email) = '' then 'no_email'
    when exists (select 1 from {{ s }}.suppressions x where x.email = lower(btrim(p_email)))
      then 'suppressed'
    when p_category is not distinct from 'transactional' then null
    when exists (select 1 from {{ s }}.subscriptions u
                  where u.user_key = p_user_key and u.list_id = '*' and u.status = 'unsubscribed')
      then 'unsubscribed_all'
    when p_category is null then null
    when exists (select 1 from {{ s }}.subscriptions u
                  where u.user_key = p_user_key and u.list_id = p_category and u.status = 'unsubscribed')
      then 'unsubscribed:' || p_category
    when exists (select 1 from {{ s }}.lists l where l.id = p_category and not l.default_subscribed)
         and not exists (select 1 from {{ s }}.subscriptions u
                          where u.user_key = p_user_key and u.list_id = p_category
                            and u.status = 'subscribed')
      then 'not_subscribed:' || p_category
  end
$hs$;


-- Bring `lists` in line with the project's `list` blocks.
--   p_lists: [{"id", "name", "description", "default_subscribed"}]
-- A removed list's row goes; its subscriptions stay (harmless, and back if it returns).
create or replace function {{ s }}._sync_lists(p_lists jsonb) returns void
language plpgsql as $hs$
begin
  delete from {{ s }}.lists l
   where not exists (select 1 from jsonb_array_elements(p_lists) d where d->>'id' = l.id);
  insert into {{ s }}.lists as l (id, name, description, default_subscribed)
  select d.id, d.name, d.description, coalesce(d.default_subscribed, true)
    from jsonb_to_recordset(p_lists)
         as d(id text, name text, description text, default_subscribed boolean)
  on conflict (id) do update
     set name = excluded.name, description = excluded.description,
         default_subscribed = excluded.default_subscribed,
         deployed_at = case when (l.name, l.description, l.default_subscribed)
                                 is distinct from
                                 (excluded.name, excluded.description, excluded.default_subscribed)
                            then now() else l.deployed_at end;
end
$hs$;

-- Bring `templates` in line with the project's templates.
--   p_templates: [DeployedTemplate JSON: {"id", "subject", "category", "from", "reply_to",
--                 "preheader", "html", "text"}]
create or replace function {{ s }}._sync_templates(p_templates jsonb) returns void
language plpgsql as $hs$
begin
  delete from {{ s }}.templates t
   where not exists (select 1 from jsonb_array_elements(p_templates) d where d->>'id' = t.id);
  insert into {{ s }}.templates as t (id, category, definition)
  select d->>'id', d->>'category', d from jsonb_array_elements(p_templates) d
  on conflict (id) do update
     set category = excluded.category, definition = excluded.definition,
         deployed_at = case when t.definition = excluded.definition
                            then t.deployed_at else now() end;
end
$hs$;

-- Delivery's claim: up to p_limit due messages — queued and due, or 'sending' with an
-- expired lease (their worker died) — oldest first, locked with SKIP LOCKED so concurrent
-- daemons claim disjoint sets, and leased: status 'sending', next_attempt_at = now + lease,
-- attempts + 1. Returns the claimed rows. Reads O(p_limit) index entries per branch.
create or replace function {{ s }}.claim_messages(p_limit integer, p_lease_seconds integer)
returns setof {{ s }}.messages
language sql as $hs$
  with due as (
    (select id from {{ s }}.messages
      where status = 'queued' and next_attempt_at is null
      order by id limit p_limit)
    union all
    (select id from {{ s }}.messages
      where status = 'queued' and next_attempt_at <= now()
      order by next_attempt_at, id limit p_limit)
    union all
    (select id from {{ s }}.messages
      where status = 'sending' and next_attempt_at <= now()
      order by next_attempt_at limit p_limit)
  ), picked as (
    select m.id from {{ s }}.messages m
     where m.id in (select id from due)
       and (m.status = 'queued' and coalesce(m.next_attempt_at, '-infinity') <= now()
            or m.status = 'sending' and m.next_attempt_at <= now())
     order by m.id
     limit p_limit
     for update skip locked
  )
  update {{ s }}.messages m
     set status = 'sending', attempts = m.attempts + 1,
         next_attempt_at = now() + make_interval(secs => p_lease_seconds), updated_at = now()
    from picked
   where m.id = picked.id
  returning m.*;
$hs$;

