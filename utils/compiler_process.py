"""The compiler's own process: builds one compiled form (utils/compiled_cache.py) and exits.

Not a service and not run by hand: `CompiledCache.build` starts it with the model text on its
standard input (so an LLVM crash cannot take a predictor down), and the trainer starts it after a
promotion to build a stored version ahead of the predictors:

    python -m utils.compiler_process --cache DIR < model.txt
    python -m utils.compiler_process --model-store DIR --version N
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from utils.compiled_cache import MANIFEST_FILE, CompiledCache, build_entry

log = logging.getLogger(__name__)


def main() -> None:
    """`--cache DIR < model.txt` (what `CompiledCache.build` runs), or `--model-store DIR --version N`
    (what the trainer runs after a promotion, and tests and benchmarks before they start predictors)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--cache", type=Path, help="cache folder; the model text comes on standard input")
    parser.add_argument("--model-store", type=Path, help="build a stored, verified version into its store's cache")
    parser.add_argument("--version", type=int)
    args = parser.parse_args()
    from utils.logs import configure_logging

    configure_logging(os.environ.get("LOG_LEVEL", "INFO"), "compiler")
    if args.model_store is not None and args.version is not None:
        from utils.model_store import MODEL_FILE, ModelStore

        store = ModelStore(args.model_store)
        entry = build_entry(CompiledCache.in_store(store.root).root, store.read_verified(args.version)[MODEL_FILE])
    elif args.cache is not None:
        entry = build_entry(args.cache, sys.stdin.buffer.read())
    else:
        parser.error("give --cache (model on stdin) or --model-store and --version")
    manifest = json.loads((entry / MANIFEST_FILE).read_text())
    log.info("compiled model ready key=%s compile_seconds=%s", manifest["key"], manifest["compile_seconds"])


if __name__ == "__main__":
    main()
