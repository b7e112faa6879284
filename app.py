#!/usr/bin/env python3
"""CDK entry point: builds the stacks of one environment, chosen with `-c env=NAME`."""

from __future__ import annotations

import sys

import aws_cdk as cdk

from stacks.app_builder import build_app
from stacks.config import ConfigError, load_environment


def main() -> None:
    app = cdk.App()
    try:
        config = load_environment(
            app.node.try_get_context("environments"), app.node.try_get_context("env")
        )
    except ConfigError as err:
        sys.exit(f"Configuration error: {err}")
    build_app(app, config)
    app.synth()


if __name__ == "__main__":
    main()
