#!/usr/bin/env python3
"""Credential rotation latency: from a change of the referenced Secret to the updated rclone Secret.

Runs the real operator against the local control plane, with `--parents` deployments sharing one
credentials Secret, rotates that Secret `--rotations` times and times each rotation until the watched
rclone Secret carries the new value. Prints the figures; the goal is under 2 s.
"""

from __future__ import annotations

import argparse
import base64
import queue
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch
from urllib3.exceptions import ProtocolError

from support.localcluster import LocalCluster
from support.objects import apply, s3_secret, zmd
from support.operator_process import OperatorProcess
from support.waiting import wait_for

NAMESPACE = "bench"
KEY = "RCLONE_CONFIG_S3_SECRET_ACCESS_KEY"


def watch_rclone_secret(
    core: client.CoreV1Api, seen: queue.Queue[tuple[float, str]], stop: threading.Event
) -> None:
    stream = watch.Watch()
    try:
        for event in stream.stream(
            core.list_namespaced_secret,
            NAMESPACE,
            field_selector="metadata.name=model-00-rclone",
            timeout_seconds=600,
        ):
            obj: Any = event["object"]
            value = (obj.data or {}).get(KEY)
            if value:
                seen.put((time.monotonic(), base64.b64decode(value).decode()))
    except ProtocolError:
        if not stop.is_set():
            raise  # the control plane going away at the end closes the stream; anything else is a failure


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--parents", type=int, default=20)
    parser.add_argument("--rotations", type=int, default=20)
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory(prefix="zenmodel-bench-") as workdir,
        LocalCluster(Path(workdir) / "c") as cluster,
    ):
        cluster.start(cluster.crds)
        cluster.kubectl("create", "namespace", NAMESPACE)
        operator = OperatorProcess(cluster.env(), Path(workdir) / "operator.log").start()
        try:
            apply(
                cluster,
                s3_secret(NAMESPACE, secret_key="v0"),  # noqa: S106 (a benchmark value)
                *(zmd(f"model-{i:02d}", NAMESPACE) for i in range(args.parents)),
            )
            config.load_kube_config(str(cluster.kubeconfig))
            core = client.CoreV1Api()

            def converged() -> bool:
                items = core.list_namespaced_secret(
                    NAMESPACE, label_selector="zenml.io/model-credentials=generated"
                ).items
                return bool(len(items) == args.parents)

            wait_for(converged, 120, "the rclone Secrets never appeared")
            seen: queue.Queue[tuple[float, str]] = queue.Queue()
            stop = threading.Event()
            threading.Thread(target=watch_rclone_secret, args=(core, seen, stop), daemon=True).start()
            time.sleep(1)  # let the watch establish before the first rotation (not a wait for a result)

            latencies = []
            for rotation in range(1, args.rotations + 1):
                value = f"v{rotation}"
                started = time.monotonic()
                core.patch_namespaced_secret(
                    "s3-creds",
                    NAMESPACE,
                    {"data": {"AWS_SECRET_ACCESS_KEY": base64.b64encode(value.encode()).decode()}},
                )
                while True:
                    at, got = seen.get(timeout=30)
                    if got == value:
                        latencies.append(at - started)
                        break
            stop.set()
        finally:
            operator.stop()

    ms = sorted(1000 * x for x in latencies)
    p95 = ms[max(0, round(0.95 * len(ms)) - 1)]
    print(
        f"rotation latency over {len(ms)} rotations with {args.parents} deployments sharing the Secret: "
        f"p50 {statistics.median(ms):.0f} ms, p95 {p95:.0f} ms, max {ms[-1]:.0f} ms "
        f"(goal < 2000 ms: {'met' if ms[-1] < 2000 else 'NOT met'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
