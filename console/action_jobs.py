"""Door actions started from the web page, each device's answer shown as it comes.

A button starts a job (console.actions.perform on a worker thread) and the browser is sent
to the doors page of that job (a redirect: reloading the page never sends the command
again); the page asks for the job's outcomes, and each question waits (without holding a
thread) until another device has answered or the job is done. A job is seen only by the
user who started it; the newest `KEPT` jobs are kept in memory.

A lockdown or a fire reset has workers of its own, so it never waits behind door buttons;
the jobs waiting for a worker are bounded, and one more is refused as busy (JobsBusy).
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from console.actions import ActionError, Commander, Outcome, Site, perform
from console.log import open_log

KEPT: Final = 200
WORKERS: Final = 4  # door actions running at once; each sends to all its devices in parallel
WAITING: Final = 16  # door actions waiting for a worker; one more is refused as busy
URGENT: Final = frozenset({"lockdown", "door.fire_reset"})  # never behind a door button
URGENT_WORKERS: Final = 2
URGENT_WAITING: Final = 8
POLL_S: Final = 0.1  # how often a waiting question looks at its job again


class JobsBusy(ActionError):
    """Too many actions wait for a worker: nothing was sent; try again shortly."""


@dataclass(frozen=True)
class JobView:
    """A job as the page shows it: every device, with its outcome once it has one."""

    id: str
    action: str
    target: str
    rows: tuple[tuple[str, Outcome | None], ...]
    done: bool
    error: str | None
    unreached: str = ""  # the devices it could not be sent to, and why

    @property
    def seen(self) -> int:
        """Return how many devices have answered (or timed out) so far."""
        return sum(1 for _, outcome in self.rows if outcome is not None)


class Job:
    """One action on its way to its devices."""

    def __init__(
        self, user: str, action: str, target: str, devices: Sequence[str], unreached: str = ""
    ) -> None:
        self.id = secrets.token_urlsafe(16)
        self.user, self.action, self.target = user, action, target
        self.devices = tuple(devices)
        self.unreached = unreached
        self._outcomes: dict[str, Outcome] = {}
        self._done = False
        self._error: str | None = None
        self._cond = threading.Condition()

    def __repr__(self) -> str:
        return f"<Job {self.action} {self.target} by {self.user} done={self._done}>"

    def add(self, outcome: Outcome) -> None:
        """Keep one device's outcome and wake whoever waits."""
        with self._cond:
            self._outcomes[outcome.device] = outcome
            self._cond.notify_all()

    def finish(self, error: str | None = None) -> None:
        """Mark the job done (with the reason it could not be sent, if so)."""
        with self._cond:
            self._done, self._error = True, error
            self._cond.notify_all()

    def wait(self, seen: int, timeout_s: float) -> JobView:
        """Wait until more than `seen` devices have answered or the job is done; return it."""
        with self._cond:
            self._cond.wait_for(lambda: self._done or len(self._outcomes) > seen, timeout_s)
            return self.view()

    async def next_view(self, seen: int, timeout_s: float) -> JobView:
        """Like wait(), on the event loop: a waiting question holds no thread."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            view = self.view()
            if view.done or view.seen > seen or asyncio.get_running_loop().time() >= deadline:
                return view
            await asyncio.sleep(POLL_S)

    def view(self) -> JobView:
        """Return the job as it stands."""
        with self._cond:
            rows = tuple((d, self._outcomes.get(d)) for d in self.devices)
            return JobView(
                self.id, self.action, self.target, rows, self._done, self._error, self.unreached
            )


class Jobs:
    """Runs door actions for the web page and keeps the newest of them."""

    def __init__(self, log_path: Path | str, commander: Commander) -> None:
        self.log = open_log(log_path)  # its own connections, on its own worker threads
        self.commander = commander
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="door-action")
        self._urgent = ThreadPoolExecutor(URGENT_WORKERS, thread_name_prefix="door-urgent")
        self._pending = {False: 0, True: 0}  # jobs not finished, by urgency

    def __repr__(self) -> str:
        return f"<Jobs {len(self._jobs)} kept {self.commander!r}>"

    def start(
        self,
        *,
        user: str,
        action: str,
        target: str,
        devices: Sequence[str],
        name: str,
        args: dict[str, Any],
        unreached: str = "",
    ) -> Job:
        """Start sending `name` to `devices` as `user`; return the job at once.

        `unreached` names the devices it cannot go to (their configuration is unusable).
        """
        urgent = action in URGENT
        limit = URGENT_WORKERS + URGENT_WAITING if urgent else WORKERS + WAITING
        with self._lock:
            if self._pending[urgent] >= limit:
                raise JobsBusy(
                    f"the console is busy: {self._pending[urgent]} door actions are on their "
                    "way; nothing was sent, try again in a few seconds"
                )
            self._pending[urgent] += 1
        job = Job(user, action, target, devices, unreached)
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > KEPT:
                self._jobs.popitem(last=False)

        def run() -> None:
            error = None
            try:
                perform(
                    self.log,
                    self.commander,
                    user=user,
                    action=action,
                    target=target,
                    devices=devices,
                    name=name,
                    args=args,
                    on_outcome=job.add,
                )
            except ActionError as exc:
                error = str(exc)
            except Exception as exc:  # the page must hear that it failed, never wait forever
                error = f"{type(exc).__name__}: the console could not send it"
                raise
            finally:
                job.finish(error)
                with self._lock:
                    self._pending[urgent] -= 1

        (self._urgent if urgent else self._pool).submit(run)
        return job

    def find(self, job_id: str, user: str) -> Job | None:
        """Return the job `user` started with this id, or None."""
        with self._lock:
            job = self._jobs.get(job_id)
        return job if job is not None and job.user == user else None

    def close(self) -> None:
        """Wait for the running actions, then disconnect; idempotent."""
        self._urgent.shutdown(wait=True)
        self._pool.shutdown(wait=True)
        self.commander.close()
        self.log.close()


@dataclass(frozen=True)
class DoorDesk:
    """What the doors page acts with: the site's doors, and its jobs (None: it only watches)."""

    site: Site
    jobs: Jobs | None

    def close(self) -> None:
        """Finish the running actions and disconnect, if the page acts; idempotent."""
        if self.jobs is not None:
            self.jobs.close()
