"""``python -m smscore.cli``: what ``smsgw`` runs (the supervisor starts its workers this way)."""

import sys

from smscore.cli import main

sys.exit(main())
