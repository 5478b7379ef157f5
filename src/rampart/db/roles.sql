-- Roles and schema, run once by an administrator (the RDS master user, or the local superuser) before the
-- migrations. Idempotent. No passwords here: on RDS the application roles log in with IAM tokens (rds_iam);
-- locally the embedded PostgreSQL sets random passwords after this file runs.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rampart_migrator') THEN
    CREATE ROLE rampart_migrator LOGIN NOINHERIT;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rampart_ingest') THEN
    CREATE ROLE rampart_ingest LOGIN NOINHERIT CONNECTION LIMIT 200;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rampart_api') THEN
    CREATE ROLE rampart_api LOGIN NOINHERIT CONNECTION LIMIT 200;
  END IF;
  -- On Amazon RDS, rds_iam makes a role log in with IAM authentication tokens only.
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_iam') THEN
    GRANT rds_iam TO rampart_ingest, rampart_api;
  END IF;
  -- The administrator runs the migrations as rampart_migrator (SET ROLE), so the schema is owned by it.
  EXECUTE format('GRANT rampart_migrator TO %I', current_user);
  EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO rampart_migrator, rampart_ingest, rampart_api',
                 current_database());
END
$$;

REVOKE CREATE ON SCHEMA public FROM PUBLIC;
CREATE SCHEMA IF NOT EXISTS rampart AUTHORIZATION rampart_migrator;
REVOKE ALL ON SCHEMA rampart FROM PUBLIC;
-- Application roles never resolve unqualified names through a schema someone else can write to.
ALTER ROLE rampart_ingest SET search_path = rampart;
ALTER ROLE rampart_api SET search_path = rampart;
-- The API role is read-only at the session level too: defence in depth behind its SELECT-only grants.
ALTER ROLE rampart_api SET default_transaction_read_only = on;
