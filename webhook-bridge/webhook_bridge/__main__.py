"""``python -m webhook_bridge`` = ``webhook-bridge``."""

import sys

from webhook_bridge.cli import main

sys.exit(main())
