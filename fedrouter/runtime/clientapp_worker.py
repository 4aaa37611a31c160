"""A long-running ClientApp process for a SuperNode: one base-model load per SuperNode per run.

Flower 1.42's SuperNode runs each message (setup, every training round, every evaluation) in a new
`flwr-clientapp` process that pulls one task, runs the ClientApp and exits
(`flwr/supernode/runtime/run_clientapp.py`), so a deployed client pays the imports and the base-model
load on every message. Started beside a SuperNode run with `--isolation process`, this process takes
the place of Flower's SuperExec for ClientApp tasks: it asks the SuperNode's Runtime API for the next
task (`AcquireTask`, as `flower-superexec` does) and runs it here, with the same Flower calls as
`run_clientapp` (pull the message, context, run and FAB; install the FAB; load its ClientApp; push the
reply and the context), and then waits for the next one. The ClientApp, its modules and so the
per-process base model (`fedrouter.models.backbone`) stay loaded from one message to the next, as
they do in a simulation's Ray worker.

    flower-supernode --isolation process --port 9094 ... &
    python -m fedrouter.runtime.clientapp_worker --runtime-api-address 127.0.0.1:9094 --insecure

An exception in the ClientApp becomes the message's error reply (as in `flwr-clientapp`) and the
process goes on with the next task. The app's code comes from the FAB, as in `flwr-clientapp`: a
task whose FAB differs from the one already loaded restarts this process (exec) with that task. The
module imports only Flower and the standard library; any other code it runs is the FAB's.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from logging import ERROR, INFO
from pathlib import Path

from flwr.app import Message
from flwr.app.error import Error
from flwr.cli.install import install_from_fab
from flwr.clientapp.client_app import ClientApp, LoadClientAppError
from flwr.clientapp.utils import get_load_client_app_fn
from flwr.common.config import get_project_config, get_project_dir
from flwr.common.constant import ErrorCode, SubStatus
from flwr.proto.runtime_pb2 import AcquireTaskRequest  # pylint: disable=E0611
from flwr.supercore import log
from flwr.supercore.app_utils import start_parent_process_monitor
from flwr.supercore.constant import TaskType
from flwr.supercore.heartbeat import HeartbeatSender, make_task_heartbeat_fn_http
from flwr.supercore.interceptors import RuntimeTokenHttpInterceptor, RuntimeVersionHttpInterceptor
from flwr.supercore.retry import make_simple_http_retry_invoker
from flwr.supercore.runtime import RuntimeHttpClient
from flwr.supercore.tls import validate_and_resolve_root_certificates
from flwr.supernode.runtime.run_clientapp import pull_task_input, push_message, push_task_output

MODULE = "fedrouter.runtime.clientapp_worker"


class Worker:
    """Acquires the SuperNode's ClientApp tasks and runs them in this process, one after another."""

    def __init__(self, runtime_api_address: str, insecure: bool, root_certificates: bytes | None,
                 poll_interval: float, argv: list[str]):
        self.address, self.insecure, self.certificates = runtime_api_address, insecure, root_certificates
        self.poll_interval, self.argv = poll_interval, argv
        self.fab_hash: str | None = None  # the FAB whose ClientApp this process has loaded
        self.app: ClientApp | None = None
        self.tasks = 0

    def _client(self, interceptors: list) -> RuntimeHttpClient:
        return RuntimeHttpClient.from_server_address(
            server_address=self.address, insecure=self.insecure, root_certificates=self.certificates,
            interceptors=interceptors, retry_invoker=make_simple_http_retry_invoker())

    def serve(self, first_token: str | None = None, max_tasks: int | None = None) -> None:
        if first_token:
            self.run_task(first_token)
        acquirer = self._client([RuntimeVersionHttpInterceptor(component_name="SuperExec")])
        try:
            while max_tasks is None or self.tasks < max_tasks:
                res = acquirer.AcquireTask(AcquireTaskRequest(supported_task_types=[TaskType.CLIENT_APP]))
                if not (res.HasField("task") and res.token):
                    time.sleep(self.poll_interval)
                    continue
                if self.fab_hash is not None and res.task.fab_hash != self.fab_hash:
                    self.restart_with(res.token)  # new app code: a fresh interpreter imports it
                self.run_task(res.token)
        finally:
            acquirer.close()

    def restart_with(self, token: str) -> None:
        log(INFO, "[clientapp-worker] a task of another FAB: restarting this process to load its code")
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, restart_argv(self.argv, token))

    def load_app(self, fab_id: str, fab_version: str, fab_hash: str) -> ClientApp:
        if self.app is not None and fab_hash == self.fab_hash:
            return self.app
        project_dir = get_project_dir(fab_id, fab_version, fab_hash)
        ref = get_project_config(project_dir)["tool"]["flwr"]["app"]["components"]["clientapp"]
        # The app's package must come from the FAB. This module's own package (when the app is
        # fedrouter) was imported from wherever the worker was started: forget those modules so the
        # import below finds the FAB's copy first on sys.path, as a fresh `flwr-clientapp` would.
        top = ref.split(":")[0].split(".")[0]
        for name in [m for m in sys.modules if m == top or m.startswith(top + ".")]:
            origin = getattr(sys.modules[name], "__file__", None)
            if name != "__main__" and (origin is None or not Path(origin).resolve().is_relative_to(
                    Path(project_dir).resolve())):
                del sys.modules[name]
        self.app = get_load_client_app_fn(default_app_ref="", app_path=None, multi_app=True)(
            fab_id, fab_version, fab_hash)
        self.fab_hash = fab_hash
        log(INFO, "[clientapp-worker] ClientApp %s loaded from %s", ref,
            getattr(sys.modules.get(ref.split(":")[0]), "__file__", "?"))
        return self.app

    def run_task(self, token: str) -> None:
        """`run_clientapp`'s steps for one task, returning instead of exiting."""
        client = self._client([RuntimeVersionHttpInterceptor(component_name="flwr-clientapp"),
                               RuntimeTokenHttpInterceptor(token)])
        heartbeat = HeartbeatSender(make_task_heartbeat_fn_http(client))
        message = reply = context = None
        sub_status, details = SubStatus.FAILED, "ClientApp task failed due to unknown reason"
        t0 = time.perf_counter()
        marks = {}
        try:
            heartbeat.start()
            message, context, run, fab = pull_task_input(client)
            marks["pull"] = time.perf_counter()
            if fab.hash_str != self.fab_hash:
                install_from_fab(fab.content, skip_prompt=True)
            app = self.load_app(run.fab_id, run.fab_version, fab.hash_str)
            reply = app(message=message, context=context)
            marks["run"] = time.perf_counter()
            sub_status, details = SubStatus.COMPLETED, ""
        except Exception as ex:  # pylint: disable=broad-exception-caught
            code, reason = ErrorCode.CLIENT_APP_RAISED_EXCEPTION, f"{type(ex)}:<'{ex}'>"
            if isinstance(ex, LoadClientAppError):
                code, reason = (ErrorCode.LOAD_CLIENT_APP_EXCEPTION,
                                "An exception was raised when attempting to load `ClientApp`")
            log(ERROR, "ClientApp raised an exception", exc_info=ex)
            details = reason
            if message is not None:
                reply = Message(Error(code=code, reason=reason), reply_to=message)
        finally:
            try:
                if reply is not None and context is not None:
                    push_message(client, reply, context)
            except Exception as ex:  # pylint: disable=broad-exception-caught
                log(ERROR, "Failed to push reply message", exc_info=ex)
            marks["push"] = time.perf_counter()
            push_task_output(client=client, context=context, sub_status=sub_status, details=details)
            if heartbeat.is_running:
                heartbeat.stop()
            client.close()
            self.tasks += 1
            del message, reply, context
        # seconds: pulling the message, running the ClientApp, pushing the reply, the rest (context, cleanup)
        prev, parts = t0, []
        for name in ("pull", "run", "push"):
            if name in marks:
                parts.append(f"{name} {marks[name] - prev:.2f}s")
                prev = marks[name]
        log(INFO, "[clientapp-worker] task %d %s in %.2fs (%s, rest %.2fs)", self.tasks, sub_status,
            time.perf_counter() - t0, ", ".join(parts), time.perf_counter() - prev)


