"""Run a notebook in a fresh kernel and read what each cell printed (without saving it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from queue import Empty
from time import monotonic

import nbformat

from cnn_course.authoring import CHECK_TAG
from cnn_course.checks.core import FAIL_MARK, PASS_MARK


@dataclass(frozen=True)
class CellRun:
    index: int
    tags: tuple[str, ...]
    source: str
    text: str            # everything the cell printed or displayed as text
    error: str | None    # "ExceptionName: message" if the cell raised

    @property
    def is_check(self) -> bool:
        return CHECK_TAG in self.tags

    @property
    def verdicts(self) -> list[str]:
        return [line for line in self.text.splitlines()
                if line.startswith((PASS_MARK, FAIL_MARK))]


def _cell_text(cell: nbformat.NotebookNode) -> tuple[str, str | None]:
    texts, error = [], None
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            texts.append(output.text)
        elif output.output_type in ("execute_result", "display_data"):
            texts.append(output.get("data", {}).get("text/plain", ""))
        elif output.output_type == "error":
            error = f"{output.ename}: {output.evalue}"
    return "".join(texts), error


def read_cells(notebook: nbformat.NotebookNode) -> list[CellRun]:
    runs = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        text, error = _cell_text(cell)
        runs.append(CellRun(index, tuple(cell.metadata.get("tags", [])), cell.source, text,
                            error))
    return runs


def run_notebook(path: Path, timeout: int = 600, kernel_name: str = "python3"
                 ) -> list[CellRun]:
    """Execute a copy of the notebook at ``path`` (the file is not changed); report each cell.

    Every cell runs even if an earlier one raised, so all problems show at once.
    """
    notebook = nbformat.read(path, as_version=4)
    client = _client_class()(notebook, timeout=timeout, kernel_name=kernel_name,
                             allow_errors=True,
                             resources={"metadata": {"path": str(Path(path).parent)}})
    client.execute()
    return read_cells(notebook)


POLL_SECONDS = 1.0


def _client_class():
    """nbclient's NotebookClient, waiting for kernel messages in short polls.

    nbclient waits for a cell's reply with one poll of the zmq socket for the whole cell
    timeout. Now and then (about one run in 25 of a notebook with widgets, on a busy machine)
    that poll never wakes although the reply has arrived: the kernel sits idle and the run hangs
    until the timeout. Every new poll looks at the socket first, so polling again each second
    picks the message up.
    """
    from nbclient import NotebookClient

    class PatientNotebookClient(NotebookClient):
        async def async_start_new_kernel_client(self, **kwargs):
            started = await super().async_start_new_kernel_client(**kwargs)
            for channel in (self.kc.shell_channel, self.kc.iopub_channel):
                channel.get_msg = _in_short_polls(channel.get_msg)
            return started

    return PatientNotebookClient


def _in_short_polls(get_msg):
    async def get_msg_in_short_polls(timeout: float | None = None):
        deadline = None if timeout is None else monotonic() + timeout
        while True:
            step = POLL_SECONDS if deadline is None else min(POLL_SECONDS,
                                                               max(0.0, deadline - monotonic()))
            try:
                return await get_msg(timeout=step)
            except Empty:
                if deadline is not None and monotonic() >= deadline:
                    raise
    return get_msg_in_short_polls
