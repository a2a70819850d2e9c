"""Accounting pieces read as columns in a child Python process, on the other core, while this one counts and
stores the chunks already read.

Public API:
    ReaderProcess()                                  -- a child process reading pieces; started at once, ready later
        .ready() -> bool                             -- it has started and is not busy with another reader
        .close()                                     -- stops it (its own pid; also when this process goes away)
    ColumnarReaderInProcess(process, *, chunk_bytes, resume, lines_read)
        -- a `ColumnarAccountingReader` whose pieces the child reads while it is ready (the same chunks, problems,
           resume points and line numbers), and this process reads otherwise: while the child is still starting
           (half a second of imports), after it failed, or when another reader holds it.

Reading a large file, counting and storing take about as long as each other, and both hold the GIL most of the
time: on two cores a thread does not make them overlap, a process does. The child gets the bytes of a piece from
its resume point and answers with the chunks, pickled (a chunk keeps only the rows the aggregator may ask for whole).
Only worth it for tens of megabytes: `ReaderProcess` is started by the callers that have that much to read.

Run as `python -m campaign_gateway.adapters.accounting_reader_process`, it is the child: frames on stdin and stdout,
until its stdin ends (the parent closed it, or died).
"""

from __future__ import annotations

import logging
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import IO, Any

from campaign_gateway.adapters.accounting_columns import AccountingChunk, ColumnarAccountingReader
from campaign_gateway.adapters.accounting_csv import ResumePoint

log = logging.getLogger(__name__)

_LENGTH = struct.Struct("!Q")
_READY = "ready"


class ReaderProcessFailed(Exception):
    """The child died or answered something else than a frame of the protocol."""


def _send(stream: IO[bytes], message: object) -> None:
    frame = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LENGTH.pack(len(frame)))
    stream.write(frame)
    stream.flush()


def _receive(stream: IO[bytes]) -> Any:
    """The next message, or None at the end of the stream."""
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return None
    (size,) = _LENGTH.unpack(head)
    frame = stream.read(size)
    if len(frame) < size:
        return None
    return pickle.loads(frame)  # frames from our own child, over its private pipe


class ReaderProcess:
    """One child process; one reader uses it at a time."""

    def __init__(self) -> None:
        environment = dict(os.environ)
        # The parent's import roots (the service folders, the generated stubs), whatever put them on its path.
        environment["PYTHONPATH"] = os.pathsep.join(path for path in sys.path if path)
        self._child = subprocess.Popen(  # this interpreter, a module of ours
            [sys.executable, "-m", __name__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=environment,
            start_new_session=True,  # Ctrl-C on `make run` is this process's to handle; the child ends with its stdin
        )
        self._started = False
        self._failed = False
        self._lock = threading.Lock()

    def ready(self) -> bool:
        """Started (its first frame has come; not waited for) and not failed."""
        if self._failed or self._lock.locked():
            return False
        if not self._started:
            stdout = self._child.stdout
            assert stdout is not None
            readable, _, _ = select.select([stdout], [], [], 0)
            if not readable:
                return False
            if _receive(stdout) != _READY:
                self._fail("the accounting reader process did not start")
                return False
            self._started = True
        return True

    def read_piece(
        self, data: bytes, *, resume: ResumePoint, lines_read: int, final: bool, chunk_bytes: int
    ) -> Iterator[tuple[AccountingChunk, ResumePoint, int, dict[str, int]]]:
        """Each chunk of `data` read by the child, with the reader's resume point, lines read and ignored records
        after it. Raises ReaderProcessFailed (and the process is done with) when the child fails."""
        stdin, stdout = self._child.stdin, self._child.stdout
        assert stdin is not None and stdout is not None
        with self._lock:
            finished = False
            try:
                _send(stdin, (data, resume, lines_read, final, chunk_bytes))
                while True:
                    message = _receive(stdout)
                    if message is None:
                        raise ReaderProcessFailed("the accounting reader process ended")
                    if message[0] == "done":
                        finished = True
                        return
                    if message[0] == "error":
                        raise ReaderProcessFailed(message[1])
                    _kind, chunk, point, lines, ignored = message
                    yield chunk, point, lines, ignored
            except (OSError, pickle.UnpicklingError, ValueError, TypeError) as exc:
                raise ReaderProcessFailed(f"the accounting reader process failed: {exc}") from exc
            finally:
                if not finished:
                    # A failure, or a reader left before the end of the piece: the child's answer is cut short, so
                    # the pipe no longer holds whole frames in step with requests.
                    self._fail("the accounting reader process was stopped in the middle of a piece")

    def _fail(self, reason: str) -> None:
        if not self._failed:
            log.info("accounting read in this process from here on", extra={"reason": reason})
        self._failed = True
        self.close()

    def close(self) -> None:
        self._failed = True
        child = self._child
        if child.poll() is None:
            child.kill()
        child.wait()
        for stream in (child.stdin, child.stdout):
            if stream is not None:
                stream.close()


class ColumnarReaderInProcess(ColumnarAccountingReader):
    """`ColumnarAccountingReader` with its pieces read by `process` whenever it is ready (see the module doc)."""

    def __init__(
        self,
        process: ReaderProcess,
        *,
        chunk_bytes: int = 16 << 20,
        resume: ResumePoint | None = None,
        lines_read: int = 0,
    ) -> None:
        super().__init__(chunk_bytes=chunk_bytes, resume=resume, lines_read=lines_read)
        self._process = process

    def read_piece(self, data: bytes, *, final: bool) -> Iterator[AccountingChunk]:
        if not self._process.ready():
            yield from super().read_piece(data, final=final)
            return
        start = self._offset
        try:
            for chunk, point, lines, ignored in self._process.read_piece(
                data, resume=self.resume_point, lines_read=self.lines_read, final=final, chunk_bytes=self._chunk_bytes
            ):
                self._offset, self._columns, self.lines_read = point.offset, point.columns, lines
                self.ignored.update(ignored)
                self.problems += chunk.problems
                yield chunk
        except ReaderProcessFailed as exc:
            log.warning("accounting reader process failed; read here", extra={"error": str(exc)})
            yield from super().read_piece(data[self._offset - start :], final=final)


def _serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    _send(answers, _READY)
    while True:
        request = _receive(requests)
        if request is None:
            return  # the parent closed our stdin, or is gone
        data, resume, lines_read, final, chunk_bytes = request
        reader = ColumnarAccountingReader(chunk_bytes=chunk_bytes, resume=resume, lines_read=lines_read)
        try:
            for chunk in reader.read_piece(data, final=final):
                _send(answers, ("chunk", chunk, reader.resume_point, reader.lines_read, dict(reader.ignored)))
                reader.ignored.clear()
        except Exception as exc:  # told to the parent, which reads the piece itself
            _send(answers, ("error", f"{type(exc).__name__}: {exc}"))
            continue
        _send(answers, ("done",))


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _serve(sys.stdin.buffer, sys.stdout.buffer)
