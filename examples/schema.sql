-- The Codebook AI backend tables that codebook-monitor's probes read (PostgreSQL 12+).
--
-- Idempotent: every statement is IF NOT EXISTS. Unqualified, so it lands in the first schema of
-- the session's search_path (`python -m examples.seed --schema NAME` sets it).
--
-- Read by:  database probe  -> jobs (queue depth, age of the oldest pending job)
--           quota probe     -> clients.monthly_token_quota, llm_usage (tokens this calendar month, UTC)
--           cost probe      -> llm_usage (input_tokens, output_tokens by client_id, model, operation)
--           sql probe       -> codebooks, codebook_items, refactor_operations, recommendations,
--                              llm_usage (examples/business_queries.yaml)

CREATE TABLE IF NOT EXISTS clients (
    id                   text PRIMARY KEY,
    name                 text NOT NULL,
    monthly_token_quota  bigint NOT NULL CHECK (monthly_token_quota > 0)
);

CREATE TABLE IF NOT EXISTS jobs (
    id           bigserial PRIMARY KEY,
    kind         text NOT NULL,
    status       text NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'running', 'done', 'failed')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    finished_at  timestamptz
);
CREATE INDEX IF NOT EXISTS jobs_status_created_at_idx ON jobs (status, created_at);

CREATE TABLE IF NOT EXISTS llm_usage (
    id          bigserial PRIMARY KEY,
    client_id   text NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    tokens      bigint NOT NULL CHECK (tokens >= 0),          -- input_tokens + output_tokens
    model       text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
-- The cost probe prices input and output tokens apart, per model, and ranks operations:
-- added with ALTER so that a database created by an older schema.sql gains them too.
ALTER TABLE llm_usage ADD COLUMN IF NOT EXISTS input_tokens bigint NOT NULL DEFAULT 0 CHECK (input_tokens >= 0);
ALTER TABLE llm_usage ADD COLUMN IF NOT EXISTS output_tokens bigint NOT NULL DEFAULT 0 CHECK (output_tokens >= 0);
ALTER TABLE llm_usage ADD COLUMN IF NOT EXISTS operation text NOT NULL DEFAULT 'unknown';
CREATE INDEX IF NOT EXISTS llm_usage_created_at_idx ON llm_usage (created_at);
CREATE INDEX IF NOT EXISTS llm_usage_client_created_at_idx ON llm_usage (client_id, created_at);

CREATE TABLE IF NOT EXISTS codebooks (
    id          bigserial PRIMARY KEY,
    client_id   text NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS codebooks_created_at_idx ON codebooks (created_at);

CREATE TABLE IF NOT EXISTS codebook_items (
    id           bigserial PRIMARY KEY,
    codebook_id  bigint NOT NULL REFERENCES codebooks (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS codebook_items_created_at_idx ON codebook_items (created_at);

CREATE TABLE IF NOT EXISTS refactor_operations (
    id            bigserial PRIMARY KEY,
    codebook_id   bigint NOT NULL REFERENCES codebooks (id) ON DELETE CASCADE,
    status        text NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'running', 'completed', 'failed')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    completed_at  timestamptz
);
CREATE INDEX IF NOT EXISTS refactor_operations_status_idx ON refactor_operations (status);
CREATE INDEX IF NOT EXISTS refactor_operations_completed_at_idx ON refactor_operations (completed_at);

CREATE TABLE IF NOT EXISTS recommendations (
    id          bigserial PRIMARY KEY,
    client_id   text NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    accepted    boolean,            -- NULL: not yet decided by the user
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS recommendations_created_at_idx ON recommendations (created_at);
