"""A transit from intake to fine: judged and recorded (`intake`), the record (`record`), the
durable log (`log`, `writer`; Redis, else the local `spool`), the follow-up that turns pending
transits into violations (`followup`), and the violations (`violations`)."""
