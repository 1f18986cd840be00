"""The RQ worker class: builds the Flask app once, before work horses fork from it.

    rq worker mail sla default --with-scheduler -w workers.worker.HelpdeskWorker --url "$REDIS_URL"

Without it every job would import and build the app in its fresh work horse (about a second).
"""
from rq import Worker

from helpdesk import jobs


class HelpdeskWorker(Worker):
    """rq's forking Worker with the app preloaded in the parent process."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        jobs.worker_app()

    def main_work_horse(self, job, queue):
        jobs.after_fork()
        return super().main_work_horse(job, queue)
