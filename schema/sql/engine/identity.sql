-- hogsend engine: what the runtime daemon (`hogsend serve`) calls: anonymous-id
-- resolution, identity merge and contact deletion. Merge and deletion take the schema's pass
-- lock, like `tick` and `apply_keys`: every writer of `transitions` is serialized by it,
-- which is what makes the transition feed gap-free when read by id (see ARCHITECTURE.md,
-- "The transition feed"). Re-applied by every `migrate`.

-- The key events carrying only an anonymous id are stored under: the contact whose key
-- it is, else the contact it was merged into, else a contact holding it as its anonymous id
-- (a live one first), else the anonymous id itself (a new contact).
create or replace function {{ s }}.resolve_anonymous(p_ids text[]) returns table (anonymous_id text, user_key text)
language sql stable as $hs$
  select a.id,
         coalesce(
           (select c.user_key from {{ s }}.contacts c where c.user_key = a.id),
           (select c.user_key from {{ s }}.contact_aliases x
              join {{ s }}.contacts c on c.id = x.contact_id where x.alias = a.id),
           -- [identity invariant: a deleted holder still holds the id (deletion is
           -- sticky); re-creating a contact for it would split the person on revival]
           (select c.user_key from {{ s }}.contacts c
             where c.anonymous_id = a.id
             order by c.deleted_at is not null, c.created_at, c.id limit 1),
           a.id)
    from (select distinct u as id from unnest(p_ids) as u where u is not null) a;
$hs$;

-- Identify / alias: the contact keyed `p_user` and the contact keyed `p_anon` become one
-- contact keyed `p_user`. The survivor row (whose id, creation time and conflicting
-- properties are kept) is the one with an external id, then the oldest. The other key's
-- events, messages (but a campaign's second message) and list choices (the later one per
-- list) are re-keyed; its memberships move to the merged key where that key
-- has none (with their transition history, so dwell clocks carry on), and otherwise end
-- silently with reason `merged` (no `bucket:left` event, no reaction) so no bucket lists the
-- person twice. Its journey runs move too (below). The caller re-evaluates the merged key.
-- Returns the merged key.
--
-- Only a contact whose *key* is `p_anon` is folded: an anonymous id already merged into
-- another user (a shared device) is left alone.
create or replace function {{ s }}.merge_contacts(p_user text, p_anon text)
returns text language plpgsql as $hs$
declare
  u      {{ s }}.contacts;
  a      {{ s }}.contacts;
  keep   {{ s }}.contacts;
  lose   {{ s }}.contacts;
  v_now  timestamptz;
  v_anon text;
