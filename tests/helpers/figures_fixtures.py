"""Session fixtures of the figure/table/advise tests: synthetic results from the paper's Table 4.

The root conftest.py loads this module as a plugin: any test may ask for ``paper``,
``paper_fitted`` or ``tiny_like``. Each results directory is generated once per session
(writing ~1,400 records takes < 1 s; the FittedResults caches its fits across tests).
"""

import pytest

from scaling_repro.analysis.fitted_results import FittedResults
from scaling_repro.analysis.synthetic import write_synthetic_results

NOISE = 2e-4  # nats per run: paper-like shapes, small enough to check parameters tightly


@pytest.fixture(scope="session")
def paper(tmp_path_factory):
    """The three paper tasks on the Table 1b grid, one run per point, Table 4 laws + noise."""
    return write_synthetic_results(tmp_path_factory.mktemp("paper-results"), runs=1, noise=NOISE, seed=0)


@pytest.fixture(scope="session")
def paper_fitted(paper):
    """The FittedResults of ``paper`` (fits cached for the session)."""
    return FittedResults.from_dir(paper.root)


@pytest.fixture(scope="session")
def tiny_like(tmp_path_factory):
    """A study shaped like the tiny CPU one: task synthetic_mt, BLEU/chrF, model-size runs only."""
    return write_synthetic_results(
        tmp_path_factory.mktemp("tiny-like"),
        tasks=("wmt14_en_de",),
        factors=("model_size",),
        runs=2,
        noise=1e-3,
        seed=1,
        rename={"wmt14_en_de": "synthetic_mt"},
        metrics={"wmt14_en_de": ("bleu", "chrf")},
    )
