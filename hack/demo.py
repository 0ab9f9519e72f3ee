#!/usr/bin/env python3
"""`make demo`: the operator's main job, end to end, on a local control plane.

Starts etcd, kube-apiserver, kube-controller-manager and kube-scheduler on loopback, kwok with a fake
Node (it plays the kubelet: pods bound to it turn Running and Ready, nothing is pulled or run), and Seldon
Core's own controller manager; installs the ZenModelDeployment CRD and Seldon's SeldonDeployment CRD, runs
the operator as a real process, applies examples/iris-s3.yaml and shows what the operator made of it and
what Seldon made of that, until the model is Available.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import threading
from pathlib import Path

from support.localcluster import SELDON_NAMESPACE, LocalCluster
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
        banner(
            "starting a local control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler"
        )
        with LocalCluster(Path(workdir) / "cluster") as cluster:
            cluster.start(
                cluster.crds,
                scheduler=True,
                fake_node=True,
                seldon=True,
            )
            print(f"export KUBECONFIG={cluster.kubeconfig}")
            print(f"kwok plays the kubelet of one fake Node (pid {cluster.pid('kwok')}):")
            show(cluster, "get", "nodes")
            print(
                f"Seldon Core's controller manager is running (pid {cluster.pid('seldon-manager')}), "
                f"configured by the {SELDON_NAMESPACE}/seldon-config ConfigMap:"
            )
            show(cluster, "get", "configmap", "-n", SELDON_NAMESPACE)

            banner("running the operator: zenmodel-operator run")
            log = Path(workdir) / "operator.log"
            operator = OperatorProcess(
                {**cluster.env(), "ZENMODEL_INGRESS_BASE_URL": "http://ingress.example.com"}, log
            ).start()
            try:
                banner(f"applying {EXAMPLE.relative_to(REPO)}")
                show(cluster, "create", "namespace", NAMESPACE)
                show(cluster, "apply", "-f", str(EXAMPLE))

                def state() -> str:
                    out = cluster.kubectl("get", "zmd", "iris", "-n", NAMESPACE, "-o", "json").stdout
                    return str((json.loads(out).get("status") or {}).get("state") or "")

                wait_for(lambda: state() == "Available", 60, "the model never became Available")
                banner("the model is Available: Seldon Core's controller rolled it out")
                show(cluster, "get", "zmd", "-n", NAMESPACE)
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
                banner(
                    "what the operator made: the SeldonDeployment (its state is Seldon's) and the rclone Secret"
                )
                show(
                    cluster,
                    "get",
                    "seldondeployment",
                    "-n",
                    NAMESPACE,
                    "-o",
                    "custom-columns=NAME:.metadata.name,STATE:.status.state,ADDRESS:.status.address.url",
                )
                show(
                    cluster,
                    "get",
                    "secrets",
                    "-n",
                    NAMESPACE,
                    "-l",
                    "app.kubernetes.io/managed-by=zenmodel-operator",
                )
                banner("what Seldon Core made of it: its Deployment, Services and (fake-Node) pods")
                show(
                    cluster,
                    "get",
                    "deployments,services,pods",
                    "-n",
                    NAMESPACE,
                    "-l",
                    "seldon-deployment-id=iris",
                )
                banner(
                    "the storage initializer in Seldon's pod template: rclone, with our Secret as its environment"
                )
                show(
                    cluster,
                    "get",
                    "deployments",
                    "-n",
                    NAMESPACE,
                    "-l",
                    "seldon-deployment-id=iris",
                    "-o",
                    "jsonpath={range .items[*].spec.template.spec.initContainers[*]}"
                    'image:   {.image}{"\\n"}args:    {.args}{"\\n"}envFrom: {.envFrom}{"\\n"}{end}',
                )
                show(
                    cluster,
                    "get",
                    "events",
                    "-n",
                    NAMESPACE,
                    "--field-selector",
                    "involvedObject.kind=ZenModelDeployment",
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
