-- The journey bench's runs, loaded set-based (hogsend-bench journeys): N contacts `j1`..`jN`,
-- each with one `user.signed_up` event and the state the journey pass leaves after enrolling
-- it in `onboarding` (bench/src/journeys.hog): the run parked at `s2` (`wait 3d`), the
-- history of `s1` (`send welcome`) and its message. Statements are separated by lines holding
-- only `-- ;;`. Parameters: $contacts (bigint), $t0 (timestamptz): the instant of the first
-- tick after the load. engine-tests/tests/bench_journeys.rs checks, on a small N, that this
-- is exactly what the engine writes when the same events go through ticks.
--
-- Contact i was enrolled by a pass at its `enrolled_at`, 5 s after its sign-up: 1% of the
-- runs (i % 100 = 0) wake in [t0 + 31 s, t0 + 60 s] (due at t0 + 60 s, none at t0 + 30 s);
-- the others between t0 + 6 h and t0 + 47.5 h.
create temp table bench_enrol as
select 'j' || i as user_key,
       $t0 - interval '3 days'
         + case when i % 100 = 0 then interval '31 seconds' + ((i / 100) % 30) * interval '1 second'
                else interval '6 hours' + (i % 9973) * interval '15 seconds' end as enrolled_at
  from generate_series(1, $contacts) as i
-- ;;
insert into hogsend.contacts (external_id, email, created_at, updated_at)
select user_key, user_key || '@example.com', $t0 - interval '30 days', $t0 - interval '30 days'
  from bench_enrol
 order by user_key
-- ;;
insert into hogsend.events (user_key, event, properties, occurred_at, received_at)
select user_key, 'user.signed_up', '{}', enrolled_at - interval '5 seconds',
       enrolled_at - interval '5 seconds'
  from bench_enrol
 order by enrolled_at, user_key
-- ;;
-- The run as `_journey_admit` creates it (entered at the event, `exclusive` for `entry once`)
-- after `_journey_move` sent s1 (arrived at s2 at the pass instant) and parked it at s2.
insert into hogsend.runs (journey_id, user_key, status, step_id, entered_at, arrived_at,
       wake_at, trigger_kind, trigger_event_id, trigger_properties, exclusive, created_at,
       updated_at)
select 'onboarding', b.user_key, 'waiting', 's2', e.occurred_at, b.enrolled_at,
       b.enrolled_at + interval '3 days', 'event', e.id, e.properties, true, b.enrolled_at,
       b.enrolled_at
  from bench_enrol b
  join hogsend.events e on e.user_key = b.user_key and e.event = 'user.signed_up'
 order by b.enrolled_at, e.id
-- ;;
insert into hogsend.run_steps (user_key, run_id, step_id, kind, outcome, executed_at)
select r.user_key, r.id, 's1', 'send', 'welcome', r.created_at
  from hogsend.runs r
 where r.journey_id = 'onboarding'
-- ;;
insert into hogsend.messages (journey_id, run_id, user_key, template, to_email, status,
       step_id, category, skip_reason, created_at, updated_at)
select r.journey_id, r.id, r.user_key, 'welcome', c.email,
       case when v.reason is null then 'queued' else 'skipped' end,
       's1', 'transactional', v.reason, r.created_at, r.created_at
  from hogsend.runs r
  left join hogsend.contacts c on c.user_key = r.user_key
 cross join lateral (
   select hogsend.message_skip_reason(c.email, r.user_key, 'transactional') as reason) v
 where r.journey_id = 'onboarding'
 order by r.id
-- ;;
drop table bench_enrol
