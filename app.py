#!/usr/bin/env python3
"""CDK entry point: one stack from the context in cdk.json (override with -c key=value). Never calls AWS."""

import sys

from aws_cdk import App

from stacks.app import configure_app
from stacks.config import ContextError

app = App()
try:
    configure_app(app)
except ContextError as error:
    sys.exit(f"Invalid CDK context: {error}")
app.synth()
