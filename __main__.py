import sys

from facetvlp.cli import main

sys.exit(main())
