"""The farm at a glance: agents, task queues, recent tasks, breakers, dead letters, sessions.

`snapshot.py` reads it all (`FleetReader`); `report.py` turns a snapshot into the
FleetStatus that AdminService.GetFleetStatus returns; `gauges.py` shows the latest
snapshot as Prometheus gauges, refreshed by a loop. The readers of each source are
`queues.py` (JetStream), `breakers.py` (the `farm_breakers` bucket) and
`task_counts.py` (SQL).
"""
