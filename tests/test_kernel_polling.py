"""Waiting for kernel messages in short polls: a long wait is cut into polls of one second."""

import asyncio
from queue import Empty

import pytest

from cnn_course.tools import kernel_polling
from cnn_course.tools.kernel_polling import in_short_polls, install_short_polls


class Channel:
    """A channel whose message arrives after ``polls`` polls, recording each poll's timeout."""

    def __init__(self, polls):
        self.polls, self.timeouts = polls, []

    async def get_msg(self, timeout=None):
        self.timeouts.append(timeout)
        if len(self.timeouts) > self.polls:
            return {"msg_type": "execute_reply"}
        await asyncio.sleep(timeout)  # a poll that finds nothing lasts its timeout
        raise Empty


def test_a_long_wait_is_cut_into_short_polls(monkeypatch):
    monkeypatch.setattr(kernel_polling, "POLL_SECONDS", 0.001)
    channel = Channel(polls=3)
    get_msg = in_short_polls(Channel.get_msg)
    assert asyncio.run(get_msg(channel, timeout=600)) == {"msg_type": "execute_reply"}
    assert len(channel.timeouts) == 4 and max(channel.timeouts) <= 0.001


def test_the_callers_timeout_still_ends_the_wait(monkeypatch):
    monkeypatch.setattr(kernel_polling, "POLL_SECONDS", 0.01)
    channel = Channel(polls=10**9)
    with pytest.raises(Empty):
        asyncio.run(in_short_polls(Channel.get_msg)(channel, timeout=0.05))
    assert 2 <= len(channel.timeouts) < 50


def test_installing_twice_wraps_once():
    from jupyter_client.channels import AsyncZMQSocketChannel

    install_short_polls()
    wrapped = AsyncZMQSocketChannel.get_msg
    install_short_polls()
    assert AsyncZMQSocketChannel.get_msg is wrapped and wrapped.polls_briefly
