"""`python -m {{ cookiecutter.project_slug }}`."""

import sys

from {{ cookiecutter.project_slug }}.cli import main

sys.exit(main())
