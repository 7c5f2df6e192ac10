-- Everything a rollout step reads of an invocation, in position order,
-- without touching the row itself: a finished invocation's row carries its
-- outputs (kilobytes), and a step reads every invocation of its command.
CREATE INDEX invocations_rollout ON invocations
    (command_id, position, node_id, status_details, dispatched, ended_at);
