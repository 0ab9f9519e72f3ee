#!/usr/bin/env python3
"""`make demo`: the operator's main job, end to end, on a local control plane.

Starts etcd, kube-apiserver and kube-controller-manager on loopback, installs the ZenModelDeployment CRD
and Seldon Core's own SeldonDeployment CRD, runs the operator as a real process, applies
examples/iris-s3.yaml and shows what the operator made of it. No Seldon Core controller runs here, so
the model honestly waits in `Creating` for Seldon to roll it out.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import threading
from pathlib import Path

from support.localcluster import LocalCluster
from support.operator_process import OperatorProcess
from support.waiting import wait_for

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "iris-s3.yaml"
NAMESPACE = "models"


def banner(text: str) -> None:
    print(f"\n=== {text}", flush=True)


def show(cluster: LocalCluster, *args: str) -> None:
    print(f"$ kubectl {' '.join(args)}", flush=True)
    print(cluster.kubectl(*args).stdout.rstrip(), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--keep", action="store_true", help="keep everything running until Ctrl-C")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="zenmodel-demo-") as workdir:
        banner("starting a local control plane (etcd, kube-apiserver, kube-controller-manager)")
        with LocalCluster(Path(workdir) / "cluster") as cluster:
            cluster.start(
                [
                    REPO / "crds" / "zenml.io_zenmodeldeployments.yaml",
                    cluster.tools_dir / "seldon-crd.yaml",
                ]
            )
            print(f"export KUBECONFIG={cluster.kubeconfig}")
            show(cluster, "get", "crd")

            banner("running the operator: zenmodel-operator run")
            log = Path(workdir) / "operator.log"
            operator = OperatorProcess(
                {**cluster.env(), "ZENMODEL_INGRESS_BASE_URL": "http://ingress.example.com"}, log
            ).start()
            try:
                banner(f"applying {EXAMPLE.relative_to(REPO)}")
                show(cluster, "create", "namespace", NAMESPACE)
                show(cluster, "apply", "-f", str(EXAMPLE))

                def has_state() -> bool:
                    out = cluster.kubectl("get", "zmd", "iris", "-n", NAMESPACE, "-o", "json").stdout
                    return bool((json.loads(out).get("status") or {}).get("state"))

                wait_for(has_state, 60, "the operator never reported a state")
                banner("what the operator made of it")
                show(cluster, "get", "zmd", "-n", NAMESPACE)
                show(
                    cluster,
                    "get",
                    "seldondeployments,secrets",
                    "-n",
                    NAMESPACE,
                    "-l",
                    "app.kubernetes.io/managed-by=zenmodel-operator",
                )
                show(
                    cluster,
                    "get",
                    "zmd",
                    "iris",
                    "-n",
                    NAMESPACE,
                    "-o",
                    'jsonpath={range .status.conditions[*]}{.type}={.status} ({.reason}): {.message}{"\\n"}{end}',
                )
                show(
                    cluster, "get", "events", "-n", NAMESPACE, "--field-selector", "involvedObject.name=iris"
                )
                print(
                    "\nNo Seldon Core controller runs on this control plane, so the SeldonDeployment is never "
                    "rolled out:\nthe model waits in state Creating for Seldon Core. In a real cluster it turns "
                    "Available, with its prediction URL."
                )
                if args.keep:
                    print(f"\nKeeping it running; operator log: {log}. Ctrl-C to stop.", flush=True)
                    stop = threading.Event()
                    signal.signal(signal.SIGINT, lambda *_: stop.set())
                    signal.signal(signal.SIGTERM, lambda *_: stop.set())
                    stop.wait()
            finally:
                operator.stop()
        banner("stopped the operator and the control plane")
    return 0


if __name__ == "__main__":
    sys.exit(main())
