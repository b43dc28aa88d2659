"""What happens to a transit after its verdict: the record, the durable log (Redis, else the
local spool), the follow-up that turns pending transits into violations, and the violations."""
