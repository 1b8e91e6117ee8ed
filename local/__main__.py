"""`python -m local [--port 8000] [--moto-port 5000] [--state-dir .local]`: see local/stack.py."""

import logging
import os
import sys

from local.stack import main

code = main()
# Everything was stopped explicitly (pollers, API, moto, credentials.json). Tearing down the interpreter with
# moto's millions of objects would take seconds more and do nothing useful: flush and leave.
logging.shutdown()
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)
