-- Run Command: a command (one SendCommand) and one invocation per target
-- node, with SSM's statuses. The rollout's decisions are `core`'s
-- (command::rollout); these tables hold only what they are made from.

CREATE TABLE commands (
    command_id TEXT PRIMARY KEY,
    document_name TEXT NOT NULL,
    -- core::command::PatchDocument, validated.
    document TEXT NOT NULL,
    -- The targets as sent ([{Key, Values}]), InstanceIds included.
    targets TEXT NOT NULL,
    comment TEXT NOT NULL,
    timeout_seconds BIGINT NOT NULL,
    max_concurrency TEXT NOT NULL,
    max_errors TEXT NOT NULL,
    output_bucket TEXT NOT NULL,
    output_prefix TEXT NOT NULL,
    -- InstallOverrideList resolved at send ([{id, title}]), or NULL.
    install_override TEXT,
    -- BaselineOverride resolved at send (the baselines, one per OS), or NULL.
    baseline_override TEXT,
    requested_by TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    delivery_deadline BIGINT NOT NULL,
    expires_after BIGINT NOT NULL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    status_details TEXT NOT NULL,
    target_count BIGINT NOT NULL,
    completed_count BIGINT NOT NULL DEFAULT 0,
    error_count BIGINT NOT NULL DEFAULT 0,
    delivery_timed_out_count BIGINT NOT NULL DEFAULT 0,
    -- Set when an invocation changed since the rollout last looked.
    dirty INTEGER NOT NULL DEFAULT 1,
    -- When the rollout must look again though nothing changed (a deadline).
    wake_at BIGINT NOT NULL,
    -- When it reached a terminal status (NULL: still running).
    finished_at BIGINT
);
CREATE INDEX commands_active ON commands (wake_at) WHERE finished_at IS NULL;
CREATE INDEX commands_dirty ON commands (command_id) WHERE dirty = 1;
CREATE INDEX commands_requested ON commands (requested_at, command_id);

CREATE TABLE invocations (
    command_id TEXT NOT NULL,
    node_id TEXT NOT NULL,
    -- "<command id>.<node id>": the agent's de-duplication key.
    invocation_id TEXT NOT NULL UNIQUE,
    -- Dispatch order (the node ids sorted).
    position BIGINT NOT NULL,
    computer_name TEXT NOT NULL,
    status TEXT NOT NULL,
    status_details TEXT NOT NULL,
    -- Handed to the node's work queue by the rollout.
    dispatched INTEGER NOT NULL DEFAULT 0,
    dispatched_at BIGINT,
    -- Last time a poll delivered it, and how often (at least once: re-sent
    -- until the agent acknowledges).
    delivered_at BIGINT,
    deliveries BIGINT NOT NULL DEFAULT 0,
    -- The baseline the node was judged by at first delivery (redeliveries
    -- send the same version).
    baseline_id TEXT,
    baseline_version BIGINT,
    acknowledged_at BIGINT,
    started_at BIGINT,
    ended_at BIGINT,
    response_code BIGINT NOT NULL DEFAULT -1,
    -- SSM's truncations (24,000 / 8,000 / 2,500 characters); the full
    -- streams are in the object store under output_key.
    stdout TEXT NOT NULL DEFAULT '',
    stderr TEXT NOT NULL DEFAULT '',
    output TEXT NOT NULL DEFAULT '',
    output_key TEXT,
    reboots BIGINT NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (command_id, node_id)
);
CREATE UNIQUE INDEX invocations_position ON invocations (command_id, position);
-- What a node's poll delivers: dispatched, not acknowledged.
CREATE INDEX invocations_undelivered ON invocations (node_id)
    WHERE dispatched = 1 AND status_details = 'Pending';
CREATE INDEX invocations_node ON invocations (node_id, command_id);
