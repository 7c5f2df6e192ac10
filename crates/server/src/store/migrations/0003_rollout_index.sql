-- Everything a rollout step reads of an invocation, in position order,
-- without touching the row itself: a finished invocation's row carries its
-- outputs (kilobytes), and a step reads every invocation of its command.
CREATE INDEX invocations_rollout ON invocations
    (command_id, position, node_id, status_details, dispatched, ended_at);

-- Whether a command still has dispatched invocations awaiting their
-- acknowledgement: asked at every report (the ramp's next wave waits for
-- the last one).
CREATE INDEX invocations_awaiting_ack ON invocations (command_id)
    WHERE dispatched = 1 AND status_details = 'Pending';
