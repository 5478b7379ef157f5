"""Lambda execution environments for the local gateway: a fixed pool of worker processes.

Each worker is one warm execution environment: its own process, which loads the handler once (the init phase),
keeps its module globals (the database connection, Powertools' router and logger state) and runs ONE invocation
at a time, as Lambda does. Concurrent requests therefore never share router state. The gateway hands a request
to a free worker; when none is free the request waits (bounded by the integration timeout).

What the runtime does with a result is reproduced here: the return value is serialised to JSON as the Python
3.12 runtime serialises it (``ensure_ascii=False``, default separators), and a payload larger than
:data:`MAX_RESPONSE_PAYLOAD_BYTES` fails the invocation (API Gateway then answers 502), as does a value that is
not JSON-serialisable or a handler that raises. A worker that overruns the integration timeout is killed and
replaced, like an execution environment Lambda abandons.

Workers are forked from a ``forkserver`` that has already imported the handler's module, so starting or
replacing one costs milliseconds and the imported code is shared copy-on-write, while each worker's state
is its own.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import multiprocessing.connection
import queue
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, Literal

from rampart.local.context import Handler, LambdaContext, load_handler

# Lambda's synchronous invocation response limit, as its runtime enforces it ("Response payload size (N bytes)
# exceeded maximum allowed payload size (6291556 bytes)"): 6 MiB plus 100 bytes.
MAX_RESPONSE_PAYLOAD_BYTES = 6_291_556
START_TIMEOUT_S = 60.0

Outcome = Literal["ok", "error", "timeout", "too_large"]


@dataclass(frozen=True)
class Invocation:
    """What one invocation produced: the JSON payload (``ok``), or why there is none."""

    outcome: Outcome
    payload: bytes = b""
    detail: str = ""  # an error type or a size: never a value from the request or the response


class PayloadTooLargeError(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(f"response payload of {size} bytes exceeds {MAX_RESPONSE_PAYLOAD_BYTES}")
        self.size = size


def lambda_payload(result: Any) -> bytes:
    """The handler's return value as the python3.12 runtime sends it, or :class:`PayloadTooLargeError`."""
    payload = json.dumps(result, ensure_ascii=False).encode("utf-8", "surrogatepass")
    if len(payload) > MAX_RESPONSE_PAYLOAD_BYTES:
        raise PayloadTooLargeError(len(payload))
    return payload


def _invoke_here(handler: Handler, event: dict[str, Any], context: LambdaContext) -> Invocation:
    try:
        result = handler(event, context)
    except Exception as exc:  # noqa: BLE001 - a function error is an outcome, not a crash of the environment
        return Invocation("error", detail=type(exc).__name__)
    try:
        return Invocation("ok", lambda_payload(result))
    except PayloadTooLargeError as exc:
        return Invocation("too_large", detail=str(exc.size))
    except (TypeError, ValueError) as exc:  # Runtime.MarshalError
        return Invocation("error", detail=f"MarshalError:{type(exc).__name__}")


