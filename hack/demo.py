#!/usr/bin/env python3
"""`make demo`: the operator's main job, end to end, on a local control plane, ending with a prediction.

Starts etcd, kube-apiserver, kube-controller-manager and kube-scheduler, kwok with a fake Node, a real
node (containerd, the kubelet and kube-proxy, on this machine; Seldon's images, built here, imported into
its containerd) and Seldon Core's own controller manager; installs the ZenModelDeployment CRD and Seldon's
SeldonDeployment CRD, and runs the operator as a real process. Then trains a small iris model, puts it in
an S3 store (moto) on the node's host address, applies a ZenModelDeployment for it with an opted-in
credentials Secret, shows what the operator made of it and what Seldon made of that, and sends the model
a V2 inference request for two iris samples at Seldon's own address, printing the answer.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

from support import iris
from support.localcluster import SELDON_NAMESPACE, LocalCluster
from support.objects import secret
from support.objectstores import BUCKET, moto_s3
from support.operator_process import OperatorProcess
from support.realnode import API_ADDRESS
from support.seldon_images import SKLEARN_V2_SERVER, built_seldon_images
from support.serving import MODEL_NAME, infer, inference_request, predictor_address, serving_zmd
from support.waiting import wait_for

NAMESPACE = "models"
# Two of the samples: a setosa and a virginica.
SAMPLES = (iris.SAMPLES[0], iris.SAMPLES[2])
MODEL_PATH = "iris/v1"
# Scheduling, rclone's fetch and MLServer's start, on a shared two-core machine.
SERVE_TIMEOUT = 180


STARTED = time.monotonic()


def banner(text: str) -> None:
    print(f"\n=== [{time.monotonic() - STARTED:5.1f}s] {text}", flush=True)


def show(cluster: LocalCluster, *args: str) -> None:
    print(f"$ kubectl {' '.join(args)}", flush=True)
    print(cluster.kubectl(*args).stdout.rstrip(), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--keep", action="store_true", help="keep everything running until Ctrl-C")
    args = parser.parse_args()

    banner("Seldon's pod images (MLServer with scikit-learn, rclone's storage initializer), built here")
    images = built_seldon_images()
    print("\n".join(images.values()), flush=True)
    with tempfile.TemporaryDirectory(prefix="zenmodel-demo-") as workdir:
        work = Path(workdir)
        banner("training a small iris model (scikit-learn, inside the MLServer image)")
        model = iris.train(images[SKLEARN_V2_SERVER], work / "model").read_bytes()
        print(f"{iris.MODEL_FILE}: {len(model)} bytes", flush=True)
        banner(
            "starting a local control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler) "
            "and a real node (containerd, kubelet, kube-proxy)"
        )
        with LocalCluster(work / "cluster") as cluster:
            cluster.start(
                cluster.crds, scheduler=True, fake_node=True, seldon=True, real_node=True, timeout=300
            )
            assert cluster.real_node is not None
            for image in images.values():
                cluster.real_node.import_from_podman(image)
            print(f"export KUBECONFIG={cluster.kubeconfig}")
            show(cluster, "get", "nodes", "-o", "wide")
            print(
                f"Seldon Core's controller manager is running (pid {cluster.pid('seldon-manager')}), "
                f"configured by the {SELDON_NAMESPACE}/seldon-config ConfigMap."
            )

            banner(f"an S3 store (moto) on the node's host address, {API_ADDRESS}, holding the model")
            objects = {f"{MODEL_PATH}/{iris.MODEL_FILE}": model}
            (work / "moto").mkdir()
            with moto_s3(work / "moto", host=API_ADDRESS, objects=objects) as store:
                print(f"s3://{BUCKET}/{MODEL_PATH}/{iris.MODEL_FILE} at {store.endpoint}", flush=True)

                banner("running the operator: zenmodel-operator run")
                log = work / "operator.log"
                operator = OperatorProcess(
                    {**cluster.env(), "ZENMODEL_INGRESS_BASE_URL": "http://ingress.example.com"}, log
                ).start()
                try:
                    cluster.real_node.wait_for_images()
                    serve(cluster, store.endpoint, store.access_key_id, store.secret_access_key)
                    if args.keep:
                        print(f"\nKeeping it running; operator log: {log}. Ctrl-C to stop.", flush=True)
                        stop = threading.Event()
                        signal.signal(signal.SIGINT, lambda *_: stop.set())
                        signal.signal(signal.SIGTERM, lambda *_: stop.set())
                        stop.wait()
                finally:
                    operator.stop()
        banner("stopped the operator, the store, the node and the control plane")
    return 0


def serve(cluster: LocalCluster, endpoint: str, access_key_id: str, secret_access_key: str) -> None:
    """Applies the model and its credentials, shows what came of them, and asks the model."""
    credentials = secret(
        NAMESPACE,
        "s3-creds",
        {"AWS_ACCESS_KEY_ID": access_key_id, "AWS_SECRET_ACCESS_KEY": secret_access_key},
    )
    model = serving_zmd("iris", NAMESPACE, f"s3://{BUCKET}/{MODEL_PATH}", endpoint)
    banner("applying the model's ZenModelDeployment (and its opted-in credentials Secret, not shown)")
    print(yaml.safe_dump(model, sort_keys=False), flush=True)
    show(cluster, "create", "namespace", NAMESPACE)
    cluster.kubectl(
        "apply",
        "-f",
        "-",
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [credentials, model]}),
    )

    def state() -> str:
        out = cluster.kubectl("get", "zmd", "iris", "-n", NAMESPACE, "-o", "json").stdout
        return str((json.loads(out).get("status") or {}).get("state") or "")

    wait_for(lambda: state() == "Available", SERVE_TIMEOUT, "the model never became Available")
    banner("the model is Available: Seldon Core's controller rolled it out on the real node")
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
    banner("what the operator made: the SeldonDeployment (its state is Seldon's) and the rclone Secret")
    show(
        cluster,
        "get",
        "seldondeployment",
        "-n",
        NAMESPACE,
        "-o",
        "custom-columns=NAME:.metadata.name,STATE:.status.state,ADDRESS:.status.address.url",
    )
    show(cluster, "get", "secrets", "-n", NAMESPACE, "-l", "app.kubernetes.io/managed-by=zenmodel-operator")
    banner("what Seldon Core made of it: its Deployment, Services and pod (on the real node)")
    show(
        cluster,
        "get",
        "deployments,services,pods",
        "-n",
        NAMESPACE,
        "-l",
        "seldon-deployment-id=iris",
        "-o",
        "wide",
    )
    banner("the storage initializer fetched the model with our rclone Secret")
    pod = json.loads(
        cluster.kubectl(
            "get", "pods", "-n", NAMESPACE, "-l", "seldon-deployment-id=iris", "-o", "json"
        ).stdout
    )["items"][0]
    initializer = pod["spec"]["initContainers"][0]["name"]
    show(cluster, "logs", "-n", NAMESPACE, pod["metadata"]["name"], "-c", initializer)

    address = predictor_address(cluster, NAMESPACE, "iris")
    banner(f"asking the model: POST http://{address[0]}:{address[1]}/v2/models/{MODEL_NAME}/infer")
    print(json.dumps(inference_request(SAMPLES), indent=2), flush=True)
    answer = infer(address, SAMPLES)
    print(json.dumps(answer, indent=2), flush=True)


if __name__ == "__main__":
    sys.exit(main())
