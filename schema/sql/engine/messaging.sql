-- hogsend engine: who may receive a message (docs/language.md, "Who receives a message").
-- Re-applied by every `migrate`. `{{ s }}` is the validated schema name.

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
