-- hogsend schema migration 6: publishable API keys. FROZEN once committed.
--
-- A publishable key is an `ingest` key meant to be shipped in a browser or mobile app: it may
-- only send events (docs/api.md, "Publishable keys"), and the daemon rate limits it per
-- source IP as well as per key. Only `ingest` keys can be publishable.
alter table {{ s }}.api_keys
  add column publishable boolean not null default false,
  add constraint api_keys_publishable_ingest check (not publishable or scope = 'ingest');
