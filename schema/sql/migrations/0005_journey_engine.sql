-- hogsend schema migration 5: what the journey engine needs beyond migration 3.
--
-- Each deployed journey's step program, one row per step with its stable step id
-- (docs/language.md, "Step ids"), so that a pass advances every run at a step of one kind
-- with one set-based statement. Maintained by `migrate` (`_sync_journeys`). FROZEN once
-- committed.

create table {{ s }}.journey_steps (
  journey_id text not null,
  -- the stable step id: `s1`, `s3.then.s1`, `s3.elif1.s2`, `s3.else.s1`
  step_id    text not null,
  -- send, wait, wait_until, wait_time, if, start, emit, exit
  kind       text not null check (kind in ('send', 'wait', 'wait_until', 'wait_time', 'if',
                                           'start', 'emit', 'exit')),
  -- the step a run moves to after this one (null: running off the end completes the run);
  -- for `if`, where a run goes when no branch holds and there is no `else`
  next_step  text,
  -- send: the template and its category; start: the journey; emit: the event name
  template   text,
  category   text,
  target     text,
  event      text,
  -- wait: the duration; wait_until: its `at most`
  seconds    bigint,
  -- wait_time: local hour and minute, allowed ISO weekdays (1 = Monday; empty: any day),
  -- the contact property path holding the zone (null: the project's zone)
  hour       smallint,
  minute     smallint,
  days       smallint[],
  zone_path  text[],
  primary key (journey_id, step_id)
);

-- The bucket a reaction belongs to (null for journeys): its `on enter` runs end when the
-- membership that started them ends.
alter table {{ s }}.journeys add column bucket_id text;
-- Whether a waiting run's conditions (`exit when`, `wait until`) can change truth value by
-- the clock alone (a `within` window): such runs are re-tested by every tick.
alter table {{ s }}.journeys add column polls boolean not null default false;