def restart_argv(argv: list[str], token: str) -> list[str]:
    """The command line that restarts this worker with the same arguments and `token` as its first task
    (a previous --first-token, in either argparse spelling, is dropped)."""
    args, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--first-token":
            skip = True
        elif not a.startswith("--first-token="):
            args.append(a)
    return [sys.executable, "-m", MODULE, *args, "--first-token", token]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runtime-api-address", required=True,
                        help="the SuperNode's Runtime API (its --host:--port), e.g. 127.0.0.1:9094")
    tls = parser.add_mutually_exclusive_group(required=True)
    tls.add_argument("--insecure", action="store_true", help="plain HTTP to the Runtime API")
    tls.add_argument("--root-certificates", help="CA certificate (PEM) of a Runtime API served with TLS")
    parser.add_argument("--parent-pid", type=int, help="exit when this process (the SuperNode) exits")
    parser.add_argument("--poll-interval", type=float, default=0.2, help="seconds between task requests (0.2)")
    parser.add_argument("--first-token", help=argparse.SUPPRESS)  # set by the restart for a new FAB
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.parent_pid is not None:
        start_parent_process_monitor(args.parent_pid)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    certificates = validate_and_resolve_root_certificates(args.root_certificates, args.insecure)
    log(INFO, "[clientapp-worker] serving the ClientApp tasks of the SuperNode at %s (pid %d)",
        args.runtime_api_address, os.getpid())
    Worker(args.runtime_api_address, args.insecure, certificates, args.poll_interval, argv).serve(args.first_token)


if __name__ == "__main__":
    main()
