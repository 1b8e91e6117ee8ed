"""CDK entry point: `cd infrastructure && npx cdk synth` (or deploy). See docs/deploy.md."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the CDK CLI runs this file from infrastructure/
    sys.path.insert(0, str(ROOT))


def main() -> None:
    import aws_cdk as cdk

    from infrastructure.stack import BoomerangStack

    app = cdk.App()
    # The account and region the CLI resolved from your AWS configuration (none: an environment-agnostic template).
    env = cdk.Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION"))
    BoomerangStack(app, "Boomerang", env=env, description="Boomerang returns management")
    app.synth()


if __name__ == "__main__":
    main()
