"""Logs, metrics, traces and error reports (docs/operations.md).

`process.setup_process(settings)` configures a process once: the web app (`main.create_app`) and
the task workers (`worker.py`) call it. Requests get their ID and their HTTP metrics from
`middleware.RequestMiddleware`; jobs get theirs from `jobs.observe_job`, around each attempt.
"""
