"""Group commit: a request is acknowledged only once what it wrote is durable, and concurrent
requests share one commit.

An audited read writes one row to ``audit_log`` and must not answer before that row is committed
(a read that goes unaudited is a leak no one can trace). One transaction per read costs a commit
— on a durable database an fsync — per request. Instead every request hands its entry to the
worker's :class:`GroupCommitter` and waits. A single committer thread takes everything that is
waiting, writes it in one transaction, commits, and only then releases each waiting request —
whether it waits in a thread (:meth:`GroupCommitter.write`) or on the event loop
(:meth:`GroupCommitter.write_async`). A lone request waits for one commit, as before.

On SQLite (one writer at a time, an fsync per commit) writes such as creating a passport go the
same way (:meth:`GroupCommitter.run`, or :meth:`GroupCommitter.run_async` from the event loop):
each runs in a savepoint of the shared transaction, so a refused one is rolled back alone and
changes nothing, and the others commit together; the audit rows of the writes are inserted with
the batch's other audit rows in one statement (:func:`defer_audit`).

When the commit fails, every request of the batch gets the error (503 for audit entries), none is
acknowledged, and nothing of the batch was written. Nothing is buffered across a crash: what a
request was answered for is in the database; a batch that was not committed belongs to requests
that got no answer.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import threading
from collections import deque
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from critflow.server.models import AuditEntry
from critflow.server.problems import RegistryError

MAX_BATCH = 500
"""Most requests one transaction serves (a larger backlog is written in several)."""

_INSERT_AUDIT = insert(AuditEntry.__table__)

DEFERRED_AUDIT = "critflow_deferred_audit"
"""Key of ``Session.info`` under which a group-committed transaction collects the audit rows of
its writes; they are inserted together with the batch's other audit rows, in the same
transaction, before the commit."""


def defer_audit(session: Session, row: dict[str, Any]) -> bool:
    """Queue an allowed write's audit ``row`` for the group commit running ``session`` (True),
    or return False when ``session`` is not one (the caller inserts the row itself). Either way
    the row commits, or rolls back, with the write."""
    rows = session.info.get(DEFERRED_AUDIT)
    if rows is None:
        return False
    rows.append(row)
    return True


class _Ticket:
    """One waiting request: its audit rows or its write, and how to wake it."""

    __slots__ = (
        "context",
        "done",
        "entries",
        "error",
        "future",
        "loop",
        "orm",
        "result",
        "work",
    )

    def __init__(
        self,
        entries: list[dict[str, Any]],
        work: Callable[[Session], Any] | None = None,
        orm: bool = True,
    ) -> None:
        self.entries = entries
        self.work = work
        self.orm = orm
        self.context = contextvars.copy_context() if work is not None else None
        self.result: Any = None
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.future: asyncio.Future | None = None

    def release(self, error: BaseException | None) -> None:
        self.error = error
        self.done.set()
        if self.future is not None and self.loop is not None:
            self.loop.call_soon_threadsafe(_settle, self.future, error)


def _settle(future: asyncio.Future, error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


def unwritten() -> RegistryError:
    """The answer to a request whose audit entry could not be committed (nothing was served)."""
    return RegistryError(
        503,
        "Audit log unavailable",
        "The access could not be recorded in the audit log, so nothing is served; retry shortly.",
        headers={"Retry-After": "1"},
    )


class _WorkError(Exception):
    """A write of the batch that was refused (its savepoint was rolled back)."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class WorkRefusedError(Exception):
    """A write of :meth:`GroupCommitter.run_async` that raised ``error``: it was rolled back
    alone, nothing of it was written."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class GroupCommitter:
    """Commits the audit entries and writes of concurrent requests in shared transactions.

    ``begin()`` gives a session for one write transaction (rolled back unless committed).
    ``write_rows(rows)``, when given, writes a batch made only of audit rows (no writes) in one
    transaction and commits it — or returns False, and a session of ``begin`` writes them; the
    registry's goes to the driver without a session (:meth:`Registry.write_audit`).
    ``batches`` counts the committed transactions and ``largest`` the most requests one served
    (diagnostics and tests)."""

    def __init__(
        self,
        begin: Callable[[], AbstractContextManager[Session]],
        write_rows: Callable[[list[dict[str, Any]]], bool] | None = None,
    ) -> None:
        self._begin = begin
        self.write_rows = write_rows
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._pending: deque[_Ticket] = deque()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self.batches = 0
        self.largest = 0

    # --- submitting --------------------------------------------------------------------------
    def _submit(self, ticket: _Ticket) -> None:
        with self._lock:
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._serve, name="critflow-group-commit", daemon=True
                )
                self._thread.start()
            self._pending.append(ticket)
            self._wake.notify()

    def write(self, *entries: dict[str, Any]) -> None:
        """Return once the audit rows ``entries`` are committed; RegistryError 503 when they
        could not be."""
        ticket = _Ticket(list(entries))
        self._submit(ticket)
        ticket.done.wait()
        if ticket.error is not None:
            raise unwritten() from ticket.error

    async def write_async(self, *entries: dict[str, Any]) -> None:
        """:meth:`write` for a request served on the event loop (it does not block the loop)."""
        ticket = _Ticket(list(entries))
        ticket.loop = asyncio.get_running_loop()
        ticket.future = ticket.loop.create_future()
        self._submit(ticket)
        try:
            await ticket.future
        except Exception as exc:
            raise unwritten() from exc

    def run(self, work: Callable[[Session], Any], orm: bool = True) -> Any:
        """Run ``work(session)`` in a savepoint of the next shared transaction and return its
        result once that transaction is committed. What ``work`` raises is raised here (its
        savepoint rolled back, the rest of the batch unaffected); when the commit fails, its
        error is raised. ``work`` runs in the committer thread with this request's context
        variables (the client's address).

        ``orm=False`` for a ``work`` that adds, changes and deletes no ORM objects (it writes
        with SQL statements; it may read): its savepoint is the connection's, without the
        session's books on the objects a savepoint changed (about a quarter of the committer's
        CPU per create in a profile)."""
        ticket = _Ticket([], work, orm)
        self._submit(ticket)
        ticket.done.wait()
        if isinstance(ticket.error, _WorkError):
            raise ticket.error.error
        if ticket.error is not None:
            raise ticket.error
        return ticket.result

    async def run_async(self, work: Callable[[Session], Any], orm: bool = True) -> Any:
        """:meth:`run` for a request served on the event loop (it does not block the loop).
        What ``work`` raises is raised here as :class:`WorkRefusedError` (its savepoint rolled back,
        nothing of it written); a failed commit raises its error."""
        ticket = _Ticket([], work, orm)
        ticket.loop = asyncio.get_running_loop()
        ticket.future = ticket.loop.create_future()
        self._submit(ticket)
        try:
            await ticket.future
        except _WorkError as exc:
            raise WorkRefusedError(exc.error) from exc.error
        return ticket.result

    # --- the committer thread ----------------------------------------------------------------
    def _take(self) -> list[_Ticket]:
        with self._lock:
            while not self._pending:
                self._wake.wait()
            taken = []
            while self._pending and len(taken) < MAX_BATCH:
                taken.append(self._pending.popleft())
            return taken

    def _commit(self, tickets: list[_Ticket]) -> None:
        alone = self.write_rows is not None and all(ticket.work is None for ticket in tickets)
        if alone and self.write_rows([entry for ticket in tickets for entry in ticket.entries]):
            return
        with self._begin() as session:
            # audit rows of the writes (see :func:`defer_audit`) and of the reads: one INSERT
            rows: list[dict[str, Any]] = []
            session.info[DEFERRED_AUDIT] = rows
            for ticket in tickets:
                if ticket.work is None:
                    continue
                mark = len(rows)
                try:
                    if ticket.orm:
                        with session.begin_nested():
                            ticket.result = ticket.context.run(ticket.work, session)
                        session.expire_all()  # the next write reads rows afresh
                    else:  # SQL statements only: the connection's savepoint is enough
                        with session.connection().begin_nested():
                            ticket.result = ticket.context.run(ticket.work, session)
                except Exception as exc:  # this write alone is rolled back, its audit rows too
                    del rows[mark:]
                    ticket.error = _WorkError(exc)
            rows.extend(entry for ticket in tickets for entry in ticket.entries)
            if rows:
                session.connection().execute(_INSERT_AUDIT, rows)
            session.commit()

    def _serve(self) -> None:
        while True:
            tickets = self._take()
            try:
                self._commit(tickets)
            except BaseException as exc:  # nothing of the batch was written: everyone learns it
                for ticket in tickets:
                    ticket.release(exc)
                continue
            self.batches += 1
            self.largest = max(self.largest, len(tickets))
            for ticket in tickets:
                ticket.release(ticket.error)
