"""The one exception type that reaches the user as a one-line message (exit code 2)."""


class UserError(Exception):
    """Bad input or usage: the message names the input and what is wrong with it."""

    exit_code = 2
