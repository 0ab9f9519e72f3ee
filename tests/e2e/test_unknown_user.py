"""The operator as any numeric user: the chart runs it as UID 65532, which an image need not know.

Run under a user with no passwd entry and none of HOME, USER, LOGNAME set, as in a container that the
chart's securityContext starts as UID 65532, it must start, lead, and converge a model. (kopf's default
identity asks the password database for the user's name, and so crashed such a pod at startup.)
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
from pathlib import Path

import pytest

from support.localcluster import LocalCluster
from support.objects import AVAILABLE_TIMEOUT, apply, fresh_namespace, must_get, s3_secret, wait_state, zmd
from support.operator_process import OperatorProcess

pytestmark = pytest.mark.e2e

UID = 65532
# Variables through which a process may learn a user's name or home without the password database.
USER_VARIABLES = ("HOME", "USER", "LOGNAME", "LNAME", "USERNAME")


def as_unknown_user() -> list[str]:
    """setpriv's command prefix for UID and GID 65532 with no supplementary groups. CAP_DAC_READ_SEARCH is
    kept (ambient) only so that the interpreter and the test's kubeconfig, which live in root's private
    directories here, can be read: it grants reading files, not an identity."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.fail("setpriv (util-linux) is needed to run the operator as another user")
    return [
        setpriv,
        f"--reuid={UID}",
        f"--regid={UID}",
        "--clear-groups",
        "--inh-caps=+dac_read_search",
        "--ambient-caps=+dac_read_search",
    ]


def test_the_operator_runs_as_a_numeric_user_without_a_passwd_entry(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    if os.geteuid() != 0:
        pytest.fail("running a process as another user needs root")
    with pytest.raises(KeyError):
        pwd.getpwuid(UID)  # the point of the test: no name for this user
    env = {key: value for key, value in cluster.env().items() if key not in USER_VARIABLES}
    with fresh_namespace(cluster, "nouser") as namespace:
        log = tmp_path / "operator.log"
        log.touch()
        process = OperatorProcess(
            env,
            log,
            "--namespaces",
            namespace,
            "--leader-election",
            "--leader-election-namespace",
            namespace,
            wrapper=as_unknown_user(),
        )
        process.start()
        try:
            apply(cluster, s3_secret(namespace), zmd("iris", namespace))
            wait_state(cluster, namespace, "iris", "Available", timeout=AVAILABLE_TIMEOUT)
            holder = str(must_get(cluster, "lease", namespace, "zenmodel-operator")["spec"]["holderIdentity"])
            # The one identity, in the Lease and the log: the host's (in a pod, the pod's) name and a UUID.
            assert holder.startswith(f"{socket.gethostname()}_")
            assert f"starting as {holder}" in process.log()
            assert process.proc is not None and process.proc.poll() is None
        finally:
            process.stop()
        assert process.proc is not None and process.proc.returncode == 0, process.log()[-4000:]
