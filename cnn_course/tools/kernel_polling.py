"""Wait for Jupyter kernel messages in short polls, so that a missed wake-up cannot hang a run.

nbclient (used to execute notebooks by the authoring tools, the self-check, the tests and the
book build) waits for each kernel message with one poll of a zmq socket that lasts the whole
cell timeout. Now and then (about one run in 25 of a notebook with widgets, on a busy machine)
that poll never wakes although the message has arrived: the kernel sits idle and the run hangs
until the timeout. Each new poll looks at the socket first, so polling again every second picks
the message up. The cause looks like a lost edge-triggered wake-up in ``zmq.asyncio``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from queue import Empty
from time import monotonic

POLL_SECONDS = 1.0

GetMsg = Callable[..., Awaitable[dict]]


def in_short_polls(get_msg: GetMsg) -> GetMsg:
    """Wrap a channel class's async ``get_msg(self, timeout=None)`` so that it polls at most
    one second at a time, however long the caller is willing to wait."""
    async def get_msg_in_short_polls(channel, timeout: float | None = None) -> dict:
        deadline = None if timeout is None else monotonic() + timeout
        while True:
            step = POLL_SECONDS if deadline is None else min(POLL_SECONDS,
                                                               max(0.0, deadline - monotonic()))
            try:
                return await get_msg(channel, timeout=step)
            except Empty:
                if deadline is not None and monotonic() >= deadline:
                    raise
    get_msg_in_short_polls.polls_briefly = True
    return get_msg_in_short_polls


def install_short_polls() -> None:
    """Make every asynchronous kernel client of this process poll in short steps (idempotent)."""
    from jupyter_client.channels import AsyncZMQSocketChannel

    if not getattr(AsyncZMQSocketChannel.get_msg, "polls_briefly", False):
        AsyncZMQSocketChannel.get_msg = in_short_polls(AsyncZMQSocketChannel.get_msg)
