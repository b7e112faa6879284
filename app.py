#!/usr/bin/env python3
"""CDK entry point: builds the stacks of one environment, chosen with `-c env=NAME`."""

from __future__ import annotations

import logging
import os
import sys

# SDK 2.x is chosen on purpose (it builds the definition offline); its notices are not news here.
os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
logging.getLogger("sagemaker.config").setLevel(logging.WARNING)

import aws_cdk as cdk  # noqa: E402

from stacks.app_builder import build_app  # noqa: E402
from stacks.config import (  # noqa: E402
    ConfigError,
    check_deployable,
    load_environment,
    with_account,
)


def main() -> None:
    app = cdk.App()
    try:
        config = load_environment(
            app.node.try_get_context("environments"), app.node.try_get_context("env")
        )
        config = with_account(config, app.node.try_get_context("account"))
        check_deployable(config)
    except ConfigError as err:
        sys.exit(f"Configuration error: {err}")
    build_app(app, config)
    app.synth()


if __name__ == "__main__":
    main()
