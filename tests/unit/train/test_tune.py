import pytest

from train.tune import SEARCH_SPACE, TrainingMatrix, tune
from utils.data import frame_columns, labels_of
from utils.features import Preprocessor
from utils.settings import TuningSettings


@pytest.fixture(scope="module")
def training(adult):
    train, spec = adult.training.sample(4000, random_state=0), adult.spec
    preprocessor = Preprocessor.fit(spec, frame_columns(train, spec))
    matrix = preprocessor.transform(frame_columns(train, spec))
    return TrainingMatrix.of(matrix, labels_of(train), preprocessor.layout)


@pytest.mark.parametrize(
    "hyper, library",
    [
        ("hyperopt", "hyperopt"),
        ("skopt", "skopt"),
        ("hyperparameterhunter", "skopt"),
    ],
)
def test_each_library_runs_its_trials(training, hyper, library):
    seen: list = []
    result = tune(training, TuningSettings(hyper=hyper, max_evals=3, threads=1), on_trial=seen.append)
    assert result.library == library
    assert len(result.trials) == 3 == len(seen)
    assert result.best.cv_logloss == min(t.cv_logloss for t in result.trials)
    assert 0.2 < result.best.cv_logloss < 0.5
    assert result.best.best_iteration >= 1
    for dimension in SEARCH_SPACE:
        assert dimension.low <= result.best.params[dimension.name] <= dimension.high


@pytest.mark.parametrize("hyper, max_evals", [("hyperopt", 1), ("hyperopt", 3), ("skopt", 2)])
def test_warm_start_is_the_first_of_max_evals_trials(training, hyper, max_evals):
    warm = {d.name: (int(d.low) if d.integer else d.low) for d in SEARCH_SPACE}
    settings = TuningSettings(hyper=hyper, max_evals=max_evals, threads=1)
    result = tune(training, settings, warm_start=warm)
    assert result.trials[0].params == warm
    assert len(result.trials) == max_evals
