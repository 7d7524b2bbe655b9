"""The pipeline's stages, one module each, run as `python -m stages.<name>`."""

import sys

if sys.argv[:1] == ["-m"]:  # a stage process (Python sets argv[0] so while locating the module)
    from latentlab.native_logs import filter_native_logs

    filter_native_logs()