begin
  if p_user is null or p_anon is null or p_anon = p_user then
    return p_user;
  end if;
  select * into a from {{ s }}.contacts where user_key = p_anon and deleted_at is null;
  if a.id is null then
    -- Nothing to fold: remember the anonymous id on (or as an alias of) the user — unless a
    -- (deleted) contact is keyed by it: deletion is sticky, and an id must never be both a
    -- contact's key and another contact's absorbed id (the identity invariant).
    -- [identity invariant: begin]
    if exists (select 1 from {{ s }}.contacts where user_key = p_anon) then
      insert into {{ s }}.contacts (external_id) values (p_user)
      on conflict (user_key) do nothing;
      return p_user;
    end if;
    -- [identity invariant: end]
    insert into {{ s }}.contacts as c (external_id, anonymous_id)
    values (p_user, p_anon)
    on conflict (user_key) do update
       set anonymous_id = excluded.anonymous_id
     where c.anonymous_id is null;
    select * into u from {{ s }}.contacts where user_key = p_user;
    if u.anonymous_id is distinct from p_anon then
      insert into {{ s }}.contact_aliases (alias, contact_id) values (p_anon, u.id)
      on conflict (alias) do nothing;
    end if;
    return p_user;
  end if;

  -- A real merge: serialize with ticks and the real-time pass (they read memberships).
  perform pg_advisory_xact_lock({{ lock_key }});
  select greatest(now(), last_tick_at) into v_now from {{ s }}.tick_state;
  select * into a from {{ s }}.contacts where user_key = p_anon and deleted_at is null for update;
  select * into u from {{ s }}.contacts where user_key = p_user for update;
  if a.id is null or u.deleted_at is not null then
    -- Folded meanwhile, or the user was deleted: nothing to merge into.
    return p_user;
  end if;

  if u.id is null then
    -- Only the anonymous contact exists: it takes the user id (its key changes).
    keep := a;
  elsif (u.external_id is not null) <> (a.external_id is not null) then
    if u.external_id is not null then keep := u; lose := a; else keep := a; lose := u; end if;
  elsif (a.created_at, a.id) < (u.created_at, u.id) then
    keep := a; lose := u;
  else
    keep := u; lose := a;
  end if;
  v_anon := coalesce(keep.anonymous_id, lose.anonymous_id, p_anon);

  if lose.id is not null then
    update {{ s }}.contact_aliases set contact_id = keep.id where contact_id = lose.id;
    delete from {{ s }}.contacts where id = lose.id;
  end if;
  update {{ s }}.contacts
     set external_id  = p_user,
         anonymous_id = v_anon,
         email        = coalesce(keep.email, lose.email),
         properties   = coalesce(lose.properties, '{}') || keep.properties,
         updated_at   = v_now
   where id = keep.id;
  insert into {{ s }}.contact_aliases (alias, contact_id)
  select distinct x, keep.id
    from unnest(array[p_anon, keep.anonymous_id, lose.anonymous_id]) as x
   where x is not null and x <> v_anon
  on conflict (alias) do update set contact_id = excluded.contact_id;

  -- The final key is always the user id: everything under the anonymous key moves to it.
  update {{ s }}.events set user_key = p_user where user_key = p_anon;
  -- A campaign reaches a person once (one message per campaign and key): where both keys
  -- already hold a message of the same campaign, the anonymous key's stays where it is, as
  -- history; every other message moves.
  update {{ s }}.messages m set user_key = p_user
   where m.user_key = p_anon
     and (m.campaign_id is null
          or not exists (select 1 from {{ s }}.messages k
                          where k.campaign_id = m.campaign_id and k.user_key = p_user));
  -- List choices follow the person too; where both keys chose for the same list (or for
  -- everything, `*`), the later choice wins.
  insert into {{ s }}.subscriptions as cur (user_key, list_id, status, changed_at, source)
  select p_user, prev.list_id, prev.status, prev.changed_at, prev.source
    from {{ s }}.subscriptions prev
   where prev.user_key = p_anon
  on conflict (user_key, list_id) do update
     set status = excluded.status, changed_at = excluded.changed_at, source = excluded.source
   where cur.changed_at < excluded.changed_at;
  delete from {{ s }}.subscriptions where user_key = p_anon;

  -- Journey runs follow the person (docs/language.md, "Identity merges and runs"): every
  -- run of the anonymous key, its history and its pending trigger events move to the user
  -- key — except that an in-flight run ends `exited` (`merged`) first when the user key
  -- already has one of the same `once`/`once per` journey in flight (the person may run it
  -- once at a time; the user's continues), or when it is an `on enter` reaction run whose
  -- membership ends as merged below (the user's membership of that bucket stands).
  update {{ s }}.runs r
     set status = 'exited', exit_reason = 'merged', ended_at = v_now, wake_at = null,
         updated_at = v_now
   where r.user_key = p_anon and r.status in ('active', 'waiting')
     and ((r.exclusive
           and exists (select 1 from {{ s }}.runs k
                        where k.user_key = p_user and k.journey_id = r.journey_id
                          and k.status in ('active', 'waiting')))
       or (r.trigger_kind = 'enter'
           and exists (select 1 from {{ s }}.journeys j
                         join {{ s }}.memberships k on k.bucket_id = j.bucket_id
                        where j.id = r.journey_id and k.user_key = p_user)));
  update {{ s }}.runs set user_key = p_user where user_key = p_anon;
  update {{ s }}.run_steps set user_key = p_user where user_key = p_anon;
  update {{ s }}.journey_inbox set user_key = p_user where user_key = p_anon;

  -- Memberships of the anonymous key in buckets where the user has none move over, with
  -- their transition history (dwell firings are looked up per key and epoch).
  with moved as (
    update {{ s }}.memberships m set user_key = p_user
     where m.user_key = p_anon
       and not exists (select 1 from {{ s }}.memberships k
                        where k.bucket_id = m.bucket_id and k.user_key = p_user)
    returning m.bucket_id)
  update {{ s }}.transitions t set user_key = p_user
    from moved where t.bucket_id = moved.bucket_id and t.user_key = p_anon;

  -- The rest end silently: the person is already listed under the user id.
  with ended as (
    update {{ s }}.memberships
       set active = false, left_at = v_now, leave_reason = 'merged', next_check_at = null
     where user_key = p_anon and active
    returning bucket_id, user_key, entry_count)
  insert into {{ s }}.transitions (bucket_id, user_key, entry_count, kind, reason, source, occurred_at)
  select bucket_id, user_key, entry_count, 'left', 'merged', 'merge', v_now from ended
  on conflict do nothing;

  insert into {{ s }}.changed_keys (user_key, kind) values (p_user, 'x'), (p_anon, 'x');
  return p_user;
end $hs$;

-- Soft-delete a contact: it leaves every bucket at once, silently (reason `deleted`, no
-- `bucket:left` event, no reaction). Returns false when there is no live contact `p_key`.
create or replace function {{ s }}.delete_contact(p_key text) returns boolean
language plpgsql as $hs$
declare
  v_now timestamptz;
  found_id uuid;
begin
  perform pg_advisory_xact_lock({{ lock_key }});
  select greatest(now(), last_tick_at) into v_now from {{ s }}.tick_state;
  update {{ s }}.contacts set deleted_at = v_now, updated_at = v_now
   where user_key = p_key and deleted_at is null
  returning id into found_id;
  if found_id is null then
    return false;
  end if;
  with ended as (
    update {{ s }}.memberships
       set active = false, left_at = v_now, leave_reason = 'deleted', next_check_at = null
     where user_key = p_key and active
    returning bucket_id, user_key, entry_count)
  insert into {{ s }}.transitions (bucket_id, user_key, entry_count, kind, reason, source, occurred_at)
  select bucket_id, user_key, entry_count, 'left', 'deleted', 'api', v_now from ended
  on conflict do nothing;
  return true;
end $hs$;
