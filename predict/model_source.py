"""Model versions fetched from the MLflow registry instead of a shared folder, for predictors on
other machines (`--model-source mlflow`).

Each trained version is logged with its store folder as the artifact `model_store_version` and
registered with the tag `store_version`. A predictor downloads the folder into its local cache
(a ModelStore) and verifies it there exactly as a local version: checksums, schema, smoke test."""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from utils.mlflow_outage import TrackingUnavailable, is_outage
from utils.model_store import CHAMPION_ALIAS, REGISTRY_ARTIFACT, ModelStore, ModelStoreError

log = logging.getLogger(__name__)


class MlflowModelSource:
    def __init__(self, tracking_uri: str, registered_model: str, cache: ModelStore):
        import mlflow

        self.mlflow = mlflow
        mlflow.set_tracking_uri(tracking_uri)
        self.client = mlflow.MlflowClient()
        self.registered_model = registered_model
        self.cache = cache

    def champion_version(self) -> int:
        """The store version the registry's champion alias points at."""
        try:
            champion = self.client.get_model_version_by_alias(self.registered_model, CHAMPION_ALIAS)
        except self.mlflow.exceptions.MlflowException as error:
            if is_outage(error):
                raise TrackingUnavailable(f"MLflow unreachable: {error.message[:200]}") from error
            raise ModelStoreError(
                f"no {CHAMPION_ALIAS} in registered model {self.registered_model}: {error}"
            ) from error
        return int(champion.tags["store_version"])

    def fetch(self, version: int) -> None:
        """Download a version into the cache unless it is there already. TrackingUnavailable if the
        server does not answer (retry later), ModelStoreError if the version is not to be had."""
        if self.cache.path_of(version).is_dir():
            return
        try:
            self._download(version)
        except TrackingUnavailable:
            raise
        except Exception as error:
            if is_outage(error):
                raise TrackingUnavailable(f"MLflow unreachable while fetching version {version}") from error
            raise

    def _download(self, version: int) -> None:
        matches = self.client.search_model_versions(
            f"name='{self.registered_model}' and tags.store_version='{int(version)}'"
        )
        if not matches:
            raise ModelStoreError(f"version {version} is not in the MLflow registry {self.registered_model}")
        self.cache.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".download-", dir=self.cache.root))
        try:
            self.mlflow.artifacts.download_artifacts(
                run_id=matches[0].run_id, artifact_path=REGISTRY_ARTIFACT, dst_path=str(staging)
            )
            (staging / REGISTRY_ARTIFACT).rename(self.cache.path_of(version))
        except (OSError, self.mlflow.exceptions.MlflowException) as error:
            if is_outage(error):
                raise
            raise ModelStoreError(f"version {version}: download from MLflow failed ({error})") from error
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        log.info("model version fetched from MLflow version=%s run_id=%s", version, matches[0].run_id)
