-- The benchmark's synthetic dataset, generated inside Postgres (hogsend bench). Statements are
-- separated by lines holding only `-- ;;`. Parameters (bound, not spliced): $contacts = the
-- number of contacts (bigint), $t_end = the instant the data ends at (timestamptz). The caller
-- seeds random() first (setseed) on the same connection and disables parallel plans, so the
-- data is identical run after run on the same Postgres version.
--
-- Contacts: 10% anonymous-only (no external id), 1/3 without email, 0.5% soft-deleted.
-- Properties of mixed types: `plan` (5% missing), `country`, `seats` (a number, or for 10%
-- the same number as a string: "12" never satisfies `>= 10`), `address` (an object with a
-- country and a city, a plain string for 20%, missing for 8%), `converted` (true, false or
-- missing), `role`, `signup source` (a quoted key), `company.employees` (half), `score` (a
-- number, JSON null, or missing).
insert into hogsend.contacts (external_id, anonymous_id, email, properties, created_at, updated_at, deleted_at)
select case when i % 10 = 0 then null else 'u' || i end,
       case when i % 10 = 0 then 'anon-' || i end,
       case when i % 3 <> 0 then 'user' || i || '@example.com' end,
       jsonb_strip_nulls(jsonb_build_object(
         'plan', (array['free','free','free','free','free','free','free','free','trial','trial','trial',
                        'pro','pro','pro','pro','pro','team','team','enterprise', null])[1 + floor(random() * 20)::int],
         'country', (array['US','US','US','DE','DE','FR','GB','GB','BR','IN','JP'])[1 + floor(random() * 11)::int],
         'seats', case when random() < 0.1 then to_jsonb((1 + floor(50 * random() ^ 3))::int::text)
                       else to_jsonb((1 + floor(50 * random() ^ 3))::int) end,
         'address', case when random() < 0.2 then to_jsonb('unknown'::text)
                         when random() < 0.1 then null
                         else jsonb_build_object('country', (array['US','DE','FR','GB'])[1 + floor(random() * 4)::int],
                                                 'city', 'city' || floor(random() * 100)::int) end,
         'converted', (array[to_jsonb(true), to_jsonb(false), null, null, null, null, null, null])[1 + floor(random() * 8)::int],
         'role', (array['owner','admin','member','member'])[1 + floor(random() * 4)::int],
         'signup source', (array['partner','ads-google','ads-google','ads-meta','organic','organic','organic',
                                 'organic','organic', null])[1 + floor(random() * 10)::int],
         'company', case when random() < 0.5 then jsonb_build_object('employees', floor(1 + 200 * random() ^ 2)::int) end
       )) || case when random() < 0.4 then jsonb_build_object('score', floor(random() * 100)::int)
                  when random() < 0.2 then '{"score": null}'::jsonb
                  else '{}'::jsonb end,
       $t_end - interval '120 days',
       $t_end - interval '120 days',
       case when random() < 0.005 then $t_end - interval '1 day' end
  from generate_series(1, $contacts) as i
-- ;;
-- Events: 10 per contact on average over the 90 days before $t_end, skewed towards recent days
-- (occurred_at = end - u² × 90d) and towards low contact numbers (contact = 1 + n·u^1.7: the
-- busiest contacts have ~100× the median). 20 names with a skewed distribution (app_opened
-- 28%, "$pageview" 15%, feature_used 10%, …, support_ticket 1%); the names the standard
-- project filters on carry properties.
insert into hogsend.events (user_key, event, properties, occurred_at, received_at)
select case when r.u % 10 = 0 then 'anon-' || r.u else 'u' || r.u end,
       r.name,
       case r.name
         when '$pageview' then jsonb_build_object('path',
           (array['/pricing','/pricing','/docs','/blog','/app','/app','/app','/changelog'])[1 + floor(random() * 8)::int])
         when 'checkout_started' then jsonb_build_object('amount', floor(random() * 500)::int,
           'currency', (array['USD','USD','USD','EUR','EUR','GBP'])[1 + floor(random() * 6)::int])
         when 'checkout_completed' then jsonb_build_object('amount', floor(random() * 500)::int,
           'currency', (array['USD','USD','USD','EUR','EUR','GBP'])[1 + floor(random() * 6)::int])
         when 'payment_failed' then jsonb_build_object('amount', floor(random() * 500)::int,
           'attempt', 1 + floor(random() * 3)::int)
         when 'support_ticket' then jsonb_build_object(
           'priority', (array['low','normal','normal','high','urgent'])[1 + floor(random() * 5)::int],
           'resolved', random() < 0.5)
         when 'feature_used' then jsonb_build_object(
           'feature', (array['export','search','share','comments'])[1 + floor(random() * 4)::int])
         else '{}'::jsonb end,
       r.at, r.at
  from (select 1 + floor($contacts * random() ^ 1.7)::bigint as u,
               (array['app_opened','$pageview','feature_used','project_created','checkout_started',
                      'checkout_completed','payment_failed','payment_succeeded','invite_sent','email_opened',
                      'search','export','settings_changed','support_ticket','trial_started',
                      'subscription_started','user.signed_up','report_viewed','comment_added','file_uploaded'])
                 [1 + width_bucket(random(), array[0.28,0.43,0.53,0.58,0.62,0.65,0.67,0.70,0.73,0.77,
                                                   0.81,0.83,0.85,0.86,0.87,0.88,0.90,0.94,0.97]::float8[])] as name,
               $t_end - (random() ^ 2) * interval '90 days' as at
          from generate_series(1, $contacts * 10) as g) as r
-- ;;
-- Messages (what `opened` / `clicked` read): a welcome email to 30% of the contacts, half of
-- them opened, a third of those clicked; a tips email to 20%.
insert into hogsend.messages (journey_id, user_key, template, to_email, status, created_at, sent_at, opened_at, clicked_at)
select 'onboarding', c.user_key, t.template, c.email, 'sent', t.sent_at, t.sent_at,
       case when t.opened then t.sent_at + interval '2 hours' end,
       case when t.opened and t.clicked then t.sent_at + interval '3 hours' end
  from hogsend.contacts as c
 cross join lateral (
   select x.template, $t_end - random() * interval '60 days' as sent_at,
          random() < 0.5 as opened, random() < 0.34 as clicked
     from (values ('welcome', 0.3), ('tips_1', 0.2)) as x(template, share)
    where random() < x.share and c.user_key is not null) as t
