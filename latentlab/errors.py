"""The one exception type for mistakes a user can fix (bad params, missing or corrupt data)."""


class UserError(Exception):
    """A problem in the user's params or data: its message names the problem and the fix.

    Stages turn it into a one-line error and a non-zero exit instead of a traceback.
    """
