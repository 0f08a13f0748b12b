-- Poison runs. `claims` counts how often a queued run was claimed since a
-- step of it last committed a queue move: a step that crashes the process
-- (or loses its lease) every time is claimed again and again without one,
-- and is quarantined past a limit. Releasing leases at start keeps it.
ALTER TABLE run_queue ADD COLUMN claims INTEGER NOT NULL DEFAULT 0;

-- A run failed by quarantine (1), until a redrive.
ALTER TABLE runs ADD COLUMN quarantined INTEGER NOT NULL DEFAULT 0;
