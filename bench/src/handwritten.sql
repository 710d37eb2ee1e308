-- Hand-written set-based SQL for the standard project's 20 buckets (hogsend-bench engine): what a
-- careful engineer would write for each criteria by hand, knowing the data and the indexes.
-- Each query returns the live contacts that match at $1 (the instant) with the backfill
-- dwell anchor (docs/language.md: the latest event <= $1 among the names of the criteria's
-- windowed atoms, with their filters; NULL when none or when no atom is windowed). The
-- benchmark checks that every query yields exactly the compiled backfill's members and
-- anchors. Sections start with a line `-- bucket: <id>`.

-- bucket: went_dormant
-- did app_opened and not did app_opened within 7d
select a.user_key, a.last_at
  from (select user_key, max(occurred_at) as last_at
          from hogsend.events
         where event = 'app_opened' and occurred_at <= $1
         group by user_key) as a
  join hogsend.contacts as c on c.user_key = a.user_key and c.deleted_at is null
 where a.last_at < $1 - interval '7 days'

-- bucket: power_user
-- count app_opened within 7d >= 5
select a.user_key, a.last_at
  from (select user_key, max(occurred_at) as last_at
          from hogsend.events
         where event = 'app_opened' and occurred_at between $1 - interval '7 days' and $1
         group by user_key
        having count(*) >= 5) as a
  join hogsend.contacts as c on c.user_key = a.user_key and c.deleted_at is null

-- bucket: casual_user
-- did app_opened within 90d and count app_opened within 30d < 3
select a.user_key, a.last_at
  from (select user_key, max(occurred_at) as last_at
          from hogsend.events
         where event = 'app_opened' and occurred_at between $1 - interval '90 days' and $1
         group by user_key
        having count(*) filter (where occurred_at >= $1 - interval '30 days') < 3) as a
  join hogsend.contacts as c on c.user_key = a.user_key and c.deleted_at is null

-- bucket: three_exports
-- count export within 30d == 3
select a.user_key, a.last_at
  from (select user_key, max(occurred_at) as last_at
          from hogsend.events
         where event = 'export' and occurred_at between $1 - interval '30 days' and $1
         group by user_key
        having count(*) = 3) as a
  join hogsend.contacts as c on c.user_key = a.user_key and c.deleted_at is null

-- bucket: searchers
-- did search and count search within 14d != 2
select a.user_key, a.last_at
  from (select user_key, max(occurred_at) as last_at
          from hogsend.events
         where event = 'search' and occurred_at <= $1
         group by user_key
        having count(*) filter (where occurred_at >= $1 - interval '14 days') <> 2) as a
  join hogsend.contacts as c on c.user_key = a.user_key and c.deleted_at is null

-- bucket: heavy_commenters
-- count comment_added > 10
select a.user_key, null::timestamptz
  from (select user_key
          from hogsend.events
         where event = 'comment_added' and occurred_at <= $1
         group by user_key
        having count(*) > 10) as a
  join hogsend.contacts as c on c.user_key = a.user_key and c.deleted_at is null

-- bucket: stalled_projects
-- did project_created and count file_uploaded within 60d <= 1
select p.user_key, f.last_at
  from (select distinct user_key
          from hogsend.events
         where event = 'project_created' and occurred_at <= $1) as p
  join hogsend.contacts as c on c.user_key = p.user_key and c.deleted_at is null
  left join (select user_key, max(occurred_at) as last_at,
                    count(*) filter (where occurred_at >= $1 - interval '60 days') as recent
               from hogsend.events
              where event = 'file_uploaded' and occurred_at <= $1
              group by user_key) as f on f.user_key = p.user_key
 where coalesce(f.recent, 0) <= 1

-- bucket: trial_builders
-- contact.plan == "trial" and did project_created
select c.user_key, null::timestamptz
  from hogsend.contacts as c
 where c.deleted_at is null
   and c.properties -> 'plan' = '"trial"'
   and exists (select 1 from hogsend.events as e
                where e.user_key = c.user_key and e.event = 'project_created'
                  and e.occurred_at <= $1)

-- bucket: big_teams
-- contact.seats >= 10 and contact.plan in ["team", "enterprise"]
select c.user_key, null::timestamptz
  from hogsend.contacts as c
 where c.deleted_at is null
   and c.properties -> 'plan' in ('"team"', '"enterprise"')
   and case when jsonb_typeof(c.properties -> 'seats') = 'number'
            then (c.properties ->> 'seats')::numeric >= 10 else false end

-- bucket: german_actives
-- contact.address.country == "DE" and did app_opened within 30d
select c.user_key, max(e.occurred_at)
  from hogsend.contacts as c
  join hogsend.events as e
    on e.user_key = c.user_key and e.event = 'app_opened'
   and e.occurred_at between $1 - interval '30 days' and $1
 where c.deleted_at is null
   and c.properties -> 'address' -> 'country' = '"DE"'
 group by c.user_key

-- bucket: unconverted_buyers
-- contact.converted != true and did checkout_completed
select c.user_key, null::timestamptz
  from hogsend.contacts as c
 where c.deleted_at is null
   and (c.properties -> 'converted' is distinct from 'true')
   and exists (select 1 from hogsend.events as e
                where e.user_key = c.user_key and e.event = 'checkout_completed'
                  and e.occurred_at <= $1)

-- bucket: ad_signups
-- contact."signup source" contains "ads" and did user.signed_up within 60d
select c.user_key, max(e.occurred_at)
  from hogsend.contacts as c
  join hogsend.events as e
    on e.user_key = c.user_key and e.event = 'user.signed_up'
   and e.occurred_at between $1 - interval '60 days' and $1
 where c.deleted_at is null
   and jsonb_typeof(c.properties -> 'signup source') = 'string'
   and strpos(c.properties ->> 'signup source', 'ads') > 0
 group by c.user_key

