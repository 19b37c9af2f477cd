import lightgbm as lgb
import pytest

from train.tune import make_dataset
from utils.data import frame_columns, load_train
from utils.features import Preprocessor
from utils.model_store import MODEL_FILE, PREPROCESSOR_FILE


@pytest.fixture(scope="session")
def small_model_files() -> dict[str, bytes]:
    """A real but tiny model version (20 trees on 3,000 rows) as the store holds it."""
    train = load_train().head(3000)
    preprocessor = Preprocessor.fit(frame_columns(train))
    dataset = make_dataset(preprocessor.transform(frame_columns(train)), train["label"].to_numpy())
    booster = lgb.train({"objective": "binary", "verbosity": -1, "num_threads": 1}, dataset, num_boost_round=20)
    return {
        MODEL_FILE: booster.model_to_string().encode(),
        PREPROCESSOR_FILE: preprocessor.to_json().encode(),
    }
