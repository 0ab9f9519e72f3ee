"""A tiny iris classifier for the SKLEARN_SERVER model server, trained inside that server's image so that
the pickle is written by the very scikit-learn, numpy and joblib that will load it.

Two variants tell one served model from another: ``IRIS`` predicts the species as the data set numbers
them, ``PERMUTED`` was trained with every label moved (0 -> 2, 1 -> 0, 2 -> 1), so it answers the same
samples with other, known classes.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from support.image import PODMAN_LIMITS

MODEL_FILE = "model.joblib"
# Rows 0, 50 and 100 of scikit-learn's iris data set (sepal length, sepal width, petal length, petal
# width, in cm), and their species there: setosa (0), versicolor (1), virginica (2).
SAMPLES: tuple[tuple[float, float, float, float], ...] = (
    (5.1, 3.5, 1.4, 0.2),
    (7.0, 3.2, 4.7, 1.4),
    (6.3, 3.3, 6.0, 2.5),
)
SAMPLE_SPECIES: tuple[int, ...] = (0, 1, 2)

# Runs in the image: argv[1] is the label each species is trained as ("2,0,1": species 0 as 2, ...),
# argv[2] where the model goes. A decision tree fits its training rows exactly, so the samples above (rows
# of the training data) come back as their relabelled species, whatever the platform.
TRAIN = """
import sys
import joblib
from sklearn.datasets import load_iris
from sklearn.tree import DecisionTreeClassifier

relabel = [int(label) for label in sys.argv[1].split(",")]
features, species = load_iris(return_X_y=True)
model = DecisionTreeClassifier(random_state=0).fit(features, [relabel[s] for s in species])
joblib.dump(model, sys.argv[2])
"""


@dataclass(frozen=True)
class IrisVariant:
    name: str
    # The class species i is trained as: relabel[i].
    relabel: tuple[int, int, int]

    def expected_classes(self) -> list[int]:
        """What this variant predicts for ``SAMPLES``, in order."""
        return [self.relabel[species] for species in SAMPLE_SPECIES]


IRIS = IrisVariant("iris", (0, 1, 2))
PERMUTED = IrisVariant("iris-permuted", (2, 0, 1))


def train(image: str, directory: Path, variant: IrisVariant = IRIS) -> Path:
    """Trains ``variant`` in ``image`` (no network; the output directory bind-mounted, written as the
    caller's user) and writes ``directory``/model.joblib; its path."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "podman", "run", "--rm", "--pull=never", "--network=none", f"--user={os.getuid()}:{os.getgid()}",
            *PODMAN_LIMITS, f"--volume={directory}:/out", "--entrypoint=python3", image,
            "-c", TRAIN, ",".join(map(str, variant.relabel)), f"/out/{MODEL_FILE}",
        ],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return directory / MODEL_FILE
