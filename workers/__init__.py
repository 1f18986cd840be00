"""Process entry points: the `make run` supervisor (dev.py), the RQ worker class (worker.py) and the
`rq cron` configuration (cron.py). No business logic lives here."""
