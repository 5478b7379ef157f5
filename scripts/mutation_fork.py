"""A fork server for `make mutation`: pytest runs in a fresh fork of a process that has imported the test tools.

    python scripts/mutation_fork.py serve SOCKET MODULES_FILE   # started by scripts/mutation.py
    python scripts/mutation_fork.py run SOCKET -- PYTEST_ARGS    # cosmic-ray's test command (one per mutant)

Starting pytest costs about 2.5 s here, most of it importing pytest's plugins (hypothesis, schemathesis), pydantic,
Powertools, boto3: paid once per mutant, that is an hour for the five core modules. The server imports those
third-party modules once; each `run` forks it and runs pytest in the child, with the client's stdin, stdout and
stderr (passed over the socket), and answers the exit status.

What makes it as honest as a fresh process: the server never imports anything of the project (``rampart``, the
tests, the scripts; it checks), so every child imports the mutated module from disk, as a fresh interpreter would;
children share nothing but the parent's read-only image of third-party code. A client that goes away (cosmic-ray's
timeout kills it) takes its child with it. One child at a time: cosmic-ray's local distributor is sequential.
"""

from __future__ import annotations

import array
import json
import os
import signal
import socket
import sys
import threading
from pathlib import Path

PROJECT_PREFIXES = ("rampart", "tests", "scripts", "bench", "security", "policies")


def _is_project_module(name: str, project_root: str) -> bool:
    module = sys.modules.get(name)
    path = getattr(module, "__file__", None) or ""
    return name.split(".", maxsplit=1)[0] in PROJECT_PREFIXES or (bool(path) and path.startswith(project_root))


def _preload(modules: list[str], project_root: str) -> int:
    loaded = 0
    for name in modules:
        if name.startswith("__") or name.split(".")[0] in PROJECT_PREFIXES:
            continue
        try:
            __import__(name)
            loaded += 1
        except Exception:  # noqa: BLE001, S112 - a module that cannot be imported out of context is imported later
            continue
    leaked = sorted(n for n in list(sys.modules) if not n.startswith("__") and _is_project_module(n, project_root))
    if leaked:
        raise SystemExit(f"mutation fork server: project modules imported by the preload: {leaked[:5]}")
    return loaded


def _child(conn: socket.socket, fds: list[int], request: dict[str, object]) -> None:
    for target, fd in enumerate(fds[:3]):
        os.dup2(fd, target)
    for fd in fds:
        os.close(fd)
    sys.stdin = os.fdopen(0, "r", closefd=False)
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
    sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)

    def watchdog() -> None:  # the client went away (a timeout): this run ends with it
        conn.recv(1)
        os._exit(124)

    threading.Thread(target=watchdog, daemon=True).start()
    os.chdir(str(request["cwd"]))
    import pytest  # noqa: PLC0415 - preloaded by the server; the client (python -S) must not need it

    code = int(pytest.main([str(a) for a in request["argv"]]))  # type: ignore[attr-defined]
    sys.stdout.flush()
    sys.stderr.flush()
    conn.sendall(f"{code}\n".encode())
    os._exit(code)


def serve(path: str, modules_file: str, project_root: str) -> None:
    modules = json.loads(Path(modules_file).read_text(encoding="utf-8")) if Path(modules_file).is_file() else []
    loaded = _preload(["pytest", *modules], project_root)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(f"{path}.tmp")
    server.listen(8)
    os.replace(f"{path}.tmp", path)  # the socket appears only once it accepts connections
    print(f"mutation fork server: {loaded} modules preloaded, listening on {path}", flush=True)
    while True:
        conn, _ = server.accept()
        msg, fds = _recv_with_fds(conn)
        if os.fork() == 0:
            server.close()
            _child(conn, fds, json.loads(msg))
        for fd in fds:
            os.close(fd)
        conn.close()


def _recv_with_fds(conn: socket.socket) -> tuple[bytes, list[int]]:
    fds = array.array("i")
    msg, ancdata, _flags, _addr = conn.recvmsg(65536, socket.CMSG_SPACE(3 * fds.itemsize))
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    return msg, list(fds)


def run(path: str, argv: list[str]) -> int:
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(path)
    request = json.dumps({"argv": argv, "cwd": os.getcwd()}).encode()
    socket.send_fds(client, [request], [0, 1, 2])
    answer = b""
    while not answer.endswith(b"\n"):
        chunk = client.recv(64)
        if not chunk:
            print("mutation fork server: the test run ended without a status", file=sys.stderr)
            return 125
        answer += chunk
    return int(answer)


def main(argv: list[str]) -> int:
    if len(argv) >= 3 and argv[0] == "serve":
        serve(argv[1], argv[2], argv[3] if len(argv) > 3 else os.getcwd())
        return 0
    if len(argv) >= 2 and argv[0] == "run":
        rest = argv[2:]
        return run(argv[1], rest[1:] if rest[:1] == ["--"] else rest)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