# -- the worker process ------------------------------------------------------------------------------------------------
def _worker_main(
    conn: multiprocessing.connection.Connection, handler_spec: str, function_name: str, region: str, timeout_s: float
) -> None:
    """One execution environment: init once, then one invocation at a time until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the gateway decides when its environments stop
    try:
        handler = load_handler(handler_spec)
    except Exception as exc:  # noqa: BLE001 - reported to the gateway, which refuses to start
        conn.send_bytes(b"I" + type(exc).__name__.encode())
        return
    conn.send_bytes(b"ready")
    while True:
        try:
            raw = conn.recv_bytes()
        except (EOFError, OSError):
            return  # the gateway is gone or closed this environment
        context = LambdaContext(function_name=function_name, region=region, timeout_s=timeout_s)
        outcome = _invoke_here(handler, json.loads(raw), context)
        tag = {"ok": b"R", "error": b"E", "too_large": b"L", "timeout": b"E"}[outcome.outcome]
        try:
            conn.send_bytes(tag + (outcome.payload if outcome.outcome == "ok" else outcome.detail.encode()))
        except (BrokenPipeError, OSError):
            return


@dataclass
class _Worker:
    process: multiprocessing.process.BaseProcess
    conn: multiprocessing.connection.Connection
    number: int


class WorkerStartError(RuntimeError):
    """An execution environment could not start (its init phase failed or timed out)."""


class LambdaWorkerPool:
    """``size`` worker processes running ``handler_spec``; :meth:`invoke` runs one event on a free one."""

    def __init__(
        self,
        handler_spec: str,
        size: int,
        *,
        function_name: str = "rampart-local-api",
        region: str = "eu-west-1",
        timeout_s: float = 29.0,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        if not 1 <= size <= 256:
            raise ValueError("the worker pool size must be 1..256")
        self.handler_spec = handler_spec
        self.size = size
        self._args = (handler_spec, function_name, region, timeout_s)
        self._on_event = on_event or (lambda _m, _f: None)
        self._ctx = multiprocessing.get_context("forkserver")
        # Import the handler's module once in the fork server: workers then start in milliseconds.
        self._ctx.set_forkserver_preload([handler_spec.rpartition(".")[0]])
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: dict[int, _Worker] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._started = 0
        self.replaced = 0
        workers = [self._start() for _ in range(size)]
        try:
            for worker in workers:
                self._await_ready(worker)
                self._idle.put(worker)
        except BaseException:
            self.close()
            raise

    # -- lifecycle ---------------------------------------------------------------------------------------------------
    def _start(self) -> _Worker:
        parent, child = self._ctx.Pipe(duplex=True)
        with self._lock:
            self._started += 1
            number = self._started
        process = self._ctx.Process(
            target=_worker_main, args=(child, *self._args), name=f"api-lambda-{number}", daemon=True
        )
        process.start()
        child.close()
        worker = _Worker(process, parent, number)
        with self._lock:
            self._all[number] = worker
        return worker

    def _await_ready(self, worker: _Worker) -> None:
        if not worker.conn.poll(START_TIMEOUT_S):
            self._discard(worker)
            raise WorkerStartError(f"an execution environment did not start within {START_TIMEOUT_S:.0f} s")
        try:
            message = worker.conn.recv_bytes()
        except (EOFError, OSError):
            message = b"Iexited"
        if message != b"ready":
            self._discard(worker)
            raise WorkerStartError(f"the handler's init phase failed ({message[1:].decode(errors='replace')})")

    def _discard(self, worker: _Worker) -> None:
        """Kill one environment (it overran, died or failed) and forget it (unless :meth:`close` took it)."""
        with self._lock:
            owned = self._all.pop(worker.number, None) is not None
        if not owned:
            return
        with contextlib.suppress(OSError):
            worker.conn.close()
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join(5)
        with contextlib.suppress(ValueError):
            worker.process.close()

    def _replace(self, worker: _Worker, why: str) -> None:
        """Discard ``worker`` and start a new environment in the background (the request does not wait)."""
        self._discard(worker)
        self.replaced += 1
        self._on_event("replacing an execution environment", {"why": why, "worker": worker.number})

        def start_one() -> None:
            for attempt in range(3):
                if self._closed.is_set():
                    return
                try:
                    fresh = self._start()
                    self._await_ready(fresh)
                except WorkerStartError as exc:
                    self._on_event("an execution environment failed to start", {"error": str(exc), "try": attempt})
                    time.sleep(0.5 * (attempt + 1))
                    continue
                if self._closed.is_set():
                    self._discard(fresh)
                else:
                    self._idle.put(fresh)
                return

        threading.Thread(target=start_one, name="api-lambda-replace", daemon=True).start()

    def close(self) -> None:
        """Stop every environment: close their pipes (they exit), then kill any that lingers."""
        self._closed.set()
        with self._lock:
            workers = list(self._all.values())
            self._all.clear()
        for worker in workers:
            with contextlib.suppress(OSError):
                worker.conn.close()
        deadline = time.monotonic() + 5
        for worker in workers:
            worker.process.join(max(0.1, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(5)
            with contextlib.suppress(ValueError):
                worker.process.close()

    def pids(self) -> list[int]:
        with self._lock:
            return [w.process.pid for w in self._all.values() if w.process.pid is not None]

    # -- invocations -------------------------------------------------------------------------------------------------
    def invoke(self, event: dict[str, Any], timeout_s: float) -> Invocation:
        """Run ``event`` on a free environment; waiting for one counts against ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        try:
            worker = self._idle.get(timeout=max(0.0, timeout_s))
        except queue.Empty:
            return Invocation("timeout", detail="no free execution environment")
        data = json.dumps(event).encode("utf-8", "surrogatepass")
        try:
            worker.conn.send_bytes(data)
            if not worker.conn.poll(max(0.0, deadline - time.monotonic())):
                self._replace(worker, "integration timeout")
                return Invocation("timeout", detail="integration timeout")
            message = worker.conn.recv_bytes()
        except (EOFError, OSError):
            self._replace(worker, "exited during an invocation")
            return Invocation("error", detail="Runtime.ExitError")
        self._idle.put(worker)
        tag, body = message[:1], message[1:]
        if tag == b"R":
            return Invocation("ok", body)
        if tag == b"L":
            return Invocation("too_large", detail=body.decode())
        return Invocation("error", detail=body.decode(errors="replace"))


class ThreadInvoker:
    """The handler called on threads of THIS process (unit tests of the gateway's own logic only).

    Unlike :class:`LambdaWorkerPool`, concurrent invocations share the handler's module state; the twin never
    uses it.
    """

    def __init__(self, handler: Handler, size: int = 4, function_name: str = "rampart-test", region: str = "eu-west-1"):
        self.handler = handler
        self._pool = ThreadPoolExecutor(size, thread_name_prefix="api-lambda-thread")
        self._function_name, self._region = function_name, region

    def invoke(self, event: dict[str, Any], timeout_s: float) -> Invocation:
        context = LambdaContext(function_name=self._function_name, region=self._region, timeout_s=timeout_s)
        future = self._pool.submit(_invoke_here, self.handler, event, context)
        try:
            return future.result(timeout=timeout_s)
        except FutureTimeout:
            return Invocation("timeout", detail="integration timeout")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