-- bucket: welcome_readers
-- opened welcome and not clicked welcome and contact.score exists
select c.user_key, null::timestamptz
  from (select user_key
          from hogsend.messages
         where template = 'welcome'
         group by user_key
        having bool_or(opened_at is not null) and not bool_or(clicked_at is not null)) as m
  join hogsend.contacts as c on c.user_key = m.user_key and c.deleted_at is null
 where jsonb_typeof(c.properties -> 'score') <> 'null'

-- bucket: checkout_abandoners
-- did checkout_started within 1d and not did checkout_completed within 1d
select s.user_key, s.last_at
  from (select user_key, max(occurred_at) as last_at
          from hogsend.events
         where event = 'checkout_started' and occurred_at between $1 - interval '1 day' and $1
         group by user_key) as s
  join hogsend.contacts as c on c.user_key = s.user_key and c.deleted_at is null
 where not exists (select 1 from hogsend.events as e
                    where e.user_key = s.user_key and e.event = 'checkout_completed'
                      and e.occurred_at between $1 - interval '1 day' and $1)

-- bucket: payment_trouble
-- did payment_failed within 3d or (did payment_failed within 14d and not did payment_succeeded within 14d)
select f.user_key, greatest(f.last_failed, s.last_succeeded)
  from (select user_key, max(occurred_at) as last_failed
          from hogsend.events
         where event = 'payment_failed' and occurred_at between $1 - interval '14 days' and $1
         group by user_key) as f
  join hogsend.contacts as c on c.user_key = f.user_key and c.deleted_at is null
  left join lateral (
         select max(e.occurred_at) as last_succeeded
           from hogsend.events as e
          where e.user_key = f.user_key and e.event = 'payment_succeeded'
            and e.occurred_at <= $1) as s on true
 where f.last_failed >= $1 - interval '3 days'
    or s.last_succeeded is null or s.last_succeeded < $1 - interval '14 days'

-- bucket: big_spenders
-- did checkout_completed where (event.amount >= 400 and event.currency == "EUR") within 30d
select a.user_key, a.last_at
  from (select user_key, max(occurred_at) as last_at
          from hogsend.events
         where event = 'checkout_completed' and occurred_at between $1 - interval '30 days' and $1
           and properties -> 'currency' = '"EUR"'
           and case when jsonb_typeof(properties -> 'amount') = 'number'
                    then (properties ->> 'amount')::numeric >= 400 else false end
         group by user_key) as a
  join hogsend.contacts as c on c.user_key = a.user_key and c.deleted_at is null

-- bucket: pricing_regulars
-- count "$pageview" where (event.path contains "/pricing") within 7d >= 3 and not contact.plan in ["pro", "team", "enterprise"]
select a.user_key, a.last_at
  from (select user_key, max(occurred_at) as last_at
          from hogsend.events
         where event = '$pageview' and occurred_at between $1 - interval '7 days' and $1
           and jsonb_typeof(properties -> 'path') = 'string'
           and strpos(properties ->> 'path', '/pricing') > 0
         group by user_key
        having count(*) >= 3) as a
  join hogsend.contacts as c on c.user_key = a.user_key and c.deleted_at is null
 where not coalesce(c.properties -> 'plan' in ('"pro"', '"team"', '"enterprise"'), false)

-- bucket: needs_attention
-- all { any { did support_ticket where (event.priority == "urgent") within 7d
--             did support_ticket where (event.priority in ["high", "urgent"] and not event.resolved == true) within 2d }
--       not (contact.plan == "free" or contact.country in ["US", "GB"]) }
select a.user_key, a.last_at
  from (select user_key, max(occurred_at) as last_at
          from hogsend.events
         where event = 'support_ticket' and occurred_at between $1 - interval '7 days' and $1
           and (properties -> 'priority' = '"urgent"'
                or (properties -> 'priority' in ('"high"', '"urgent"')
                    and properties -> 'resolved' is distinct from 'true'))
         group by user_key
        having bool_or(properties -> 'priority' = '"urgent"')
            or bool_or(occurred_at >= $1 - interval '2 days')) as a
  join hogsend.contacts as c on c.user_key = a.user_key and c.deleted_at is null
 where not coalesce(c.properties -> 'plan' = '"free"', false)
   and not coalesce(c.properties -> 'country' in ('"US"', '"GB"'), false)

-- bucket: churn_risk
-- contact.plan in ["pro", "team", "enterprise"] and any { did payment_failed within 14d
--   count app_opened within 14d < 2   did support_ticket where (event.priority == "urgent") within 7d }
select c.user_key, a.last_at
  from hogsend.contacts as c
  left join lateral (
         select max(e.occurred_at) as last_at,
                count(*) filter (where e.event = 'app_opened'
                                   and e.occurred_at >= $1 - interval '14 days') as opens,
                bool_or(e.event = 'payment_failed'
                        and e.occurred_at >= $1 - interval '14 days') as failed,
                bool_or(e.event = 'support_ticket'
                        and e.occurred_at >= $1 - interval '7 days') as urgent
           from hogsend.events as e
          where e.user_key = c.user_key
            and e.event in ('app_opened', 'payment_failed', 'support_ticket')
            and e.occurred_at <= $1
            and (e.event <> 'support_ticket' or e.properties -> 'priority' = '"urgent"')) as a on true
 where c.deleted_at is null
   and c.properties -> 'plan' in ('"pro"', '"team"', '"enterprise"')
   and (a.opens < 2 or a.failed or a.urgent)

-- bucket: everyone
-- contact.country exists
select c.user_key, null::timestamptz
  from hogsend.contacts as c
 where c.deleted_at is null
   and jsonb_typeof(c.properties -> 'country') <> 'null'
