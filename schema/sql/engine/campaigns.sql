-- hogsend engine: campaigns (broadcasts; docs/language.md, "Campaigns"). Re-applied by every
-- `migrate`. `{{ s }}` is the validated schema name.
--
-- A campaign is started by the campaign pass (`_campaign_pass`, run by every tick) once it is
-- due: ONE insert freezes its audience and creates its messages — every member of the bucket,
-- or every contact subscribed to the list (explicitly, or by the list's default) — each
-- through `message_skip_reason`, queued or skipped with its reason. The unique index
-- `messages_campaign_contact` and `on conflict do nothing` make a second start (a rerun, a
-- crash between the insert and the status change, a second daemon) create nothing. Delivery
-- then sends the queued messages (re-checking who may receive right before each send), and
-- the pass marks the campaign `sent` once none is left to deliver.

-- The earliest instant a campaign may start: its `send_at`, or for a wall-clock time in the
-- contacts' zones, that time in the zone furthest ahead (UTC+14); null when it has neither.
create or replace function {{ s }}._campaign_due_at(p_send_at timestamptz, p_send_at_local timestamp)
returns timestamptz language sql immutable as $hs$
  select coalesce(p_send_at, (p_send_at_local at time zone 'UTC') - interval '14 hours')
$hs$;

-- Freezes the audience of campaign `p_id` and creates its messages, in one insert; returns
-- how many it created (0 on a rerun). Raises when the template or the audience is unknown
-- (the pass counts that as a failed attempt). `p_zone` is the project's zone, for contacts
-- with no valid zone of their own.
create or replace function {{ s }}._campaign_start(p_id text, p_now timestamptz, p_zone text)
returns bigint language plpgsql as $hs$
declare
  c          {{ s }}.broadcasts%rowtype;
  v_category text;
  v_default  boolean;
  v_zone     text;
  n          bigint;
begin
  select * into c from {{ s }}.broadcasts where id = p_id;
  select t.category into v_category from {{ s }}.templates t where t.id = c.template;
  if not found then
    raise exception 'unknown template %', c.template;
  end if;
  if c.audience_kind = 'list' then
    select l.default_subscribed into v_default from {{ s }}.lists l where l.id = c.audience_id;
    if not found then
      raise exception 'unknown list %', c.audience_id;
    end if;
    -- A list audience's messages belong to that list: its unsubscribe link leaves it.
    v_category := c.audience_id;
  elsif not exists (select 1 from {{ s }}.buckets b where b.id = c.audience_id) then
    raise exception 'unknown bucket %', c.audience_id;
  end if;
  v_zone := coalesce((select z.name from _hs_zones z where z.name = p_zone), 'UTC');

  with audience as (
    -- every active member of the bucket, whatever identifiers it has
    select m.user_key, k.email, k.properties
      from {{ s }}.memberships m
      left join {{ s }}.contacts k on k.user_key = m.user_key
     where c.audience_kind = 'bucket' and m.bucket_id = c.audience_id and m.active
       and k.deleted_at is null
    union all
    -- an opt-out list: every contact who has not unsubscribed from it
    select k.user_key, k.email, k.properties
      from {{ s }}.contacts k
     where c.audience_kind = 'list' and v_default and k.deleted_at is null
       and not exists (select 1 from {{ s }}.subscriptions u
                        where u.user_key = k.user_key and u.list_id = c.audience_id
                          and u.status = 'unsubscribed')
    union all
    -- an opt-in list: every contact who subscribed to it
    select u.user_key, k.email, k.properties
      from {{ s }}.subscriptions u
      left join {{ s }}.contacts k on k.user_key = u.user_key
     where c.audience_kind = 'list' and not v_default and u.list_id = c.audience_id
       and u.status = 'subscribed' and k.deleted_at is null
  ), zoned as (
    select a.user_key, a.email,
           case when c.send_at_local is not null
                then coalesce(z.name, v_zone) end as zone
      from audience a
      left join _hs_zones z
        on c.send_at_local is not null and z.name = a.properties #>> c.zone_path
  ), due as (
    -- the wall-clock time in each zone, once per zone
    select d.zone, {{ s }}._journey_local_instant(c.send_at_local, d.zone) as at
      from (select distinct zone from zoned where zone is not null) d
  )
  insert into {{ s }}.messages (campaign_id, user_key, template, to_email, status, category,
         skip_reason, next_attempt_at, created_at, updated_at)
  select c.id, a.user_key, c.template, a.email,
         case when v.reason is null then 'queued' else 'skipped' end,
         v_category, v.reason, case when v.reason is null then d.at end, p_now, p_now
    from zoned a
    left join due d on d.zone = a.zone
   cross join lateral (
     select {{ s }}.message_skip_reason(a.email, a.user_key, v_category) as reason) v
  on conflict (campaign_id, user_key) where campaign_id is not null do nothing;
  get diagnostics n = row_count;
  return n;
end $hs$;

-- The campaign pass at `p_now`: starts every due campaign (each in its own subtransaction, so
-- one that fails does not stop the others or the tick), then marks `sent` every sending
-- campaign with nothing left to deliver. A start that fails is retried with a backoff (30 s,
-- 1 min, 2 min, 4 min); the fifth failure ends the campaign `failed` with its error. Returns
-- the counts, or null when nothing happened.
create or replace function {{ s }}._campaign_pass(p_now timestamptz, p_zone text)
returns jsonb language plpgsql as $hs$
declare
  c        record;
  n        bigint;
  started  integer := 0;
  failures integer := 0;
  queued   bigint := 0;
  finished integer;
begin
  -- the session's zone list (_hs_zones), shared with the journey pass
  perform {{ s }}._journey_work_tables();
  for c in
    select x.id from {{ s }}.broadcasts x
     where x.status = 'scheduled' and x.auto_start
       and {{ s }}._campaign_due_at(x.send_at, x.send_at_local) <= p_now
       and coalesce(x.retry_at, '-infinity') <= p_now
     order by x.created_at, x.id
       for update skip locked
  loop
    begin
      n := {{ s }}._campaign_start(c.id, p_now, p_zone);
      update {{ s }}.broadcasts
         set status = 'sending', started_at = p_now, updated_at = p_now, retry_at = null
       where id = c.id;
      started := started + 1;
      queued := queued + n;
    exception when others then
      update {{ s }}.broadcasts x
         set attempts = x.attempts + 1, last_error = sqlerrm, updated_at = p_now,
             retry_at = p_now + make_interval(secs => 30 * power(2, x.attempts)),
             status = case when x.attempts + 1 >= 5 then 'failed' else x.status end,
             completed_at = case when x.attempts + 1 >= 5 then p_now end
       where x.id = c.id;
      failures := failures + 1;
    end;
  end loop;
  with done as (
    update {{ s }}.broadcasts x
       set status = 'sent', completed_at = p_now, updated_at = p_now
     where x.status = 'sending'
       and not exists (select 1 from {{ s }}.messages m
                        where m.campaign_id = x.id and m.status in ('queued', 'sending'))
    returning 1)
  select count(*) into finished from done;
  if started = 0 and failures = 0 and finished = 0 then
    return null;
  end if;
  return jsonb_build_object('started', started, 'messages', queued, 'failed_attempts', failures,
                            'completed', finished);
end $hs$;

-- Cancels campaign `p_id` unless it is finished: its messages not yet handed to delivery
-- become `cancelled` (sent ones stay sent; one being sent right now finishes). Returns the
-- number of messages cancelled, or null when the campaign is unknown or already finished.
create or replace function {{ s }}.cancel_campaign(p_id text)
returns bigint language plpgsql as $hs$
declare
  n bigint;
begin
  update {{ s }}.broadcasts
     set status = 'cancelled', completed_at = now(), updated_at = now(), retry_at = null
   where id = p_id and status in ('scheduled', 'sending');
  if not found then
    return null;
  end if;
  update {{ s }}.messages
     set status = 'cancelled', skip_reason = 'cancelled', next_attempt_at = null,
         updated_at = now()
   where campaign_id = p_id and status = 'queued';
  get diagnostics n = row_count;
  return n;
end $hs$;

-- Bring the code-defined campaigns in line with the project's `campaign` blocks.
--   p_campaigns: [{"id", "name", "audience_kind", "audience_id", "template", "send_at",
--                  "send_at_local", "zone_path"}]
-- A new one is `scheduled`; it is held (`auto_start` false) when it has no `send_at`, or
-- when its `send_at` is already past at this deploy (it never goes out by surprise: start
-- it through the API). A scheduled one takes the new definition (held again when its new
-- `send_at` is past); one that started keeps what it was started with. A removed campaign
-- that has not started is cancelled; one that started carries on. Returns
-- {"added": [ids], "held": [{"id", "send_at"}]} (held: this deploy's past `send_at`s).
create or replace function {{ s }}._sync_campaigns(p_campaigns jsonb) returns jsonb
language plpgsql as $hs$
declare
  added jsonb;
  held  jsonb;
begin
  update {{ s }}.broadcasts x
     set status = 'cancelled', completed_at = now(), updated_at = now(),
         last_error = 'removed from the project'
   where x.source = 'code' and x.status = 'scheduled'
     and not exists (select 1 from jsonb_array_elements(p_campaigns) d where d->>'id' = x.id);
  with d as (
    select e as definition, r.*
      from jsonb_array_elements(p_campaigns) e
     cross join lateral jsonb_to_record(e) as r(id text, name text, audience_kind text,
           audience_id text, template text, send_at timestamptz, send_at_local timestamp,
           zone_path text[])
  ), changed as (
    insert into {{ s }}.broadcasts as x (id, name, source, audience_kind, audience_id, template,
           send_at, send_at_local, zone_path, auto_start, definition)
    select d.id, d.name, 'code', d.audience_kind, d.audience_id, d.template, d.send_at,
           d.send_at_local, d.zone_path,
           coalesce({{ s }}._campaign_due_at(d.send_at, d.send_at_local)
                    + case when d.send_at_local is null then interval '0' else interval '26 hours' end
                    > now(), false),
           d.definition
      from d
    on conflict (id) do update
       set name = excluded.name, audience_kind = excluded.audience_kind,
           audience_id = excluded.audience_id, template = excluded.template,
           send_at = excluded.send_at, send_at_local = excluded.send_at_local,
           zone_path = excluded.zone_path, auto_start = excluded.auto_start,
           definition = excluded.definition, updated_at = now(), attempts = 0,
           last_error = null, retry_at = null
     where x.status = 'scheduled' and x.definition is distinct from excluded.definition
    returning x.id, x.auto_start, x.send_at, x.send_at_local, (xmax = 0) as inserted
  )
  select coalesce(jsonb_agg(to_jsonb(ch.id) order by ch.id) filter (where ch.inserted), '[]'),
         coalesce(jsonb_agg(jsonb_build_object('id', ch.id,
                   'send_at', coalesce(to_char(ch.send_at at time zone 'UTC',
                                               'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                                       to_char(ch.send_at_local, 'YYYY-MM-DD HH24:MI')))
                   order by ch.id)
                  filter (where not ch.auto_start
                            and (ch.send_at is not null or ch.send_at_local is not null)), '[]')
    into added, held
    from changed ch;
  return jsonb_build_object('added', added, 'held', held);
end $hs$;

-- One row per campaign (CONTRACT: `campaigns`) with its progress, counted from its messages:
-- `recipients` (the frozen audience: every message, skipped ones included), `queued` (not
-- yet delivered), `sent` (handed to the provider: sent, bounced or complained), `skipped`
-- (who may not receive it, and cancelled ones), `failed`.
create or replace view {{ s }}.campaigns as
  select x.id, x.name, x.status, x.audience_kind, x.audience_id, x.template, x.source,
         coalesce(p.recipients, 0) as recipients, coalesce(p.queued, 0) as queued,
         coalesce(p.sent, 0) as sent, coalesce(p.skipped, 0) as skipped,
         coalesce(p.failed, 0) as failed, coalesce(p.cancelled, 0) as cancelled,
         x.send_at, x.send_at_local, x.zone_path, x.auto_start, x.attempts, x.last_error,
         x.created_at, x.started_at, x.completed_at
    from {{ s }}.broadcasts x
    left join lateral (
      select count(*) as recipients,
             count(*) filter (where m.status in ('queued', 'sending')) as queued,
             count(*) filter (where m.status in ('sent', 'bounced', 'complained')) as sent,
             count(*) filter (where m.status = 'skipped') as skipped,
             count(*) filter (where m.status = 'failed') as failed,
             count(*) filter (where m.status = 'cancelled') as cancelled
        from {{ s }}.messages m
       where m.campaign_id = x.id) p on true;
