"""The pipeline's stages, one module each, run as `python -m stages.<name>`."""

import sys

# `python -m stages.<name>` imports this package while argv[0] is still "-m": a stage process.
if sys.argv[:1] == ["-m"]:
    from latentlab.native_logs import filter_native_logs

    filter_native_logs()
