"""The doors page's jobs: a lockdown never waits behind door buttons, the queue is bounded,
and a question about a job waits without holding a thread.

The commander here is a stand-in whose door buttons hang until the test lets them go (a
slow device, under control); the jobs, their workers and the audit log are the real ones.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from console.action_jobs import URGENT_WAITING, URGENT_WORKERS, WAITING, WORKERS, Jobs, JobsBusy
from console.actions import Outcome


class SlowDoors:
    """Answers every command; door buttons only once `release` is set."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Semaphore(0)

    def send(
        self,
        devices: Sequence[str],
        name: str,
        args: dict[str, Any],
        issued_by: str,
        on_outcome: Callable[[Outcome], None],
    ) -> list[Outcome]:
        self.started.release()
        if name == "unlock":
            assert self.release.wait(30), "the test never released the door buttons"
        outcomes = [Outcome(device, "accepted") for device in devices]
        for outcome in outcomes:
            on_outcome(outcome)
        return outcomes

    def close(self) -> None:
        self.release.set()


@pytest.fixture
def doors() -> SlowDoors:
    return SlowDoors()


@pytest.fixture
def jobs(tmp_path: Path, doors: SlowDoors) -> Iterator[Jobs]:
    running = Jobs(tmp_path / "log.db", doors)  # type: ignore[arg-type]  # a stand-in
    yield running
    doors.release.set()
    running.close()


def unlock(jobs: Jobs, n: int = 0) -> Any:
    return jobs.start(
        user="guard1", action="door.unlock", target=f"door-{n}", devices=[f"door-{n}"],
        name="unlock", args={"door": f"door-{n}"},
    )  # fmt: skip


def lockdown(jobs: Jobs) -> Any:
    return jobs.start(
        user="boss", action="lockdown", target="lockdown on: site", devices=["gate-1", "gate-2"],
        name="lockdown", args={"on": True},
    )  # fmt: skip


def test_a_lockdown_is_sent_while_every_door_worker_is_busy(jobs: Jobs, doors: SlowDoors) -> None:
    for n in range(WORKERS + 2):  # every worker hangs on a slow device, two more wait
        unlock(jobs, n)
    for _ in range(WORKERS):
        assert doors.started.acquire(timeout=10)
    view = lockdown(jobs).wait(1, 10)
    assert view.done, view
    assert [o.result for _, o in view.rows if o] == ["accepted", "accepted"]
    assert not doors.release.is_set()  # the door buttons were still hanging


def test_one_action_too_many_is_refused_as_busy_and_nothing_is_sent(
    jobs: Jobs, doors: SlowDoors
) -> None:
    started = [unlock(jobs, n) for n in range(WORKERS + WAITING)]
    with pytest.raises(JobsBusy, match=r"busy.*nothing was sent, try again"):
        unlock(jobs, 99)
    assert all(not job.view().done for job in started)
    assert lockdown(jobs).wait(1, 10).done  # a lockdown still goes
    doors.release.set()
    for job in started:
        assert job.wait(1, 10).done
    assert unlock(jobs, 100).wait(1, 10).done  # room again once they are done


def test_lockdowns_are_bounded_too(jobs: Jobs, doors: SlowDoors) -> None:
    hang = threading.Event()
    real = doors.send

    def slow(*args: Any, **kwargs: Any) -> list[Outcome]:
        assert hang.wait(30)
        return real(*args, **kwargs)

    doors.send = slow  # type: ignore[method-assign]
    queued = [lockdown(jobs) for _ in range(URGENT_WORKERS + URGENT_WAITING)]
    with pytest.raises(JobsBusy):
        lockdown(jobs)
    hang.set()
    assert all(job.wait(1, 10).done for job in queued)


def test_a_question_waits_on_the_event_loop_not_a_thread(jobs: Jobs, doors: SlowDoors) -> None:
    job = unlock(jobs)

    async def ask_many() -> list[bool]:
        questions = [job.next_view(0, 0.3) for _ in range(200)]
        return [view.done for view in await asyncio.gather(*questions)]

    before = threading.active_count()
    assert asyncio.run(ask_many()) == [False] * 200  # each timed out: the device still hangs
    assert threading.active_count() <= before + 1  # no thread per question
    doors.release.set()
    assert asyncio.run(job.next_view(0, 10)).done
